"""BAM → CRAM compression and its verification, on the real BAMs in tests/data/bam with real pysam/htslib.

Three kinds of evidence:
- the library's own report (``compress_and_verify`` / ``verify_roundtrip``);
- an independent oracle: the CRAM decoded here with pysam (``decode_md=0``) and compared read by read,
  field by field, with the BAM, without the library's verifier;
- damage done on purpose: bytes flipped in a verified CRAM (some make htslib fail, some decode to other
  bases or qualities), a CRAM of another BAM, and broken inputs (truncated, empty, not a BAM, wrong or
  missing reference).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pysam
import pytest

from genolake_assets.lib.alignments.verify import verify_roundtrip
from genolake_assets.lib.alignments.compress import CompressionOutcome, CompressOptions, compress_and_verify
from genolake_assets.lib.alignments.cram_integrity import read_itf8, read_ltf8

DATA = Path(__file__).resolve().parents[2] / "data" / "bam"
REF = DATA / "ref"


@dataclass(frozen=True)
class Case:
    bam: Path
    reference: Path
    options: dict


CASES = {
    "ce1000": Case(DATA / "ce1000.bam", REF / "ce.fa.gz", {}),
    "na12878": Case(DATA / "NA12878.chr22.tiny.bam", REF / "q.fa.gz", {}),
    # A reference rebuilt from the reads' MD tags: right bases where reads are, wrong M5s.
    "htsnexus": Case(DATA / "htsnexus_NA12878.chr11_5.0-5.1Mb.bam", REF / "htsnexus_test_NA12878.md_ref.fa.gz",
                     {"ignore_md5": True}),
}
DECODE_AS_STORED = [b"decode_md=0"]


# -- helpers (independent of the library under test) ---------------------------------------


def count_records(bam: Path) -> int:
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
        return sum(1 for _ in handle.fetch(until_eof=True))


def digest(path: Path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def open_cram(cram: Path, reference: Path) -> pysam.AlignmentFile:
    return pysam.AlignmentFile(str(cram), "rc", check_sq=False, reference_filename=str(reference),
                               format_options=DECODE_AS_STORED)


def read_view(read: pysam.AlignedSegment) -> dict:
    """Every field of a read, through pysam's object API (not SAM text, unlike the library)."""
    return {
        "name": read.query_name, "flag": read.flag, "ref": read.reference_id, "pos": read.reference_start,
        "mapq": read.mapping_quality, "cigar": read.cigartuples, "mate_ref": read.next_reference_id,
        "mate_pos": read.next_reference_start, "tlen": read.template_length, "seq": read.query_sequence,
        "qual": None if read.query_qualities is None else list(read.query_qualities),
        "tags": dict(read.get_tags()),  # integer widths (C/c/s/i) compare equal by value
    }


def oracle_differences(bam: Path, cram: Path, reference: Path) -> dict[str, int]:
    """Decode the CRAM with pysam and count, per field, the reads that differ from the BAM."""
    counts: dict[str, int] = {}
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as left, open_cram(cram, reference) as right:
        lefts = list(left.fetch(until_eof=True))
        try:
            rights = list(right.fetch(until_eof=True))
        except OSError:
            return {"decode_error": 1}
        if len(lefts) != len(rights):
            counts["record_count"] = 1
        for a, b in zip(lefts, rights):
            va, vb = read_view(a), read_view(b)
            for name in va:
                if va[name] != vb[name]:
                    if name == "cigar" and a.is_unmapped and not vb["cigar"]:
                        name = "unmapped_read_cigar"
                    counts[name] = counts.get(name, 0) + 1
    return counts


def bgzf_block_offsets(data: bytes) -> list[int]:
    """Start offset of every BGZF block, from each block's BSIZE field (SAM spec §4.1)."""
    offsets, at = [], 0
    while at < len(data):
        assert data[at:at + 4] == b"\x1f\x8b\x08\x04", f"no BGZF block at {at}"
        offsets.append(at)
        xlen = struct.unpack_from("<H", data, at + 10)[0]
        field, bsize = at + 12, None
        while field < at + 12 + xlen:
            length = struct.unpack_from("<H", data, field + 2)[0]
            if data[field:field + 2] == b"BC":
                bsize = struct.unpack_from("<H", data, field + 4)[0]
            field += 4 + length
        at += bsize + 1
    assert at == len(data)
    return offsets


# A minimal CRAM 3 reader of the container/block layout (CRAM spec §7-§8), to damage chosen blocks.

@dataclass(frozen=True)
class CramBlock:
    start: int  # the block's first byte (method)
    data: int  # first byte of its (compressed) data
    end: int  # first byte of its CRC32
    content_type: int
    content_id: int


def cram_blocks(data: bytes) -> list[CramBlock]:
    blocks, at = [], 26  # after the file definition
    while at < len(data):
        length = struct.unpack_from("<i", data, at)[0]
        at += 4
        for _ in range(4):
            _, at = read_itf8(data, at)  # reference id, start, span, records
        for _ in range(2):
            _, at = read_ltf8(data, at)  # record counter, bases
        count, at = read_itf8(data, at)
        landmarks, at = read_itf8(data, at)
        for _ in range(landmarks):
            _, at = read_itf8(data, at)
        at += 4  # container header CRC32
        end = at + length
        for _ in range(count):
            start = at
            content_type, at = data[at + 1], at + 2
            content_id, at = read_itf8(data, at)
            size, at = read_itf8(data, at)
            _, at = read_itf8(data, at)
            blocks.append(CramBlock(start, at, at + size, content_type, content_id))
            at += size + 4
        at = end
    return blocks


def data_series_content_ids(cram: Path) -> dict[str, int]:
    """Which external block holds which data series (QS, BA, ...), as ``samtools cram-size -v`` lists them."""
    ids = {}
    for line in pysam.samtools.cram_size("-v", str(cram)).splitlines():
        fields = line.split()
        if len(fields) >= 7 and fields[0] == "BLOCK" and fields[1].isdigit():
            ids[fields[-1]] = int(fields[1])
    return ids


def flip(data: bytes, *positions: int, mask: int = 0xFF) -> bytes:
    damaged = bytearray(data)
    for position in positions:
        damaged[position] ^= mask
    return bytes(damaged)


def flip_with_valid_crc(data: bytes, block: CramBlock, position: int) -> bytes:
    """Damage one byte of a block and rewrite the block's CRC32 to match: corruption no checksum catches."""
    damaged = bytearray(flip(data, position, mask=0x10))
    damaged[block.end:block.end + 4] = struct.pack("<I", zlib.crc32(bytes(damaged[block.start:block.end])))
    return bytes(damaged)


def assert_failed_without_output(outcome: CompressionOutcome, code: str, names: Path) -> None:
    assert outcome.status == "failed"
    assert not outcome.verified
    assert outcome.error_code == code, outcome.error
    assert str(names) in outcome.error
    assert outcome.output is None and outcome.ratio is None and outcome.content_checksum is None


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    """compressed(case, **options) -> (outcome, cram path), each combination compressed once."""
    cache: dict = {}
    folder = tmp_path_factory.mktemp("cram")

    def run(name: str, **extra) -> tuple[CompressionOutcome, Path]:
        key = (name, tuple(sorted(extra.items())))
        if key not in cache:
            case = CASES[name]
            out = folder / f"{name}-{len(cache)}.cram"
            options = CompressOptions.from_dict({**case.options, **extra})
            cache[key] = (compress_and_verify(case.bam, case.reference, out, options), out)
        return cache[key]

    return run


# -- every real BAM compresses and verifies ---------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_each_bam_compresses_to_a_verified_cram(name, compressed):
    case = CASES[name]
    outcome, cram = compressed(name)
    records = count_records(case.bam)

    assert outcome.status == "verified", outcome.error
    assert outcome.error is None and outcome.error_code is None
    assert outcome.input["records"] == records
    assert outcome.output["records"] == records
    assert outcome.input["size"] == case.bam.stat().st_size
    assert outcome.input["sha256"] == digest(case.bam, "sha256") and outcome.input["md5"] == digest(case.bam, "md5")
    assert outcome.output["size"] == cram.stat().st_size
    assert outcome.output["sha256"] == digest(cram, "sha256") and outcome.output["md5"] == digest(cram, "md5")
    assert outcome.ratio > 1
    assert outcome.ratio == pytest.approx(case.bam.stat().st_size / cram.stat().st_size, rel=1e-3)
    verification = outcome.verification
    assert verification["ok"] and verification["rejected"] == {}
    assert outcome.content_checksum == verification["checksum_original"] == verification["checksum_compressed"]
    assert outcome.reference["md5"] == digest(case.reference, "md5")
    assert set(outcome.tool_versions) == {"samtools", "htslib", "pysam"}
    assert cram.read_bytes()[:6] == b"CRAM\x03\x01"  # CRAM 3.1 by default


def test_reference_md5s_in_the_outcome_are_the_sequences_md5s(compressed):
    """The M5 the CRAM needs for 'q' is the one the aligner wrote into the BAM header."""
    outcome, _ = compressed("na12878")
    with pysam.AlignmentFile(str(CASES["na12878"].bam), "rb", check_sq=False) as handle:
        header_m5 = {sq["SN"]: sq["M5"] for sq in handle.header.to_dict()["SQ"]}
    assert outcome.reference["sequences"] == header_m5 == {"q": "ee5a2decc990ba0220728d924ddd4dba"}

    outcome, _ = compressed("ce1000")
    with pysam.FastaFile(str(CASES["ce1000"].reference)) as fasta:
        expected = hashlib.md5(fasta.fetch("CHROMOSOME_II").upper().encode()).hexdigest()
    assert outcome.reference["sequences"]["CHROMOSOME_II"] == expected


def test_htsnexus_reports_what_cram_cannot_keep_as_accepted(compressed):
    case = CASES["htsnexus"]
    outcome, cram = compressed("htsnexus")
    with pysam.AlignmentFile(str(case.bam), "rb", check_sq=False) as handle:
        unmapped_with_cigar = sum(1 for r in handle.fetch(until_eof=True) if r.is_unmapped and r.cigarstring)
        original_sq = handle.header.to_dict()["SQ"]
    with open_cram(cram, case.reference) as handle:
        cram_sq = handle.header.to_dict()["SQ"]
    rewritten = sum(1 for a, b in zip(original_sq, cram_sq, strict=True)
                    if (a.get("UR"), a.get("M5")) != (b.get("UR"), b.get("M5")))

    assert unmapped_with_cigar == 103
    assert outcome.status == "verified"
    assert outcome.differences == {"unmapped_read_cigar": 103, "header_reference_fields": rewritten}
    assert outcome.accepted_differences == outcome.differences
    # The original header's values are kept in the report, since the CRAM no longer has them.
    assert outcome.input["original_header_reference_fields"]["11"]["M5"] == "98c59049a2df285c76ffb1c6db8f8b96"


def test_strict_accepts_no_difference_at_all(compressed):
    outcome, _ = compressed("htsnexus", strict=True)

    assert outcome.status == "failed"
    assert outcome.error_code == "verification_failed"
    assert "unmapped_read_cigar" in outcome.error and str(CASES["htsnexus"].bam) in outcome.error
    assert outcome.accepted_differences == {}
    assert outcome.output is None and outcome.content_checksum is None and outcome.ratio is None


def test_strict_rejects_even_the_header_rewrite(compressed):
    """ce1000 has no unmapped read with a CIGAR: strict fails only on the @SQ UR/M5 that CRAM adds."""
    outcome, _ = compressed("ce1000", strict=True)
    assert outcome.error_code == "verification_failed"
    assert outcome.verification["rejected"] == {"header_reference_fields": 5}


@pytest.mark.parametrize(("version", "profile", "magic"), [("3.0", "normal", b"CRAM\x03\x00"),
                                                           ("3.1", "archive", b"CRAM\x03\x01")])
def test_other_cram_versions_and_profiles_verify(version, profile, magic, compressed):
    default, default_cram = compressed("na12878")
    outcome, cram = compressed("na12878", cram_version=version, profile=profile)

    assert outcome.status == "verified", outcome.error
    assert cram.read_bytes()[:6] == magic
    assert outcome.options["cram_version"] == version and outcome.options["profile"] == profile
    # The content checksum is over records, not bytes: the same for every encoding of the same reads.
    assert outcome.content_checksum == default.content_checksum
    assert outcome.output["sha256"] != default.output["sha256"]
    assert outcome.output["records"] == default.output["records"] == 3333
    if profile == "archive":
        assert outcome.output["size"] < default_cram.stat().st_size


@pytest.mark.parametrize("name", list(CASES))
def test_independent_decode_matches_the_bam_read_by_read(name, compressed):
    """The oracle: pysam's own decode, compared field by field, agrees with the library's verdict."""
    case = CASES[name]
    outcome, cram = compressed(name)
    differences = oracle_differences(case.bam, cram, case.reference)

    expected = {"unmapped_read_cigar": 103} if name == "htsnexus" else {}
    assert differences == expected
    record_differences = {k: v for k, v in outcome.differences.items() if k != "header_reference_fields"}
    assert record_differences == differences


def test_independent_decode_keeps_md_and_nm_as_stored(compressed):
    """Reads that had no MD tag get none on decode (store_md/decode_md=0); reads that had one keep it."""
    case = CASES["htsnexus"]
    _, cram = compressed("htsnexus")
    with pysam.AlignmentFile(str(case.bam), "rb", check_sq=False) as left, open_cram(cram, case.reference) as right:
        pairs = list(zip(left.fetch(until_eof=True), right.fetch(until_eof=True)))
    assert [a.has_tag("MD") for a, _ in pairs] == [b.has_tag("MD") for _, b in pairs]
    sample = pairs[::97]
    assert [(a.get_tag("MD") if a.has_tag("MD") else None) for a, _ in sample] == \
           [(b.get_tag("MD") if b.has_tag("MD") else None) for _, b in sample]


# -- damaged CRAMs never verify ------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
def test_flipped_bytes_in_a_verified_cram_never_verify(fraction, compressed, tmp_path):
    case = CASES["na12878"]
    _, cram = compressed("na12878")
    data = cram.read_bytes()
    position = int(len(data) * fraction)
    damaged = tmp_path / "damaged.cram"
    damaged.write_bytes(flip(data, position, position + 7, position + 131))

    verification = verify_roundtrip(case.bam, damaged, case.reference)

    assert not verification.ok
    assert verification.rejected, verification.differences
    assert set(verification.rejected) & {"decode_error", "record_count", "sequence", "qualities", "tags"}
    assert verification.examples


def test_a_cram_that_fails_to_decode_still_counts_every_original_record(compressed, tmp_path):
    case = CASES["na12878"]
    _, cram = compressed("na12878")
    data = cram.read_bytes()
    damaged = tmp_path / "damaged.cram"
    damaged.write_bytes(flip(data, len(data) // 2))

    verification = verify_roundtrip(case.bam, damaged, case.reference)
    assert "decode_error" in verification.rejected
    assert verification.records_original == count_records(case.bam)


@pytest.mark.parametrize(("name", "series", "field", "klass"), [
    ("ce1000", "QS", "qual", "qualities"),
    ("na12878", "QS", "qual", "qualities"),
    ("htsnexus", "QS", "qual", "qualities"),
    ("ce1000", "BS", "seq", "sequence"),
    ("na12878", "BS", "seq", "sequence"),
    ("ce1000", "RN", "name", "read_name"),
])
def test_damage_behind_a_valid_crc_decodes_to_other_reads_and_fails(name, series, field, klass, compressed, tmp_path):
    """A byte changed a quarter of the way into one data series' block (QS qualities, BS base substitutions,
    RN read names), its CRC32 recomputed: htslib decodes without complaint, to different reads.
    Only the record comparison can catch this."""
    case = CASES[name]
    _, cram = compressed(name)
    data = cram.read_bytes()
    content_id = data_series_content_ids(cram)[series]
    block = next(b for b in cram_blocks(data) if b.content_type == 4 and b.content_id == content_id)
    damaged = tmp_path / "silent.cram"
    damaged.write_bytes(flip_with_valid_crc(data, block, block.data + (block.end - block.data) // 4))

    oracle = oracle_differences(case.bam, damaged, case.reference)
    verification = verify_roundtrip(case.bam, damaged, case.reference)

    assert "decode_error" not in oracle and oracle.get(field, 0) > 0, oracle  # htslib decoded other reads
    assert not verification.ok
    assert verification.rejected == {klass: oracle[field]}


def test_a_cram_of_a_different_bam_does_not_verify(compressed):
    _, other = compressed("ce1000")
    verification = verify_roundtrip(CASES["na12878"].bam, other, CASES["ce1000"].reference)

    assert not verification.ok
    assert {"record_count", "read_name"} <= set(verification.rejected)
    assert (verification.records_original, verification.records_compressed) == (3333, 1000)
    assert verification.checksum_original != verification.checksum_compressed


def test_a_cram_of_part_of_the_bam_does_not_verify(tmp_path, compressed):
    """Same reads, same order, same reference: only the missing tail tells them apart."""
    case = CASES["na12878"]
    part = tmp_path / "part.bam"
    with pysam.AlignmentFile(str(case.bam), "rb", check_sq=False) as source, \
         pysam.AlignmentFile(str(part), "wb", header=source.header) as target:
        for index, read in enumerate(source.fetch(until_eof=True)):
            if index < 3000:
                target.write(read)
    part_outcome = compress_and_verify(part, case.reference, tmp_path / "part.cram", CompressOptions())
    assert part_outcome.verified  # a fine CRAM of the smaller BAM...

    verification = verify_roundtrip(case.bam, tmp_path / "part.cram", case.reference)
    assert not verification.ok  # ...but not of the original
    assert verification.rejected == {"record_count": 1}
    assert (verification.records_original, verification.records_compressed) == (3333, 3000)


def test_a_wrong_decoding_reference_does_not_verify(tmp_path, compressed):
    """A CRAM decoded against a reference with one base changed: htslib refuses it (M5) or reads differ."""
    case = CASES["na12878"]
    _, cram = compressed("na12878")
    with pysam.FastaFile(str(case.reference)) as fasta:
        sequence = fasta.fetch("q")
    with pysam.AlignmentFile(str(case.bam), "rb", check_sq=False) as handle:
        covered = next(r.reference_start for r in handle.fetch(until_eof=True) if not r.is_unmapped) + 10
    swapped = sequence[:covered] + ("A" if sequence[covered].upper() != "A" else "C") + sequence[covered + 1:]
    wrong = tmp_path / "wrong.fa"
    wrong.write_text(f">q\n{swapped}\n")
    pysam.faidx(str(wrong))

    verification = verify_roundtrip(case.bam, cram, wrong)
    assert not verification.ok
    assert set(verification.rejected) & {"decode_error", "sequence"}


def test_a_broken_block_crc_never_verifies(compressed, tmp_path):
    case = CASES["ce1000"]
    _, cram = compressed("ce1000")
    data = cram.read_bytes()
    compression_header = next(b for b in cram_blocks(data) if b.content_type == 1)
    damaged = tmp_path / "crc.cram"
    damaged.write_bytes(flip(data, compression_header.end))  # the first byte of its CRC32

    assert oracle_differences(case.bam, damaged, case.reference) == {}  # htslib decodes it unchanged
    assert not verify_roundtrip(case.bam, damaged, case.reference).ok


# -- bad inputs: each fails, names the file, and reports no output ----------------------------------


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _copy_reference(tmp_path: Path, reference: Path, *, without: tuple[str, ...] = ()) -> Path:
    target = tmp_path / "ref" / reference.name
    target.parent.mkdir()
    for suffix in ("", ".fai", ".gzi"):
        if suffix not in without:
            shutil.copyfile(f"{reference}{suffix}", f"{target}{suffix}")
    return target


def test_a_bam_truncated_mid_file_fails(tmp_path):
    data = CASES["htsnexus"].bam.read_bytes()
    bam = _write(tmp_path, "cut.bam", data[:len(data) // 2])  # what `head -c <half>` gives

    outcome = compress_and_verify(bam, CASES["htsnexus"].reference, tmp_path / "cut.cram",
                                  CompressOptions(ignore_md5=True))
    assert_failed_without_output(outcome, "truncated_input", bam)
    assert "end-of-file block is missing" in outcome.error


def test_a_bam_truncated_at_a_bgzf_block_boundary_fails(tmp_path):
    """The cut htslib only warns about: every remaining block is whole, so it reads a shorter, valid-looking BAM."""
    data = CASES["htsnexus"].bam.read_bytes()
    offsets = bgzf_block_offsets(data)
    assert len(offsets) > 10 and data[offsets[-1]:] == data[-28:]  # the last block is the 28-byte EOF marker
    bam = _write(tmp_path, "boundary.bam", data[:offsets[len(offsets) // 2]])
    readable = int(pysam.samtools.view("-c", str(bam)))  # samtools: a warning, no error, fewer reads
    assert 0 < readable < 12898

    outcome = compress_and_verify(bam, CASES["htsnexus"].reference, tmp_path / "boundary.cram",
                                  CompressOptions(ignore_md5=True))
    assert_failed_without_output(outcome, "truncated_input", bam)


def test_a_bam_cut_mid_block_with_an_eof_marker_appended_fails(tmp_path):
    """The EOF check passes; htslib's own read error must still stop it."""
    data = CASES["htsnexus"].bam.read_bytes()
    bam = _write(tmp_path, "patched.bam", data[:len(data) // 2] + data[-28:])

    outcome = compress_and_verify(bam, CASES["htsnexus"].reference, tmp_path / "patched.cram",
                                  CompressOptions(ignore_md5=True))
    # A BGZF block that ends early is a cut file, whatever the file is called (bad input, exit 3).
    assert_failed_without_output(outcome, "truncated_input", bam)
    assert "Failed to read BGZF block" in outcome.error


@pytest.mark.parametrize(("content", "message"), [
    (b"", "too short"),
    (b"read\tflag\tchrom\n" * 20, "not a BAM"),
])
def test_an_empty_or_text_file_named_bam_fails(content, message, tmp_path):
    bam = _write(tmp_path, "sample.bam", content)
    outcome = compress_and_verify(bam, CASES["ce1000"].reference, tmp_path / "sample.cram", CompressOptions())
    assert_failed_without_output(outcome, "unreadable_input", bam)
    assert message in outcome.error
    assert not (tmp_path / "sample.cram").exists()


def test_a_bgzipped_fastq_named_bam_fails(tmp_path):
    fastq = _write(tmp_path, "reads.fq", b"@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nTTTTGGGGCC\n+\n##########\n")
    bam = tmp_path / "reads.bam"
    pysam.tabix_compress(str(fastq), str(bam))
    outcome = compress_and_verify(bam, CASES["ce1000"].reference, tmp_path / "reads.cram", CompressOptions())
    assert_failed_without_output(outcome, "unreadable_input", bam)


def test_a_missing_reference_fails(tmp_path):
    missing = tmp_path / "nowhere" / "ce.fa.gz"
    outcome = compress_and_verify(CASES["ce1000"].bam, missing, tmp_path / "x.cram", CompressOptions())
    assert_failed_without_output(outcome, "reference_missing", missing)
    assert not (tmp_path / "x.cram").exists()


@pytest.mark.parametrize("index", [".fai", ".gzi"])
def test_a_reference_without_its_index_fails(index, tmp_path):
    reference = _copy_reference(tmp_path, CASES["ce1000"].reference, without=(index,))
    outcome = compress_and_verify(CASES["ce1000"].bam, reference, tmp_path / "x.cram", CompressOptions())
    assert_failed_without_output(outcome, "reference_missing", reference)
    assert f"ce.fa.gz{index}" in outcome.error
    assert not (tmp_path / "x.cram").exists()


def test_a_derived_reference_without_ignore_md5_is_an_m5_mismatch(tmp_path):
    case = CASES["htsnexus"]
    out = tmp_path / "x.cram"
    outcome = compress_and_verify(case.bam, case.reference, out, CompressOptions())
    assert_failed_without_output(outcome, "reference_mismatch", case.bam)
    assert re.search(r"M5 disagreement for sequence '11'", outcome.error)


def test_a_reference_sharing_no_sequence_with_the_bam_fails(tmp_path):
    out = tmp_path / "x.cram"
    outcome = compress_and_verify(CASES["ce1000"].bam, REF / "q.fa.gz", out, CompressOptions())
    assert_failed_without_output(outcome, "reference_mismatch", CASES["ce1000"].bam)
    assert "none of the BAM's @SQ sequences" in outcome.error and "q.fa.gz" in outcome.error
    assert not out.exists()


def test_a_reference_lacking_the_reads_sequence_fails(tmp_path):
    with pysam.FastaFile(str(CASES["ce1000"].reference)) as fasta:
        text = "".join(f">{name}\n{fasta.fetch(name)}\n" for name in fasta.references if name != "CHROMOSOME_I")
    partial = tmp_path / "ce_without_I.fa"
    partial.write_text(text)
    pysam.faidx(str(partial))
    with pysam.AlignmentFile(str(CASES["ce1000"].bam), "rb", check_sq=False) as handle:
        assert any(read.reference_name == "CHROMOSOME_I" for read in handle.fetch(until_eof=True))

    outcome = compress_and_verify(CASES["ce1000"].bam, partial, tmp_path / "x.cram", CompressOptions())
    assert_failed_without_output(outcome, "reference_mismatch", CASES["ce1000"].bam)
    assert "CHROMOSOME_I" in outcome.error


def test_the_input_is_never_modified(tmp_path, compressed):
    """Failed or verified, compress_and_verify only reads the BAM."""
    before = {name: digest(case.bam, "sha256") for name, case in CASES.items()}
    compressed("htsnexus", strict=True)
    compress_and_verify(CASES["htsnexus"].bam, CASES["htsnexus"].reference, tmp_path / "x.cram", CompressOptions())
    assert {name: digest(case.bam, "sha256") for name, case in CASES.items()} == before
