"""Reading a BAM's header and checking it is complete without reading (or downloading) the reads.

A BAM is a series of BGZF blocks, which are gzip members, so Python's gzip reader decodes it from
any stream; the header is at the front (SAM spec §4.2). Completeness is the BGZF end-of-file block
at the very end: one ranged read. On S3 that is what lets the orchestrator register a 100 GB BAM
without moving it.
"""

from __future__ import annotations

import gzip
import struct
from typing import BinaryIO

import pysam

from genolake_assets.lib.alignments.cram_codec import BGZF_EOF
from genolake_assets.lib.errors import AlignmentFileError

_MAX_HEADER_BYTES = 256 << 20


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


def read_bam_header(stream: BinaryIO, name: str) -> dict:
    """The header of the BAM in ``stream`` as pysam's header dict (HD, SQ, RG, PG, CO)."""
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as body:
            if _read_exact(body, 4, name, "magic") != b"BAM\x01":
                raise AlignmentFileError(name, "not a BAM file (no BAM\\1 magic after decompression)",
                                         code="unreadable_input")
            (text_length,) = struct.unpack("<i", _read_exact(body, 4, name, "l_text"))
            if not 0 <= text_length <= _MAX_HEADER_BYTES:
                raise AlignmentFileError(name, f"implausible header length {text_length}", code="unreadable_input")
            text = _read_exact(body, text_length, name, "text").rstrip(b"\0").decode("utf-8", errors="replace")
            (n_ref,) = struct.unpack("<i", _read_exact(body, 4, name, "n_ref"))
            references = []
            for _ in range(n_ref):
                (name_length,) = struct.unpack("<i", _read_exact(body, 4, name, "l_name"))
                ref_name = _read_exact(body, name_length, name, "name").rstrip(b"\0").decode()
                (length,) = struct.unpack("<i", _read_exact(body, 4, name, "l_ref"))
                references.append({"SN": ref_name, "LN": length})
    except (OSError, EOFError, gzip.BadGzipFile, struct.error) as error:
        raise AlignmentFileError(name, f"cannot read the BAM header: {error}", code="unreadable_input") from None
    header = pysam.AlignmentHeader.from_text(text).to_dict() if text.strip() else {}
    if not header.get("SQ") and references:
        header["SQ"] = references  # old BAMs keep @SQ only in the binary reference list
    return header
