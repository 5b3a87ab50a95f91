"""BAM ⇄ CRAM through the samtools/htslib that pysam bundles (1.24: CRAM 3.1 is final there).

Debian's samtools 1.16 still labels CRAM 3.1 a draft and mangled MD tags with ``embed_ref=2``
(LIBRARY-NOTES), so every encode and decode here goes through ``pysam.samtools``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pysam

from genolake_assets.lib.errors import AlignmentFileError

CRAM_VERSIONS = ("3.0", "3.1")
CRAM_PROFILES = ("fast", "normal", "small", "archive")
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
"""The empty BGZF block every complete BAM ends with (SAM spec §4.1.2)."""

# MD and NM are stored as the input has them (store_md/store_nm): by default CRAM drops them and
# regenerates them on decode, which adds tags to reads that never had them (LIBRARY-NOTES).
_VERBATIM_TAGS = ("store_md=1", "store_nm=1")
# Never fall back to embedding a reference built from the reads when a sequence is missing from the
# given one (htslib's quiet default): that CRAM would not say which reference it needs.
_NO_EMBEDDED_REFERENCE = ("embed_ref=0",)
DECODE_OPTIONS = ("decode_md=0",)
"""Decode exactly what was stored: no MD/NM synthesised from the reference."""


@dataclass(frozen=True)
class CramOptions:
    version: str = "3.1"
    profile: str = "normal"
    threads: int = 1
    ignore_md5: bool = False
    """For references known not to be the aligner's (rebuilt from MD tags); verification still checks every base."""

    def __post_init__(self):
        if self.version not in CRAM_VERSIONS:
            raise ValueError(f"CRAM version must be one of {CRAM_VERSIONS}, not {self.version!r}")
        if self.profile not in CRAM_PROFILES:
            raise ValueError(f"CRAM profile must be one of {CRAM_PROFILES}, not {self.profile!r}")
        if not 1 <= int(self.threads) <= 64:
            raise ValueError(f"threads must be between 1 and 64, not {self.threads!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def require_complete_bam(path: Path) -> None:
    """Raise unless ``path`` ends with the BGZF end-of-file block.

    htslib only warns about a missing EOF block and reads what is there, so a BAM cut at a block
    boundary would otherwise compress (and verify) as a smaller, complete-looking file.
    """
    size = path.stat().st_size
    if size < len(BGZF_EOF):
        raise AlignmentFileError(str(path), f"{size} bytes is too short to be a BAM", code="unreadable_input")
    with open(path, "rb") as handle:
        if handle.read(2) != BGZF_EOF[:2]:
            raise AlignmentFileError(str(path), "not a BAM file (no BGZF/gzip magic bytes)", code="unreadable_input")
        handle.seek(size - len(BGZF_EOF))
        if handle.read() != BGZF_EOF:
            raise AlignmentFileError(str(path), "truncated BAM: the BGZF end-of-file block is missing "
                                     "(the upload or copy was cut short)", code="truncated_input")


def _samtools_error(path: Path, message: str) -> AlignmentFileError:
    message = message.replace(str(path), "<input>")  # a file name must not decide the classification
    missing = re.search(r'Failed to populate reference "([^"]*)"', message) or re.search(
        r"Failed to populate reference for id (\d+)", message)
    if missing:
        return AlignmentFileError(str(path), f"the reference lacks sequence {missing.group(1)!r}, which reads map to",
                                  code="reference_mismatch")
    discrepancy = re.search(r"M5 tag discrepancy for reference '([^']*)'", message)
    if discrepancy:
        return AlignmentFileError(str(path), f"M5 disagreement for sequence {discrepancy.group(1)!r}: the reference "
                                  "is not the one the BAM header names (use the aligner's reference)",
                                  code="reference_mismatch")
    if re.search(r"truncat|EOF marker|unexpected end|Failed to read BGZF block", message, re.IGNORECASE):
        return AlignmentFileError(str(path), f"truncated or corrupt input: {_last_lines(message)}", code="truncated_input")
    return AlignmentFileError(str(path), f"samtools failed: {_last_lines(message)}", code="unreadable_input")


def _last_lines(message: str, keep: int = 4) -> str:
    return " | ".join(line.strip() for line in message.strip().splitlines()[-keep:])


@contextmanager
def htslib_messages():
    """Collect what htslib logs to file descriptor 2 (its M5 and truncation errors go there, not into
    pysam's exception) and pass it on to stderr afterwards; yields a list that receives the text."""
    collected: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield collected
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            collected.append(text)
            kept = "".join(line for line in text.splitlines(True) if "Could not retrieve index file" not in line)
            if kept:
                sys.stderr.write(kept)


def _run_view(args: list[str], source: Path) -> None:
    with htslib_messages() as messages:
        try:
            pysam.samtools.view(*args, catch_stdout=False)
            return
        except pysam.utils.SamtoolsError as error:
            failure = error
    raise _samtools_error(source, f"{messages[0]}\n{failure}") from None


def encode_cram(bam: Path, reference: Path, out: Path, options: CramOptions) -> None:
    """Write ``bam`` as CRAM to ``out`` against ``reference``; the header stays as it is (no @PG added)."""
    format_options = [f"version={options.version}", options.profile, *_VERBATIM_TAGS, *_NO_EMBEDDED_REFERENCE]
    if options.ignore_md5:
        format_options.append("ignore_md5=1")
    args = ["-C", "--no-PG", "-T", str(reference), "-@", str(max(0, options.threads - 1)), "-o", str(out)]
    for option in format_options:
        args += ["--output-fmt-option", option]
    _run_view([*args, str(bam)], bam)


def encode_bam(bam: Path, out: Path, level: int = 6, threads: int = 1) -> None:
    _run_view(["-b", "--no-PG", "--output-fmt-option", f"level={level}", "-@", str(max(0, threads - 1)),
               "-o", str(out), str(bam)], bam)


def decode_to_bam(alignment: Path, reference: Path | None, out: Path, threads: int = 1) -> None:
    """Decode a CRAM (or re-read a BAM) into an uncompressed BAM: what a reader of the file pays."""
    args = ["-b", "-u", "--no-PG", "-@", str(max(0, threads - 1)), "-o", str(out)]
    if reference is not None:
        args += ["-T", str(reference)]
    for option in DECODE_OPTIONS:
        args += ["--input-fmt-option", option]
    _run_view([*args, str(alignment)], alignment)


def tool_versions() -> dict[str, str]:
    lines = pysam.samtools.version().splitlines()
    samtools = lines[0].split()[1] if lines else "unknown"
    htslib = next((line.split()[-1] for line in lines if line.startswith("Using htslib")), "unknown")
    return {"samtools": samtools, "htslib": htslib, "pysam": pysam.__version__}
