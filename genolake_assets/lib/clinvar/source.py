"""Reading ClinVar text into Arrow one block of lines at a time, and typing its fields row by row.

Both ClinVar formats are tab-separated lines without quoting (names contain ``"``), so a line is split
on tabs and on nothing else. Lines are cut at ``\\n`` only, so a ``line_number`` is what ``sed -n 'Np'``
shows on the decompressed file (a trailing ``\\r`` is dropped, for CRLF files).

A problem in one row rejects that row with a countable reason (``"<field>: <problem>"``); the raw line
and its number go to the rejected file. A problem with the file as a whole (not ClinVar, not text,
a truncated or corrupt gzip stream) raises :class:`ClinvarFormatError`: publishing part of a release
is worse than publishing none.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.clinvar.schema import clinvar_batch, rejected_table
from genolake_assets.lib.errors import InputProblem, VcfFormatError
from genolake_assets.lib.vcf.source import body_chunks, open_binary

# Decompressed text handled per batch; a batch's Arrow columns are a few times this.
CHUNK_BYTES = 8 << 20
# A header line longer than this means the file is not ClinVar text (protects against binary junk).
MAX_HEADER_LINE_BYTES = 16 << 20
# Up to 18 digits always fits int64, so a regex decides integer-ness and the cast cannot fail.
_INTEGER = r"^-?[0-9]{1,18}$"
_DATE = r"^(?P<month>[A-Z][a-z]{2}) (?P<day>[0-9]{1,2}), (?P<year>[0-9]{4})$"
DATE_FORMAT = "%b %d, %Y"


class ClinvarFormatError(ValueError):
    """A file that cannot be converted as a whole: not ClinVar, a bad header, a truncated or corrupt stream."""

    def __init__(self, file: str, problem: str, *, line: int | None = None, field: str | None = None,
                 code: str = "invalid_clinvar"):
        self.detail = InputProblem(file=file, problem=problem, line=line, field=field, code=code)
        super().__init__(str(self.detail))


@contextlib.contextmanager
def file_errors(path: str | Path) -> Iterator[None]:
    """Report reading and decompression failures as :class:`ClinvarFormatError` naming the file."""
    path = str(path)
    try:
        yield
    except ClinvarFormatError:
        raise
    except VcfFormatError as exc:  # raised by the shared file readers, which speak of VCFs
        problem = exc.detail
        if problem.code == "not_vcf":
            raise ClinvarFormatError(path, problem.problem.replace("not a VCF", "not a ClinVar file"),
                                     line=problem.line, code="not_clinvar") from exc
        raise ClinvarFormatError(path, problem.problem, line=problem.line, field=problem.field,
                                 code=problem.code) from exc
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (OSError, pa.ArrowInvalid, EOFError) as exc:
        if "truncated" in str(exc).lower():
            raise ClinvarFormatError(path, "truncated gzip stream: the file ends mid-stream (incomplete download "
                                     "or copy?); nothing from it is published", code="truncated_gzip") from exc
        raise ClinvarFormatError(path, f"cannot decompress or read: {exc}", code="corrupt_compression") from exc


def text_lines(path: str | Path, chunk_bytes: int = 1 << 16) -> Iterator[str]:
    """Lines decoded one at a time, read lazily: for headers, so a bad byte in a row never fails the file."""
    with file_errors(path):
        stream = open_binary(path)
    try:
        pending, number = b"", 0
        while True:
            with file_errors(path):
                data = stream.read(chunk_bytes)
            if not data:
                break
            *complete, pending = (pending + data).split(b"\n")
            if len(pending) > MAX_HEADER_LINE_BYTES:
                raise ClinvarFormatError(str(path), f"line {number + len(complete) + 1} is longer than "
                                         f"{MAX_HEADER_LINE_BYTES >> 20} MiB: not a ClinVar file", code="not_clinvar")
            for raw in complete:
                number += 1
                yield _decoded(raw + b"\n", path, number)
        if pending:
            yield _decoded(pending, path, number + 1)
    finally:
        stream.close()


def _decoded(raw: bytes, path: str | Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClinvarFormatError(str(path), f"header line {number} is not UTF-8 text ({exc.reason}): not a ClinVar "
                                 "file", line=number, code="not_clinvar") from exc


def head_lines(path: str | Path, max_lines: int) -> list[str]:
    """The first lines of a plain or gzip file, decoded."""
    lines = text_lines(path)
    try:
        return list(itertools.islice(lines, max_lines))
    finally:
        lines.close()


@dataclass
class LineBatch:
    """Consecutive lines of a file: the valid UTF-8 ones with their numbers, the others as rejects."""

    lines: pa.Array  # string, without the line end
    line_numbers: np.ndarray  # int64, 1-based
    rejects: pa.Table  # REJECTED_SCHEMA
    physical_lines: int


def line_batches(path: str | Path, skip_lines: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineBatch]:
    """The lines after the first ``skip_lines``, a block at a time; nothing is read ahead of the caller."""
    chunks = body_chunks(path, skip_lines, chunk_bytes)
    next_line = skip_lines + 1
    while True:
        with file_errors(path):
            chunk = next(chunks, None)
        if chunk is None:
            return
        batch = _split_lines(chunk, next_line)
        next_line += batch.physical_lines
        yield batch


def _split_lines(chunk: bytes, first_line: int) -> LineBatch:
    ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10) + 1
    if chunk and chunk[-1] != 10:
        ends = np.append(ends, len(chunk))
    offsets = np.concatenate([[0], ends]).astype(np.int32)
    raw = pa.Array.from_buffers(pa.binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(chunk)])
    numbers = np.arange(first_line, first_line + len(ends), dtype=np.int64)
    rejects = rejected_table(np.empty(0, np.int64), [], pa.array([], pa.string()))
    try:
        text = raw.cast(pa.string())
    except pa.ArrowInvalid:  # rare: find the offending lines one by one
        valid = np.array([_is_utf8(value) for value in raw.to_pylist()], dtype=bool)
        bad_lines = [value.decode("utf-8", "backslashreplace").rstrip("\r\n")
                     for value in raw.filter(pa.array(~valid)).to_pylist()]
        rejects = rejected_table(numbers[~valid], ["line: not valid UTF-8"] * len(bad_lines), pa.array(bad_lines))
        text, numbers = raw.filter(pa.array(valid)).cast(pa.string()), numbers[valid]
    return LineBatch(pc.utf8_rtrim(text, characters="\r\n"), numbers, rejects, len(ends))


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class RowProblems:
    """The first problem found in each row of a batch; rows with one are rejected, not written."""

    def __init__(self, num_rows: int):
        self.reasons = np.full(num_rows, None, dtype=object)

    def flag(self, bad: np.ndarray, reason: str, rows: np.ndarray | None = None) -> None:
        """Mark rows as bad; with ``rows``, ``bad`` is per list element and ``rows`` maps elements to rows."""
        if rows is not None:
            row_mask = np.zeros(len(self.reasons), dtype=bool)
            row_mask[rows[bad]] = True
            bad = row_mask
        self.reasons[np.asarray(bad, dtype=bool) & np.equal(self.reasons, None)] = reason

    @property
    def bad(self) -> np.ndarray:
        return np.not_equal(self.reasons, None)


@dataclass
class Fields:
    """The rows of a batch that have the expected number of fields, one string array per field."""

    columns: list[pa.Array]
    line_numbers: np.ndarray
    lines: pa.Array
    rejects: pa.Table


def split_fields(batch: LineBatch, expected: int) -> Fields:
    parts = pc.split_pattern(batch.lines, "\t")
    counts = pc.list_value_length(parts).to_numpy()
    good = counts == expected
    rejects = [batch.rejects]
    if not good.all():
        reasons = [f"line: {count} tab-separated fields, expected {expected}" for count in counts[~good]]
        rejects.append(rejected_table(batch.line_numbers[~good], reasons, batch.lines.filter(pa.array(~good))))
        parts = parts.filter(pa.array(good))
    values = parts.flatten()
    rows = len(parts)
    columns = [values.take(pa.array(np.arange(i, rows * expected, expected, dtype=np.int64)))
               for i in range(expected)]
    lines = batch.lines if good.all() else batch.lines.filter(pa.array(good))
    return Fields(columns, batch.line_numbers[good], lines, pa.concat_tables(rejects))


@dataclass
class ParsedBatch:
    """A block of the file: its good rows, its rejected rows, and how many data lines it covered."""

    rows: pa.RecordBatch  # CLINVAR_SCHEMA
    rejects: pa.Table  # REJECTED_SCHEMA, by line number
    lines: int
    row_lines: np.ndarray | None = None  # each good row's 1-based line number, to name a line in file-level errors


def parsed_batch(fields: Fields, lines: LineBatch, typed: dict[str, pa.Array], problems: RowProblems,
                 constants: dict[str, object]) -> ParsedBatch:
    """Assemble the typed columns; rows with a problem go to the rejects instead."""
    rows = clinvar_batch({**typed, **constants}, len(fields.line_numbers))
    bad = problems.bad
    if not bad.any():
        return ParsedBatch(rows, fields.rejects, lines.physical_lines, fields.line_numbers)
    rejects = rejected_table(fields.line_numbers[bad], problems.reasons[bad], fields.lines.filter(pa.array(bad)))
    return ParsedBatch(rows.filter(pa.array(~bad)), pa.concat_tables([fields.rejects, rejects]).sort_by("line_number"),
                       lines.physical_lines, fields.line_numbers[~bad])


def to_mask(values: pa.Array) -> np.ndarray:
    """A boolean numpy mask; null counts as False."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def null_tokens(values: pa.Array, tokens: tuple[str, ...]) -> pa.Array:
    """Replace ClinVar's "no value" spellings ("-", "na", "" …) by null."""
    if not tokens:
        return values
    return pc.if_else(pc.is_in(values, pa.array(tokens, values.type)), pa.scalar(None, values.type), values)


def parse_int(values: pa.Array, problems: RowProblems, name: str, *, tokens: tuple[str, ...] = ("",),
              int_type: pa.DataType = pa.int64(), required: bool = False, rows: np.ndarray | None = None) -> pa.Array:
    values = null_tokens(values, tokens)
    is_integer = pc.match_substring_regex(values, _INTEGER)
    problems.flag(to_mask(pc.invert(is_integer)), f"{name}: not an integer", rows)
    if required:
        problems.flag(to_mask(pc.is_null(values)), f"{name}: missing", rows)
    ints = pc.cast(pc.if_else(pc.fill_null(is_integer, False), values, pa.scalar(None, values.type)), pa.int64())
    if int_type != pa.int64():
        limits = np.iinfo(int_type.to_pandas_dtype())
        out_of_range = pc.or_(pc.less(ints, limits.min), pc.greater(ints, limits.max))
        problems.flag(to_mask(out_of_range), f"{name}: out of range for {int_type}", rows)
        ints = pc.cast(pc.if_else(pc.fill_null(out_of_range, False), pa.scalar(None, pa.int64()), ints), int_type)
    return ints


def parse_date(values: pa.Array, problems: RowProblems, name: str, tokens: tuple[str, ...] = ("-", "")) -> pa.Array:
    """``Jun 29, 2010`` → date32. Arrow's strptime rolls ``Feb 30`` over to March, so the day is checked too."""
    values = null_tokens(values, tokens)
    parts = pc.extract_regex(values, _DATE)
    stamps = pc.strptime(pc.if_else(pc.is_valid(parts), values, pa.scalar(None, pa.string())),
                         format=DATE_FORMAT, unit="s", error_is_null=True)
    same_day = pc.equal(pc.day(stamps), pc.cast(pc.struct_field(parts, "day"), pa.int64()))
    ok = pc.fill_null(same_day, False)
    problems.flag(to_mask(pc.and_(pc.is_valid(values), pc.invert(ok))), f"{name}: not a date like 'Jun 29, 2010'")
    return pc.cast(pc.if_else(ok, stamps, pa.scalar(None, stamps.type)), pa.date32())


def parse_bool(values: pa.Array, problems: RowProblems, name: str, true: str = "Y", false: str = "N") -> pa.Array:
    is_true, is_false = pc.equal(values, true), pc.equal(values, false)
    problems.flag(~to_mask(pc.or_(is_true, is_false)) & to_mask(pc.is_valid(values)),
                  f"{name}: not {true} or {false}")
    return pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))


def split_list(values: pa.Array, separator: str, tokens: tuple[str, ...] = ("",)) -> pa.ListArray:
    """Split on ``separator``; a whole value in ``tokens`` is a null list."""
    return pc.split_pattern(null_tokens(values, tokens), separator)


def list_elements(lists: pa.ListArray) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """(offsets from 0, the elements in order, the row of each element)."""
    offsets = lists.offsets.to_numpy()
    elements = lists.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets = offsets - offsets[0]
    return offsets, elements, np.repeat(np.arange(len(lists)), np.diff(offsets))


def map_list_elements(lists: pa.ListArray, function: Callable[[pa.Array, np.ndarray], pa.Array]) -> pa.ListArray:
    """Apply a vectorised ``function(elements, element_rows)`` to every element, keeping the lists' shape."""
    offsets, elements, rows = list_elements(lists)
    mapped = function(elements, rows)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), mapped, mask=pc.is_null(lists))


def map_distinct(values: pa.Array, function: Callable[[str], object], result_type: pa.DataType) -> pa.Array:
    """Apply a Python function once per distinct value: cheap for ClinVar's low-cardinality fields."""
    distinct = pc.unique(values)
    mapped = pa.array([None if value is None else function(value) for value in distinct.to_pylist()], result_type)
    return mapped.take(pc.index_in(values, distinct))


def percent_decode(values: pa.Array) -> pa.Array:
    """Undo the VCF percent-encoding ClinVar uses (``%3D`` for ``=``, ``%2C`` for ``,`` …)."""
    encoded = to_mask(pc.match_substring(values, "%"))
    if not encoded.any():
        return values
    decoded = pa.array([unquote(value) for value in values.filter(pa.array(encoded)).to_pylist()], values.type)
    return pc.replace_with_mask(values, pa.array(encoded), decoded)
