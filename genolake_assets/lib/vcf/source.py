"""Opening a VCF file: plain text or gzip/BGZF, with integrity checks."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.limits import input_limits

GZIP_MAGIC = b"\x1f\x8b"
# The empty BGZF block htslib writes at the end of every bgzip file (SAM spec §4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def is_bgzf(path: str | Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(16)
    return head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def check_compression(path: str | Path) -> str:
    """Return 'bgzf', 'gzip' or 'plain'; raise for a truncated BGZF file or binary junk."""
    path = str(path)
    if os.path.getsize(path) == 0:
        raise VcfFormatError(path, "the file is empty", code="empty_file")
    if not is_gzip(path):
        with open(path, "rb") as handle:
            head = handle.read(4096)
        if b"\x00" in head:
            raise VcfFormatError(path, "binary content that is neither gzip nor text: not a VCF", line=1,
                                 code="not_vcf")
        return "plain"
    if not is_bgzf(path):
        return "gzip"
    with open(path, "rb") as handle:
        handle.seek(-len(BGZF_EOF), os.SEEK_END)
        if handle.read() != BGZF_EOF:
            raise VcfFormatError(path, "truncated BGZF file: the bgzip end-of-file marker is missing "
                                 "(incomplete upload or copy?)", code="truncated_bgzip")
    return "bgzf"


def open_binary(path: str | Path) -> pa.NativeFile:
    """A decompressing pyarrow input stream over the VCF's text."""
    path = str(path)
    compression = "gzip" if check_compression(path) != "plain" else None
    return pa.input_stream(path, compression=compression, buffer_size=1 << 20)


def body_chunks(path: str | Path, header_lines: int, chunk_bytes: int) -> Iterator[bytes]:
    """The text after the first ``header_lines`` lines, in pieces of about ``chunk_bytes`` that end on a newline.

    Reading is pulled by the caller, one piece at a time, so nothing is read ahead of it.
    """
    stream = open_binary(path)
    try:
        pending = _skip_lines(stream, header_lines, chunk_bytes)
        while data := stream.read(chunk_bytes):
            text = pending + data if pending else data
            cut = text.rfind(b"\n") + 1
            if cut == 0:
                pending = text  # a line longer than chunk_bytes
                continue
            pending = text[cut:]
            yield text[:cut]
        if pending:
            yield pending
    finally:
        stream.close()


def _skip_lines(stream: pa.NativeFile, count: int, chunk_bytes: int) -> bytes:
    """Read past ``count`` lines; return what was read beyond them."""
    text = b""
    start = 0
    while count:
        newline = text.find(b"\n", start)
        if newline < 0:
            data = stream.read(chunk_bytes)
            if not data:
                return b""
            text, start = text[start:] + data, 0
            continue
        start = newline + 1
        count -= 1
    return text[start:]


LINE_CHUNK_BYTES = 1 << 16


def bounded_lines(stream, label: str, max_line_bytes: int | None = None,
                  chunk_bytes: int = LINE_CHUNK_BYTES) -> Iterator[str]:
    """The UTF-8 lines (each with its ``\\n``) of a binary ``stream``, read ``chunk_bytes`` at a time.

    A line longer than ``max_line_bytes`` (default: ``GENOLAKE_MAX_LINE_BYTES``, lib/limits.py) is refused
    with ``line_too_long`` once that many bytes of it have been read (plus at most one chunk): a 4 GB line
    in a 17 MB gzip file is never held whole.
    """
    limit = max_line_bytes or input_limits().max_line_bytes
    pending = bytearray()
    number = 0
    while True:
        data = stream.read(chunk_bytes)
        if not data:
            break
        pending += data
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            if end + 1 - start > limit:
                raise _line_too_long(label, number, limit)
            yield _decoded(pending[start:end + 1], label)
            start = end + 1
        del pending[:start]
        if len(pending) > limit:
            raise _line_too_long(label, number + 1, limit)
    if pending:
        yield _decoded(pending, label)


def _decoded(line: bytearray, label: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VcfFormatError(label, f"not UTF-8 text ({exc.reason}): not a VCF", code="not_vcf") from exc


def _line_too_long(label: str, number: int, limit: int) -> VcfFormatError:
    return VcfFormatError(label, f"line {number} is longer than {limit} bytes (GENOLAKE_MAX_LINE_BYTES): refused "
                          "without reading the rest of it", line=number, code="line_too_long")


def open_text_lines(path: str | Path) -> Iterator[str]:
    """Iterate decoded text lines (for the header; the body is read columnar), each at most
    ``GENOLAKE_MAX_LINE_BYTES``."""
    path = str(path)
    stream = open_binary(path)
    try:
        try:
            yield from bounded_lines(stream, path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise VcfFormatError(path, f"cannot decompress: {exc}", code="corrupt_compression") from exc
    finally:
        stream.close()


def text_lines_of_stream(handle, label: str) -> Iterator[str]:
    """Decoded lines of an already-open binary stream (gzip detected by magic bytes), each at most
    ``GENOLAKE_MAX_LINE_BYTES`` (:func:`bounded_lines`).

    Used to read a header straight from object storage without downloading the body.
    """
    import gzip

    head = handle.read(2)
    body = io.BufferedReader(PrependedStream(head, handle))
    raw = gzip.GzipFile(fileobj=body) if head == GZIP_MAGIC else body
    try:
        yield from bounded_lines(raw, label)
    except (OSError, EOFError) as exc:
        raise VcfFormatError(label, f"cannot decompress: {exc}", code="corrupt_compression") from exc


class PrependedStream(io.RawIOBase):
    """A read-only stream: ``head`` (bytes already read, e.g. to sniff the format) then the rest of ``handle``."""

    def __init__(self, head: bytes, handle):
        self._head, self._handle = head, handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size], self._head = self._head[:size], self._head[size:]
            return size
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def verify_readable(path: str | Path, chunk: int = 8 << 20) -> int:
    """Decompress the whole file once (gzip CRCs are checked on the way); return text bytes."""
    stream = open_binary(path)
    total = 0
    try:
        while data := stream.read(chunk):
            total += len(data)
    except (OSError, pa.ArrowInvalid, EOFError) as exc:
        raise VcfFormatError(str(path), f"corrupt compressed data: {exc}", code="corrupt_compression") from exc
    finally:
        stream.close()
    return total
