"""Reading a BAM's header and checking it is complete without reading (or downloading) the reads.

A BAM is a series of BGZF blocks, which are gzip members, so Python's gzip reader decodes it from
any stream; the header is at the front (SAM spec §4.2). Completeness is the BGZF end-of-file block
at the very end: one ranged read. On S3 that is what lets the orchestrator register a 100 GB BAM
without moving it.
"""

from __future__ import annotations

import gzip
import re
import struct
from typing import BinaryIO

import pysam

from genolake_assets.lib.alignments.cram_codec import BGZF_EOF
from genolake_assets.lib.errors import AlignmentFileError
from genolake_assets.lib.limits import input_limits

_MAX_INT32 = 2**31 - 1
_SQ_LINE = re.compile(rb"^@SQ\t", re.M)
# pysam's header parser reports a malformed line with whatever its code happened to hit.
_PYSAM_HEADER_ERRORS = (ValueError, KeyError, AssertionError, OverflowError, TypeError, IndexError)


def require_bgzf_eof(name: str, size: int, tail: bytes) -> None:
    """Raise unless ``tail`` (the object's last bytes) is the BGZF end-of-file block."""
    if size < len(BGZF_EOF):
        raise AlignmentFileError(name, f"{size} bytes is too short to be a BAM", code="unreadable_input")
    if tail[-len(BGZF_EOF):] != BGZF_EOF:
        raise AlignmentFileError(name, "truncated BAM: the BGZF end-of-file block is missing "
                                 "(the upload or copy was cut short)", code="truncated_input")


def _read_exact(stream, count: int, name: str, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise AlignmentFileError(name, f"the file ends inside the BAM header ({what})", code="truncated_input")
    return data


def _refusal(name: str, problem: str, *, line: int | None = None, field: str | None = None) -> AlignmentFileError:
    """A bad header: ``unreadable_input``, naming the file and, where known, the header line and field."""
    error = AlignmentFileError(name, problem, code="unreadable_input")
    if line is not None or field is not None:
        error.detail.line, error.detail.field = line, field
        error.args = (str(error.detail),)
    return error


def read_bam_header(stream: BinaryIO, name: str) -> dict:
    """The header of the BAM in ``stream`` as pysam's header dict (HD, SQ, RG, PG, CO).

    Hostile values are refused before they are acted on (docs/security.md, "Input limits"): every length is
    checked against the format (SAM spec §4.2) and the operator's limits before anything is read, so at
    most ``GENOLAKE_MAX_BAM_HEADER_BYTES`` of the stream is, and never the reads behind the header."""
    limits = input_limits()
    budget = limits.max_bam_header_bytes
    keep_binary = False
    references = []
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as body:
            if _read_exact(body, 4, name, "magic") != b"BAM\1":
                raise AlignmentFileError(name, "not a BAM file (no BAM\\1 magic after decompression)",
                                         code="unreadable_input")
            (text_length,) = struct.unpack("<i", _read_exact(body, 4, name, "l_text"))
            if text_length < 0:
                raise _refusal(name, f"impossible header text length l_text {text_length}", field="l_text")
            if text_length > budget:
                raise _refusal(name, f"the header text is {text_length:,} bytes, more than the limit of {budget:,} "
                               "(GENOLAKE_MAX_BAM_HEADER_BYTES)", field="l_text")
            raw_text = _read_exact(body, text_length, name, "text").rstrip(b"\0")
            used = 8 + text_length
            (n_ref,) = struct.unpack("<i", _read_exact(body, 4, name, "n_ref"))
            if n_ref < 0:
                raise _refusal(name, f"impossible number of reference sequences n_ref {n_ref}", field="n_ref")
            if n_ref > limits.max_bam_references:
                raise _refusal(name, f"{n_ref:,} reference sequences, more than the limit of "
                               f"{limits.max_bam_references:,} (GENOLAKE_MAX_BAM_REFERENCES)", field="n_ref")
            keep_binary = not _SQ_LINE.search(raw_text)  # the text's @SQ lines are the header otherwise
            for index in range(1, n_ref + 1):
                (name_length,) = struct.unpack("<i", _read_exact(body, 4, name, "l_name"))
                if name_length < 1:  # the name's length plus its NUL
                    raise _refusal(name, f"reference {index}: impossible name length l_name {name_length}",
                                   field="l_name")
                used += 8 + name_length
                if used > budget:
                    raise _refusal(name, f"reference {index}: l_name {name_length:,} takes the header beyond the "
                                   f"limit of {budget:,} bytes (GENOLAKE_MAX_BAM_HEADER_BYTES)", field="l_name")
                raw_name = _read_exact(body, name_length, name, "name").rstrip(b"\0")
                try:
                    ref_name = raw_name.decode("utf-8")
                except UnicodeDecodeError:
                    raise _refusal(name, f"reference {index}: its name is not UTF-8 text", field="name") from None
                (length,) = struct.unpack("<i", _read_exact(body, 4, name, "l_ref"))
                if length < 0:
                    raise _refusal(name, f"reference {index}: impossible sequence length l_ref {length}",
                                   field="l_ref")
                if keep_binary:
                    references.append({"SN": ref_name, "LN": length})
    except (OSError, EOFError, gzip.BadGzipFile, struct.error) as error:
        raise AlignmentFileError(name, f"cannot read the BAM header: {error}", code="unreadable_input") from None
    header = _parse_text(raw_text, name, limits.max_bam_references)
    if not header.get("SQ") and references:
        header["SQ"] = references  # old BAMs keep @SQ only in the binary reference list
    return header


def _parse_text(raw: bytes, name: str, max_references: int) -> dict:
    """The header text as pysam's dict; its @SQ lines are checked first, so a bad one is named by line and field."""
    sequences = 0
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.startswith(b"@SQ\t"):
            continue
        sequences += 1
        if sequences > max_references:
            raise _refusal(name, f"more than {max_references:,} @SQ lines (GENOLAKE_MAX_BAM_REFERENCES)",
                           line=number, field="SQ")
        tags = {}
        for item in line.rstrip(b"\r").split(b"\t")[1:]:
            tag = item[:2].decode("ascii", errors="replace")
            try:
                tags[tag] = item[3:].decode("utf-8")
            except UnicodeDecodeError:
                raise _refusal(name, f"the @SQ {tag} value is not UTF-8 text", line=number, field=tag) from None
        if not tags.get("SN"):
            raise _refusal(name, "an @SQ line without a sequence name SN", line=number, field="SN")
        length = tags.get("LN", "")
        if not (length.isascii() and length.isdigit() and int(length) <= _MAX_INT32):
            raise _refusal(name, f"the @SQ length LN is not a whole number from 0 to {_MAX_INT32}", line=number,
                           field="LN")
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return {}
    try:
        return pysam.AlignmentHeader.from_text(text).to_dict()
    except _PYSAM_HEADER_ERRORS as error:
        raise _refusal(name, f"the header text is not a SAM header ({type(error).__name__} from pysam)") from None
