"""Malformed ClinVar inputs: bad rows are counted and kept aside with their line number, bad files fail whole.

``tests/data/clinvar/bad/`` holds variant_summary files derived from real rows (see PROVENANCE.md); the
other bad inputs are derived here in ``tmp_path`` from the real test files.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.clinvar.convert import ClinvarFormatError, convert_clinvar, detect_clinvar_format
from genolake_assets.lib.clinvar.schema import partition_safe

TESTS = Path(__file__).resolve().parents[2]
DATA = TESTS / "data" / "clinvar"
BAD = DATA / "bad"
SUMMARY = DATA / "exomiser_variant_summary_test.txt.gz"
VCF_EXCERPT = DATA / "clinvar_GRCh38_20260226.excerpt.vcf.gz"


def lines_of(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode("utf-8", "backslashreplace").split("\n")


def convert(path: Path, tmp_path: Path):
    conversion = convert_clinvar(path, tmp_path / "out", tmp_path / "rejected.parquet")
    rejected = pq.read_table(tmp_path / "rejected.parquet").to_pylist()
    rows = [row for file in conversion.files for row in pq.read_table(file).to_pylist()]
    return conversion, rejected, rows


def assert_rejects(path: Path, rejected: list[dict], expected: dict[int, str]) -> None:
    lines = lines_of(path)
    assert {r["line_number"]: r["reason"] for r in rejected} == expected
    for reject in rejected:  # the raw line is the file's line, byte for byte
        assert reject["raw_line"] == lines[reject["line_number"] - 1]


@pytest.mark.parametrize("name, expected", [
    ("wrong_column_count.txt.gz", {5: "line: 33 tab-separated fields, expected 34",
                                   9: "line: 35 tab-separated fields, expected 34"}),
    ("non_integer_allele_id.txt.gz", {4: "AlleleID: not an integer", 10: "NumberSubmitters: not an integer"}),
    ("bad_date.txt.gz", {3: "LastEvaluated: not a date like 'Jun 29, 2010'",
                         8: "LastEvaluated: not a date like 'Jun 29, 2010'"}),
])
def test_bad_rows_are_rejected_with_line_numbers_and_good_rows_kept(tmp_path, name, expected):
    conversion, rejected, rows = convert(BAD / name, tmp_path)
    assert_rejects(BAD / name, rejected, expected)
    assert conversion.rejected_rows == 2 and conversion.rows == 10
    assert sum(conversion.rejection_reasons.values()) == 2
    assert set(conversion.rejection_reasons) == set(expected.values())
    good_lines = [line for number, line in enumerate(lines_of(BAD / name)[1:-1], start=2) if number not in expected]
    assert sorted(row["variation_id"] for row in rows) == sorted(int(line.split("\t")[30]) for line in good_lines)


def test_feb_30_is_not_rolled_over_to_march(tmp_path):
    _, _, rows = convert(BAD / "bad_date.txt.gz", tmp_path)
    assert all(row["last_evaluated"] is None or row["last_evaluated"].month != 3 for row in rows)


@pytest.mark.parametrize("make, code", [
    (lambda tmp: shutil.copy(BAD / "truncated.txt.gz", tmp / "variant_summary_2021-01.txt.gz"), "truncated_gzip"),
    (lambda tmp: _cut(VCF_EXCERPT, tmp / "clinvar.vcf.gz"), "truncated_bgzip"),
])
def test_a_truncated_file_fails_whole_and_publishes_nothing(tmp_path, make, code):
    make(tmp_path)
    source = next(p for p in tmp_path.iterdir() if p.is_file())
    with pytest.raises(ClinvarFormatError) as raised:
        convert_clinvar(source, tmp_path / "out", tmp_path / "rejected.parquet")
    assert source.name in str(raised.value) and raised.value.detail.code == code
    assert not (tmp_path / "out").exists() and not (tmp_path / "rejected.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == [source.name]  # no staging or temporary file left


def _cut(path: Path, target: Path) -> Path:
    data = path.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_the_truncated_summary_really_was_read_past_its_first_rows(tmp_path):
    # The good first half would convert; failing means the error surfaced mid-stream and nothing was kept.
    with pytest.raises(ClinvarFormatError, match="truncated"):
        convert_clinvar(BAD / "truncated.txt.gz", tmp_path / "out", tmp_path / "rejected.parquet")
    assert detect_clinvar_format(BAD / "truncated.txt.gz") == "variant_summary"


def test_not_clinvar_files(tmp_path):
    gvcf = TESTS / "data" / "vcf" / "HG00187.hg38.g.vcf.gz"
    with pytest.raises(ClinvarFormatError, match="HG00187.hg38.g.vcf.gz.*not a ClinVar VCF"):
        detect_clinvar_format(gvcf)
    text = tmp_path / "notes.txt"
    text.write_text("hello\tworld\n")
    with pytest.raises(ClinvarFormatError, match="notes.txt.*not a ClinVar file") as raised:
        convert_clinvar(text, tmp_path / "out", tmp_path / "rejected.parquet")
    assert raised.value.detail.code == "not_clinvar" and raised.value.detail.line == 1
    empty = tmp_path / "empty.txt.gz"
    empty.write_bytes(b"")
    with pytest.raises(ClinvarFormatError, match="empty.txt.gz.*empty"):
        detect_clinvar_format(empty)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ClinvarFormatError, match="junk.bin"):
        detect_clinvar_format(junk)
    assert not (tmp_path / "out").exists()


def test_a_header_that_is_not_the_34_column_layout_is_named(tmp_path):
    lines = lines_of(SUMMARY)
    lines[0] = lines[0].replace("\tClinSigSimple\t", "\tClinicalSignificanceSimple\t")
    renamed = tmp_path / "renamed.txt.gz"
    renamed.write_bytes(gzip.compress("\n".join(lines).encode()))
    with pytest.raises(ClinvarFormatError, match="renamed.txt.gz, line 1, field ClinSigSimple: .*column 8") as raised:
        convert_clinvar(renamed, tmp_path / "out", tmp_path / "rejected.parquet")
    assert raised.value.detail.code == "invalid_header"


def test_newer_layouts_with_extra_trailing_columns_are_read_and_the_extras_reported(tmp_path):
    extra = ["SomaticClinicalImpact", "Oncogenicity"]
    lines = lines_of(SUMMARY)
    widened = ["\t".join([line, *(extra if number == 0 else ["-", "-"])]) for number, line in enumerate(lines[:-1])]
    path = tmp_path / "variant_summary_2025-03.txt.gz"
    path.write_bytes(gzip.compress(("\n".join(widened) + "\n").encode()))
    conversion, rejected, _ = convert(path, tmp_path)
    assert (conversion.rows, rejected, conversion.ignored_columns) == (12, [], extra)
    assert conversion.release == "2025-03"


def test_invalid_utf8_crlf_and_empty_lines(tmp_path):
    lines = lines_of(SUMMARY)[:-1]
    text = "\r\n".join(lines).encode() + b"\r\n"
    broken = text.replace(b"Spastic paraplegia 48", b"Spastic paraplegia \xff8", 1)
    path = tmp_path / "crlf.txt.gz"
    path.write_bytes(gzip.compress(broken + b"\r\n"))
    conversion, rejected, rows = convert(path, tmp_path)
    assert [(r["line_number"], r["reason"]) for r in rejected] == [
        (2, "line: not valid UTF-8"), (14, "line: 1 tab-separated fields, expected 34")]
    assert rejected[0]["raw_line"].startswith("15041\tIndel") and "\\xff8" in rejected[0]["raw_line"]
    assert conversion.rows == 11 and not any("\r" in (row["alternate_allele_vcf"] or "") for row in rows)


def test_a_vcf_record_with_bad_values_is_rejected_with_its_line(tmp_path):
    lines = lines_of(VCF_EXCERPT)
    first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    body = lines[first:first + 6]
    body[1] = body[1].replace("ORIGIN=1", "ORIGIN=germline")
    body[3] = body[3].replace("ALLELEID=", "ALLELEID=x", 1)
    body[4] = body[4] + ";ALLELEID=7"
    path = tmp_path / "clinvar.vcf"
    path.write_text("\n".join(lines[:first] + body) + "\n")
    conversion, rejected, rows = convert(path, tmp_path)
    assert {r["line_number"]: r["reason"] for r in rejected} == {
        first + 2: "INFO/ORIGIN: not an integer bit mask",
        first + 4: "INFO/ALLELEID: not an integer",
        first + 5: "INFO/ALLELEID: given more than once"}
    assert conversion.rows == 3 and len(rows) == 3


def test_out_dir_must_be_fresh(tmp_path):
    (tmp_path / "out" / "assembly=GRCh38").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        convert_clinvar(SUMMARY, tmp_path / "out", tmp_path / "rejected.parquet")
    (tmp_path / "out" / "assembly=GRCh38").rmdir()
    conversion = convert_clinvar(SUMMARY, tmp_path / "out", tmp_path / "rejected.parquet")  # empty is fine
    assert conversion.rows == 12


def test_unsafe_partition_values_are_mapped(tmp_path):
    lines = lines_of(SUMMARY)
    fields = lines[1].split("\t")
    fields[16], fields[18] = "GRCh38 (patch)", "../../etc"
    lines[1] = "\t".join(fields)
    path = tmp_path / "unsafe.txt.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    conversion, _, rows = convert(path, tmp_path)
    assert "GRCh38__patch_/.._.._etc" in conversion.partitions
    assert (tmp_path / "out" / "assembly=GRCh38__patch_" / "chromosome=.._.._etc" / "part-00000.parquet").exists()
    assert all(path.resolve().is_relative_to((tmp_path / "out").resolve()) for path in conversion.files)
    assert partition_safe("") == "na" and partition_safe("NCBI36") == "NCBI36" and partition_safe("..") == "__"
