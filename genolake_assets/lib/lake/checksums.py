"""Content checksums of the files the lake stores (raw copies are addressed by them)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
