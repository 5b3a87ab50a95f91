"""Bounded header reading (issue 21, item 3): a long ``##`` line is refused after reading at most the limit
(plus one chunk), never read whole; the duplicate-sample check is linear, so a 1M-sample header parses."""

from __future__ import annotations

import gzip
import io
import time

import pytest

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.limits import input_limits
from genolake_assets.lib.vcf.header import parse_header, read_header, read_header_stream
from genolake_assets.lib.vcf.source import text_lines_of_stream

FIXED = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"
LIMIT = 1 << 20
CHUNK = 1 << 16


class CountingStream(io.RawIOBase):
    """``size`` bytes: a VCF start, then one endless ``##`` line; counts what was read."""

    def __init__(self, size: int):
        self.size, self.read_bytes = size, 0
        self.head = b"##fileformat=VCFv4.2\n##junk="

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.read_bytes)
        if count <= 0:
            return 0
        start = self.read_bytes
        data = (self.head[start:start + count] if start < len(self.head) else b"")
        data += b"A" * (count - len(data))
        buffer[:count] = data
        self.read_bytes += count
        return count


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv("GENOLAKE_MAX_LINE_BYTES", str(LIMIT))
    input_limits.cache_clear()
    yield LIMIT
    input_limits.cache_clear()


def test_a_long_meta_line_of_a_plain_stream_is_refused_after_at_most_the_limit(small_limit):
    stream = CountingStream(512 << 20)

    with pytest.raises(VcfFormatError) as refused:
        parse_header(text_lines_of_stream(stream, "long.vcf"), "long.vcf")

    assert refused.value.detail.code == "line_too_long" and refused.value.detail.line == 2
    assert "GENOLAKE_MAX_LINE_BYTES" in refused.value.detail.problem
    assert stream.read_bytes <= small_limit + 4 * CHUNK


def test_a_long_meta_line_of_a_gzip_stream_is_refused_without_reading_it_whole(small_limit):
    data = io.BytesIO()
    with gzip.GzipFile(fileobj=data, mode="wb", compresslevel=1) as out:
        out.write(b"##fileformat=VCFv4.2\n##junk=")
        for _ in range(64):
            out.write(b"A" * (1 << 20))
        out.write(f"\n{FIXED}\tS1\n".encode())
    data.seek(0)

    with pytest.raises(VcfFormatError) as refused:
        read_header_stream(data, "long.vcf.gz")

    assert refused.value.detail.code == "line_too_long"
    assert data.tell() < len(data.getvalue()) // 4  # stopped early: most of the compressed stream unread


def test_a_long_line_in_a_file_is_refused_by_read_header(small_limit, tmp_path):
    path = tmp_path / "long.vcf"
    path.write_bytes(b"##fileformat=VCFv4.2\n##junk=" + b"A" * (4 * LIMIT) + f"\n{FIXED}\tS1\n".encode())

    with pytest.raises(VcfFormatError) as refused:
        read_header(path)

    assert refused.value.detail.code == "line_too_long" and refused.value.detail.line == 2


def test_lines_up_to_the_limit_are_read(small_limit, tmp_path, monkeypatch):
    monkeypatch.setenv("GENOLAKE_MAX_HEADER_BYTES", str(4 * LIMIT))
    input_limits.cache_clear()
    meta = "##note=" + "A" * (LIMIT - len("##note=") - 1)  # with its newline exactly the limit
    path = tmp_path / "at_limit.vcf"
    path.write_text(f"##fileformat=VCFv4.2\n{meta}\n{FIXED}\tS1\n")

    header = read_header(path)

    assert header.samples == ["S1"] and header.meta == [meta]


def test_a_header_longer_than_its_limit_is_refused(monkeypatch):
    monkeypatch.setenv("GENOLAKE_MAX_HEADER_BYTES", "1000")
    input_limits.cache_clear()
    lines = ["##fileformat=VCFv4.2\n"] + [f"##note={i:090d}\n" for i in range(20)]

    try:
        with pytest.raises(VcfFormatError, match="GENOLAKE_MAX_HEADER_BYTES") as refused:
            parse_header(lines, "long_header.vcf")
    finally:
        input_limits.cache_clear()

    assert refused.value.detail.code == "not_vcf" and refused.value.detail.line == 11


def _chrom_lines(samples: int) -> list[str]:
    names = "\t".join(f"S{i}" for i in range(samples))
    return ["##fileformat=VCFv4.2\n", f"{FIXED}\t{names}\n"]


def _best_seconds(samples: int, repeats: int) -> float:
    lines = _chrom_lines(samples)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        header = parse_header(lines, "many.vcf")
        best = min(best, time.perf_counter() - started)
        assert len(header.samples) == samples
    return best


def test_the_duplicate_sample_check_grows_linearly():
    small, large = _best_seconds(50_000, 5), _best_seconds(500_000, 3)

    # 10x the names: linear is ~10x (up to ~25x here once the names no longer fit the CPU cache), quadratic 100x.
    assert large / max(small, 1e-4) < 50, (small, large)


def test_a_header_with_a_million_samples_parses():
    header = parse_header(_chrom_lines(1_000_000), "million.vcf")

    assert len(header.samples) == 1_000_000


def test_duplicate_sample_names_are_still_refused_and_named():
    lines = ["##fileformat=VCFv4.2\n", f"{FIXED}\tA\tB\tA\tC\tB\n"]

    with pytest.raises(VcfFormatError, match=r"duplicate sample names \['A', 'B'\]"):
        parse_header(lines, "dup.vcf")
