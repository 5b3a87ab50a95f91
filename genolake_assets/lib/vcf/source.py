"""Opening a VCF file: plain text or gzip/BGZF, with integrity checks."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from genolake_assets.lib.errors import VcfFormatError

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


def open_text_lines(path: str | Path) -> Iterator[str]:
    """Iterate decoded text lines (for the header; the body is read columnar)."""
    path = str(path)
    stream = open_binary(path)
    try:
        text = io.TextIOWrapper(_ArrowReader(stream), encoding="utf-8", errors="strict", newline="")
        try:
            yield from text
        except UnicodeDecodeError as exc:
            raise VcfFormatError(path, f"not UTF-8 text ({exc.reason}): not a VCF", code="not_vcf") from exc
        except (OSError, pa.ArrowInvalid) as exc:
            raise VcfFormatError(path, f"cannot decompress: {exc}", code="corrupt_compression") from exc
    finally:
        stream.close()


class _ArrowReader(io.RawIOBase):
    """Adapts a pyarrow NativeFile to io.RawIOBase so TextIOWrapper can decode it."""

    def __init__(self, stream: pa.NativeFile):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def text_lines_of_stream(handle, label: str) -> Iterator[str]:
    """Decoded lines of an already-open binary stream (gzip detected by magic bytes).

    Used to read a header straight from object storage without downloading the body.
    """
    import gzip

    head = handle.read(2)
    body = io.BufferedReader(PrependedStream(head, handle))
    raw = gzip.GzipFile(fileobj=body) if head == GZIP_MAGIC else body
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
    try:
        yield from text
    except UnicodeDecodeError as exc:
        raise VcfFormatError(label, f"not UTF-8 text ({exc.reason}): not a VCF", code="not_vcf") from exc
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
