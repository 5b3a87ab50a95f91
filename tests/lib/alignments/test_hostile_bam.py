"""Hostile and broken BAM headers (issue 21, item 5): each is refused as a bad input (``AlignmentFileError``,
naming the file and, for the text header, the line and field), never a MemoryError, UnicodeDecodeError or
ValueError, and never by reading the whole file.

The BAMs are real: written with pysam in tmp_path, then their decompressed bytes are patched and recompressed
as BGZF (with the end-of-file block), the way a broken or malicious writer would leave them.
"""

from __future__ import annotations

import gzip
import io
import random
import struct
from pathlib import Path

import pysam
import pytest

from genolake_assets.lib.alignments.compress import CompressOptions, compress_and_verify
from genolake_assets.lib.alignments.header import read_bam_header
from genolake_assets.lib.errors import AlignmentFileError

DATA = Path(__file__).resolve().parents[2] / "data" / "bam"
HEADER = {"HD": {"VN": "1.6", "SO": "coordinate"},
          "SQ": [{"SN": "chr1", "LN": 100_000}, {"SN": "chr2", "LN": 50_000}],
          "RG": [{"ID": "rg1", "SM": "sample1"}]}


def write_real_bam(path: Path, reads: int = 20, header: dict = HEADER) -> Path:
    """A coordinate-sorted BAM with ``reads`` random 100 bp reads (random, so the file does not compress away)."""
    rng = random.Random(7)
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for i in range(reads):
            read = pysam.AlignedSegment(out.header)
            read.query_name = f"read{i:07d}"
            read.reference_id, read.reference_start, read.mapping_quality = 0, 10 + i, 60
            read.query_sequence = "".join(rng.choice("ACGT") for _ in range(100))
            read.cigarstring = "100M"
            read.query_qualities = pysam.qualitystring_to_array("".join(rng.choice("#+5?I") for _ in range(100)))
            read.set_tag("RG", "rg1")
            out.write(read)
    return path


class Parts:
    """A BAM's decompressed bytes cut at the header's fields (SAM spec §4.2)."""

    def __init__(self, bam: Path):
        raw = gzip.decompress(bam.read_bytes())
        assert raw[:4] == b"BAM\x01"
        (l_text,) = struct.unpack_from("<i", raw, 4)
        self.text = raw[8:8 + l_text]
        at = 8 + l_text
        (n_ref,) = struct.unpack_from("<i", raw, at)
        at += 4
        self.references = []
        for _ in range(n_ref):
            (l_name,) = struct.unpack_from("<i", raw, at)
            name = raw[at + 4:at + 4 + l_name]
            (l_ref,) = struct.unpack_from("<i", raw, at + 4 + l_name)
            self.references.append([l_name, name, l_ref])
            at += 8 + l_name
        self.records = raw[at:]

    def write(self, path: Path) -> Path:
        body = b"BAM\x01" + struct.pack("<i", len(self.text)) + self.text + struct.pack("<i", len(self.references))
        for l_name, name, l_ref in self.references:
            body += struct.pack("<i", l_name) + name + struct.pack("<i", l_ref)
        with pysam.BGZFile(str(path), "wb") as out:  # BGZF blocks and the end-of-file block, as htslib writes
            out.write(body + self.records)
        return path


class CountingStream(io.RawIOBase):
    """A file whose reads are counted: how much of the (compressed) BAM the header reader pulled."""

    def __init__(self, path: Path):
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._handle.read(len(buffer))
        buffer[:len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def refused(path: Path) -> AlignmentFileError:
    with open(path, "rb") as stream, pytest.raises(AlignmentFileError) as caught:
        read_bam_header(stream, str(path))
    return caught.value


@pytest.fixture
def good_bam(tmp_path) -> Path:
    return write_real_bam(tmp_path / "good.bam")


def test_the_real_bams_headers_read_as_pysam_reads_them(tmp_path, good_bam, limits):
    limits()
    for bam in [good_bam, *sorted(DATA.glob("*.bam"))]:
        with open(bam, "rb") as stream:
            ours = read_bam_header(stream, str(bam))
        with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
            assert ours.get("SQ") == handle.header.to_dict().get("SQ"), bam.name


# -- l_name -----------------------------------------------------------------------------------

def test_l_name_minus_one_is_refused_without_reading_the_rest_of_the_file(tmp_path, limits):
    limits()
    parts = Parts(write_real_bam(tmp_path / "many_reads.bam", reads=30_000))
    parts.references[0][0] = -1
    bam = parts.write(tmp_path / "l_name_minus_one.bam")
    assert bam.stat().st_size > 2_000_000
    stream = CountingStream(bam)
    with pytest.raises(AlignmentFileError) as caught:
        read_bam_header(stream, str(bam))
    stream.close()
    error = caught.value
    assert error.code == "unreadable_input"
    assert error.detail.file == str(bam) and error.detail.field == "l_name"
    assert "l_name -1" in str(error) and "reference 1" in str(error)
    assert stream.bytes_read < 1_000_000  # the header's blocks, not the 2 MB of reads behind them


@pytest.mark.parametrize("l_name", [0, 2**31 - 1])
def test_an_impossible_l_name_is_refused(tmp_path, good_bam, limits, l_name):
    limits()
    parts = Parts(good_bam)
    parts.references[1][0] = l_name
    error = refused(parts.write(tmp_path / "bad_l_name.bam"))
    assert error.code == "unreadable_input" and error.detail.field == "l_name" and "reference 2" in str(error)


# -- @SQ names that are not UTF-8 -----------------------------------------------------------------

def test_a_non_utf8_reference_name_in_the_binary_list_is_refused(tmp_path, good_bam, limits):
    limits()
    parts = Parts(good_bam)
    parts.text = b"@HD\tVN:1.6\tSO:coordinate\n"  # old BAMs keep @SQ only in the binary list
    parts.references[0][1] = b"ch\xffr1\x00"
    parts.references[0][0] = 6
    error = refused(parts.write(tmp_path / "latin1_name.bam"))
    assert error.code == "unreadable_input" and error.detail.field == "name"
    assert "UTF-8" in str(error) and "reference 1" in str(error)


def test_a_non_utf8_sq_name_in_the_text_header_is_refused_naming_line_and_field(tmp_path, good_bam, limits):
    limits()
    parts = Parts(good_bam)
    parts.text = parts.text.replace(b"SN:chr2", b"SN:ch\xe9r2")
    error = refused(parts.write(tmp_path / "latin1_sq.bam"))
    assert (error.code, error.detail.line, error.detail.field) == ("unreadable_input", 3, "SN")
    assert f"{tmp_path / 'latin1_sq.bam'}, line 3, field SN" in str(error)


# -- bad LN ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ln", [b"abc", b"-5", b"2147483648", b""])
def test_a_bad_ln_in_the_text_header_is_refused_naming_line_and_field(tmp_path, good_bam, limits, ln):
    limits()
    parts = Parts(good_bam)
    parts.text = parts.text.replace(b"LN:50000", b"LN:" + ln)
    error = refused(parts.write(tmp_path / "bad_ln.bam"))
    assert (error.code, error.detail.line, error.detail.field) == ("unreadable_input", 3, "LN")


def test_a_negative_l_ref_in_the_binary_list_is_refused(tmp_path, good_bam, limits):
    limits()
    parts = Parts(good_bam)
    parts.text = b"@HD\tVN:1.6\tSO:coordinate\n"
    parts.references[1][2] = -7
    error = refused(parts.write(tmp_path / "negative_l_ref.bam"))
    assert error.code == "unreadable_input" and error.detail.field == "l_ref" and "reference 2" in str(error)


def test_a_negative_n_ref_is_refused(tmp_path, good_bam, limits):
    limits()
    raw = bytearray(gzip.decompress(good_bam.read_bytes()))
    (l_text,) = struct.unpack_from("<i", raw, 4)
    struct.pack_into("<i", raw, 8 + l_text, -3)
    bam = tmp_path / "negative_n_ref.bam"
    with pysam.BGZFile(str(bam), "wb") as out:
        out.write(bytes(raw))
    error = refused(bam)
    assert error.code == "unreadable_input" and error.detail.field == "n_ref"


# -- the operator's limits --------------------------------------------------------------------

def test_more_references_than_the_limit_are_refused(tmp_path, limits):
    header = {"HD": {"VN": "1.6"}, "SQ": [{"SN": f"contig{i}", "LN": 1000} for i in range(50)]}
    bam = write_real_bam(tmp_path / "many_contigs.bam", reads=1, header=header)
    limits(max_bam_references=50)
    with open(bam, "rb") as stream:
        assert len(read_bam_header(stream, str(bam))["SQ"]) == 50
    limits(max_bam_references=49)
    error = refused(bam)
    assert error.code == "unreadable_input" and "GENOLAKE_MAX_BAM_REFERENCES" in str(error)


def test_a_header_beyond_the_byte_limit_is_refused(tmp_path, good_bam, limits):
    limits(max_bam_header_bytes=1000)
    parts = Parts(good_bam)
    parts.text += b"".join(b"@CO\t" + b"x" * 100 + b"\n" for _ in range(20))
    error = refused(parts.write(tmp_path / "long_header.bam"))
    assert error.code == "unreadable_input" and "GENOLAKE_MAX_BAM_HEADER_BYTES" in str(error)
    # the binary reference list counts too
    limits(max_bam_header_bytes=len(Parts(good_bam).text) + 10)
    error = refused(good_bam)
    assert "GENOLAKE_MAX_BAM_HEADER_BYTES" in str(error)


# -- through the compression job: an outcome, not a traceback --------------------------------------

def test_the_compression_job_reports_a_hostile_header_as_an_outcome(tmp_path, limits):
    limits()
    parts = Parts(write_real_bam(tmp_path / "reads.bam"))
    parts.references[0][0] = -1
    bam = parts.write(tmp_path / "hostile.bam")
    outcome = compress_and_verify(bam, DATA / "ref" / "ce.fa.gz", tmp_path / "out.cram", CompressOptions())
    assert outcome.status != "verified"
    assert outcome.error_code == "unreadable_input" and "l_name" in outcome.error
    assert not (tmp_path / "out.cram").exists()
