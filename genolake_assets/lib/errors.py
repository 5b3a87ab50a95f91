"""Errors raised for bad input. Each names the file and, where known, the line and field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InputProblem:
    """A machine-readable description of what is wrong with an input file."""

    file: str
    problem: str
    line: int | None = None
    field: str | None = None
    code: str = "invalid_input"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field, "code": self.code, "problem": self.problem}

    def __str__(self) -> str:
        where = _escape_controls(self.file)
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", field {_escape_controls(self.field)}"
        return f"{where}: {_escape_controls(self.problem)}"


def _escape_controls(text: object) -> str:
    """``text`` on one line with every control or invisible character escaped (``\\n``, ``\\x1b``,
    ``\\u202e``): a message naming a bad file, line and field must not let the file's bytes rewrite a log
    line, a terminal or the UI. Say where the problem is (file, line, field), not the value itself."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class VcfFormatError(ValueError):
    """A VCF that cannot be converted without losing or inventing data."""

    def __init__(self, file: str, problem: str, *, line: int | None = None, field: str | None = None,
                 code: str = "invalid_vcf"):
        self.detail = InputProblem(file=file, problem=problem, line=line, field=field, code=code)
        super().__init__(str(self.detail))


class AlignmentFileError(ValueError):
    """A BAM, CRAM or reference that cannot be compressed or verified without losing data.

    ``code`` is machine-readable: ``truncated_input``, ``unreadable_input``, ``reference_missing``,
    ``reference_mismatch``, ``verification_failed``, ``bad_work_order``.
    """

    def __init__(self, file: str, problem: str, *, code: str = "invalid_alignment_file"):
        self.detail = InputProblem(file=file, problem=problem, code=code)
        super().__init__(str(self.detail))

    @property
    def code(self) -> str:
        return self.detail.code
