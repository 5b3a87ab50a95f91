"""Input limits of the VCF converter (issue 21, item 5): a header with too many fields and an allele too long
are refused with file, line and field, before Arrow allocates them, and a bad VCF in a batch leaves the
others converting.

Files are derived in tmp_path from the real gVCF tests/data/vcf/HG00190.hg38.g.vcf.gz. The 500 MB allele of the
finding is not materialised: the limit is lowered through GENOLAKE_MAX_ALLELE_BYTES instead, plus one case at
the real default.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.vcf.batch import ConversionJob, ConversionManifest
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.lib.vcf.header import read_header
from genolake_assets.lib.vcf.schema import schemas
from tests.conftest import DATA_VCF

GVCF = DATA_VCF / "HG00190.hg38.g.vcf.gz"


def gvcf_lines() -> list[str]:
    return gzip.decompress(GVCF.read_bytes()).decode().rstrip("\n").split("\n")


def write_vcf(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))
    return path


def first_variant_index(lines: list[str]) -> int:
    """The index of the first record with a real ALT allele (not a reference block)."""
    return next(i for i, line in enumerate(lines)
                if not line.startswith("#") and line.split("\t")[4] != "<NON_REF>")


def with_alt(lines: list[str], index: int, alt: str) -> list[str]:
    lines = list(lines)
    columns = lines[index].split("\t")
    columns[4] = f"{alt},<NON_REF>"
    lines[index] = "\t".join(columns)
    return lines


# -- too many ##INFO / ##FORMAT declarations -------------------------------------------------------

def many_info_keys(path: Path, keys: int, samples: int) -> tuple[Path, int]:
    """The finding's file: ``keys`` ##INFO declarations × ``samples`` samples, gzipped (~270 KB for 100k × 10).

    Returns the path and the 1-based line number of the ##INFO declaration number ``keys`` (the last)."""
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=248956422>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    first = len(lines) + 1
    lines += [f'##INFO=<ID=K{i},Number=1,Type=Integer,Description="key {i}">' for i in range(keys)]
    names = [f"S{i}" for i in range(samples)]
    lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *names]))
    lines += ["\t".join(["chr1", str(100 + i), ".", "A", "C", "50", "PASS", f"K{i}={i}", "GT", *["0/1"] * samples])
              for i in range(20)]
    return write_vcf(path, lines), first


def test_a_header_with_100k_info_keys_is_refused_when_its_schema_is_built(tmp_path, limits):
    limits()  # the defaults: GENOLAKE_MAX_HEADER_FIELDS=10000
    path, first_info_line = many_info_keys(tmp_path / "wide.vcf.gz", 100_000, 10)
    assert path.stat().st_size < 1_000_000  # a small upload
    header = read_header(path)  # the header itself parses: it is its columns that would not fit
    assert len(header.info) == 100_000
    with pytest.raises(VcfFormatError) as caught:
        schemas(header)
    problem = caught.value.detail
    # The first declaration beyond the limit: FORMAT/GT and 9,999 INFO keys fit, INFO/K9999 does not.
    assert (problem.file, problem.line, problem.field, problem.code) == (
        str(path), first_info_line + 9_999, "INFO/K9999", "too_many_header_fields")
    assert "100,001" in problem.problem and "10,000" in problem.problem
    assert "GENOLAKE_MAX_HEADER_FIELDS" in problem.problem

    out = tmp_path / "lake"
    with pytest.raises(VcfFormatError, match="too many|more than"):
        convert_vcf(path, out)
    assert not any(out.rglob("*.parquet"))


def test_the_header_field_limit_follows_the_operator(tmp_path, limits):
    path, first_info_line = many_info_keys(tmp_path / "wide.vcf.gz", 300, 2)
    limits(max_header_fields=250)
    with pytest.raises(VcfFormatError) as caught:
        convert_vcf(path, tmp_path / "lake")
    assert caught.value.detail.line == first_info_line + 249  # FORMAT/GT and K0..K248 fit; K249 is the 251st
    assert caught.value.detail.field == "INFO/K249"
    limits(max_header_fields=301)  # FORMAT/GT and 300 INFO keys
    report = convert_vcf(path, tmp_path / "lake")
    assert report.records_read == 20


# -- an allele beyond the limit ------------------------------------------------------------------

def test_a_long_alt_allele_is_refused_naming_file_line_and_field(tmp_path, limits):
    limits(max_allele_bytes=1000)
    lines = gvcf_lines()
    index = first_variant_index(lines) + 3
    path = write_vcf(tmp_path / "long_alt.g.vcf.gz", with_alt(lines, index, "G" + "T" * 2047))
    out = tmp_path / "lake"
    with pytest.raises(VcfFormatError) as caught:
        convert_vcf(path, out)
    problem = caught.value.detail
    assert (problem.file, problem.line, problem.field, problem.code) == (str(path), index + 1, "ALT",
                                                                           "allele_too_long")
    assert "2,048" in problem.problem and "1,000" in problem.problem
    assert "TTTT" not in str(caught.value)  # the allele itself is not quoted
    assert not any(out.rglob("*.parquet"))


def test_a_long_ref_allele_is_refused(tmp_path, limits):
    limits(max_allele_bytes=1000)
    lines = gvcf_lines()
    index = first_variant_index(lines)
    columns = lines[index].split("\t")
    columns[3] = columns[3] + "A" * 1500
    lines[index] = "\t".join(columns)
    path = write_vcf(tmp_path / "long_ref.g.vcf.gz", lines)
    with pytest.raises(VcfFormatError) as caught:
        convert_vcf(path, tmp_path / "lake")
    assert (caught.value.detail.line, caught.value.detail.field) == (index + 1, "REF")


def test_alleles_within_the_default_limit_convert_and_one_beyond_it_is_refused(tmp_path, limits):
    limits()  # GENOLAKE_MAX_ALLELE_BYTES=1 MiB
    lines = gvcf_lines()
    index = first_variant_index(lines)
    # The longest spelled-out structural-variant alleles in real call sets are around 100 kB: they convert.
    sv = "G" + "ACGT" * 25_000
    report = convert_vcf(write_vcf(tmp_path / "sv.g.vcf.gz", with_alt(lines, index, sv)), tmp_path / "lake_sv")
    variants = pq.read_table(report.samples["HG00190"].files["variants"], columns=["alt"]).column("alt").to_pylist()
    assert sv in variants

    too_long = "G" * ((1 << 20) + 1)
    path = write_vcf(tmp_path / "huge.g.vcf.gz", with_alt(lines, index, too_long))
    with pytest.raises(VcfFormatError) as caught:
        convert_vcf(path, tmp_path / "lake_huge")
    assert (caught.value.detail.line, caught.value.detail.field) == (index + 1, "ALT")
    assert "1,048,577" in caught.value.detail.problem


# -- one bad VCF among good ones -----------------------------------------------------------------

def test_a_vcf_beyond_a_limit_is_an_outcome_of_its_own_and_the_batch_goes_on(tmp_path, limits):
    from genolake_assets.resources.conversion.engine import ConverterResource

    limits(max_allele_bytes=1000, max_header_fields=1000)
    lines = gvcf_lines()
    index = first_variant_index(lines)
    long_allele = write_vcf(tmp_path / "long_alt.g.vcf.gz", with_alt(lines, index, "G" * 5000))
    wide, first_info_line = many_info_keys(tmp_path / "wide.vcf.gz", 2000, 3)
    jobs = [ConversionJob("good0", str(DATA_VCF / "HG00187.hg38.g.vcf.gz"), {"HG00187": "s-good0"},
                          str(tmp_path / "staging" / "good0")),
            ConversionJob("bad0", str(long_allele), {"HG00190": "s-bad0"}, str(tmp_path / "staging" / "bad0")),
            ConversionJob("bad1", str(wide), {"S0": "s-bad1"}, str(tmp_path / "staging" / "bad1")),
            ConversionJob("good1", str(GVCF), {"HG00190": "s-good1"}, str(tmp_path / "staging" / "good1"))]
    result = ConverterResource(engine="arrow").convert_batch(
        None, ConversionManifest(jobs, result_uri=str(tmp_path / "result.json")), None, lambda line: None)
    outcomes = {outcome.job_id: outcome for outcome in result.outcomes}
    assert outcomes["good0"].ok and outcomes["good1"].ok
    assert outcomes["good1"].report.samples["HG00190"].variant_rows > 0
    allele = outcomes["bad0"].problem
    assert (allele.file, allele.line, allele.field, allele.code) == (str(long_allele), index + 1, "ALT",
                                                                     "allele_too_long")
    fields = outcomes["bad1"].problem
    assert (fields.file, fields.line, fields.field, fields.code) == (str(wide), first_info_line + 999, "INFO/K999",
                                                                     "too_many_header_fields")
    assert str(long_allele) in str(allele) and f"line {index + 1}" in str(allele) and "field ALT" in str(allele)


def test_genolake_convert_names_file_line_and_field_of_an_allele_beyond_the_limit(tmp_path, limits, capsys):
    from genolake_assets.cli import main

    limits(max_allele_bytes=1000)
    lines = gvcf_lines()
    index = first_variant_index(lines)
    path = write_vcf(tmp_path / "long_alt.g.vcf.gz", with_alt(lines, index, "G" * 2048))
    assert main(["convert", str(path), str(tmp_path / "lake"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert f"{path}, line {index + 1}, field ALT" in error and "GENOLAKE_MAX_ALLELE_BYTES" in error
    assert "Traceback" not in error and "GGGG" not in error
