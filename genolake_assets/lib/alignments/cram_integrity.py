"""CRC32 checks over every container header and block of a CRAM 3 file.

htslib checks the CRCs of compressed blocks only as a side effect of decompressing them and skips
raw blocks (compression and slice headers), so a flipped byte there can decode without an error,
and a CRC-checking reader elsewhere would then reject the file. Verification reads every CRC here.
Layout: CRAM spec v3.1 §6 (file definition), §7 (container header), §8 (block).
"""

from __future__ import annotations

import mmap
import struct
import zlib
from pathlib import Path

_FILE_DEFINITION = 26  # "CRAM", major, minor, 20-byte file id


def read_itf8(data, at: int) -> tuple[int, int]:
    first = data[at]
    if first >= 0xF0:
        b = data[at + 1:at + 5]
        return ((first & 0x0F) << 28) | (b[0] << 20) | (b[1] << 12) | (b[2] << 4) | (b[3] & 0x0F), at + 5
    extra = 0 if first < 0x80 else 1 if first < 0xC0 else 2 if first < 0xE0 else 3
    value = first & (0xFF >> (extra + 1))
    for k in range(extra):
        value = (value << 8) | data[at + 1 + k]
    return value, at + 1 + extra


def read_ltf8(data, at: int) -> tuple[int, int]:
    first, extra = data[at], 0
    while extra < 8 and first & (0x80 >> extra):
        extra += 1
    value = first & (0xFF >> (extra + 1)) if extra < 8 else 0
    for k in range(extra):
        value = (value << 8) | data[at + 1 + k]
    return value, at + 1 + extra


def _stored_crc(data, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def crc_problems(path: Path, limit: int = 5) -> tuple[int, list[str]]:
    """(how many CRCs disagree, up to ``limit`` descriptions). A file that is not CRAM 3 or whose
    structure cannot be walked counts as one problem."""
    if path.stat().st_size < _FILE_DEFINITION:
        return 1, [f"{path.name}: {path.stat().st_size} bytes is too short to be a CRAM"]
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"CRAM" or data[4] < 3:
            return 1, [f"{path.name}: not a CRAM 3 file (major version {data[4] if len(data) > 4 else '?'})"]
        bad, notes, at, container = 0, [], _FILE_DEFINITION, 0
        try:
            while at < len(data):
                start = at
                length = struct.unpack_from("<i", data, at)[0]
                at += 4
                for _ in range(4):
                    _, at = read_itf8(data, at)
                for _ in range(2):
                    _, at = read_ltf8(data, at)
                blocks, at = read_itf8(data, at)
                landmarks, at = read_itf8(data, at)
                for _ in range(landmarks):
                    _, at = read_itf8(data, at)
                if zlib.crc32(data[start:at]) != _stored_crc(data, at):
                    bad += 1
                    notes.append(f"container {container} header at byte {start}: CRC32 mismatch")
                at += 4
                end = at + length
                if length < 0 or end > len(data):
                    return bad + 1, [*notes, f"container {container} at byte {start}: length {length} runs past the end"][:limit]
                for block in range(blocks):
                    block_start = at
                    at += 2  # compression method, content type
                    _, at = read_itf8(data, at)  # content id
                    size, at = read_itf8(data, at)
                    _, at = read_itf8(data, at)  # raw size
                    at += size
                    if at + 4 > end or zlib.crc32(data[block_start:at]) != _stored_crc(data, at):
                        bad += 1
                        notes.append(f"container {container} block {block} at byte {block_start}: CRC32 mismatch")
                    at += 4
                at, container = end, container + 1
        except (IndexError, struct.error):
            return bad + 1, [*notes, f"{path.name}: the container structure breaks off at byte {at}"][:limit]
        return bad, notes[:limit]
