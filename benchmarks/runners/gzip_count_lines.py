"""Decompression floor for one Python thread: inflate the whole file and count lines."""

import gzip
import sys

CHUNK_BYTES = 1 << 20

newlines = 0
with gzip.open(sys.argv[1], "rb") as stream:
    while chunk := stream.read(CHUNK_BYTES):
        newlines += chunk.count(b"\n")
print(newlines)
