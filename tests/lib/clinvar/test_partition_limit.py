"""A ClinVar file with more distinct assembly × chromosome values than GENOLAKE_MAX_CLINVAR_PARTITIONS (issue 21,
item 5: 30k distinct chromosome values made 30k files, 3.5 GB) is refused naming file, line and field before
the partition beyond the limit gets a file; nothing is published.

The files are the real test rows of tests/data/clinvar, with their chromosome rewritten in tmp_path.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from genolake_assets.lib.clinvar import convert as clinvar_convert
from genolake_assets.lib.clinvar.convert import ClinvarFormatError, convert_clinvar

DATA = Path(__file__).resolve().parents[2] / "data" / "clinvar"
SUMMARY = DATA / "exomiser_variant_summary_test.txt.gz"
VCF_EXCERPT = DATA / "clinvar_GRCh38_20260226.excerpt.vcf.gz"
ASSEMBLY, CHROMOSOME = 16, 18  # 0-based columns of variant_summary's Assembly and Chromosome


@pytest.fixture
def writers_created(monkeypatch) -> list:
    """Every partition writer (so every partition file) the conversion creates."""
    created = []
    original = clinvar_convert._PartitionWriters.__missing__

    def counting(self, key):
        created.append(key)
        return original(self, key)

    monkeypatch.setattr(clinvar_convert._PartitionWriters, "__missing__", counting)
    return created


def summary_with_chromosomes(path: Path, copies: int, distinct: int) -> Path:
    """The real rows repeated ``copies`` times; row n (0-based) gets GRCh38 chromosome ``u{n % distinct}``."""
    header, *rows = [line for line in gzip.decompress(SUMMARY.read_bytes()).decode().split("\n") if line]
    lines = [header]
    for n in range(copies * len(rows)):
        fields = rows[n % len(rows)].split("\t")
        fields[ASSEMBLY], fields[CHROMOSOME] = "GRCh38", f"u{n % distinct}"
        lines.append("\t".join(fields))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def assert_nothing_published(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.staging-*"))
    assert not (tmp_path / "rejected.parquet").exists()


def test_a_variant_summary_with_too_many_chromosomes_is_refused_before_their_files(tmp_path, limits,
                                                                                   writers_created):
    limits()  # GENOLAKE_MAX_CLINVAR_PARTITIONS=1000
    path = summary_with_chromosomes(tmp_path / "variant_summary_2099-01.txt.gz", copies=110, distinct=1300)
    with pytest.raises(ClinvarFormatError) as caught:
        convert_clinvar(path, tmp_path / "out", tmp_path / "rejected.parquet")
    problem = caught.value.detail
    # Data row n is on line n + 2; row 1000 brings the 1001st distinct assembly × chromosome.
    assert (problem.file, problem.line, problem.field, problem.code) == (str(path), 1002, "Chromosome",
                                                                         "too_many_partitions")
    assert "1,000" in problem.problem and "GENOLAKE_MAX_CLINVAR_PARTITIONS" in problem.problem
    assert len(set(writers_created)) <= 1000
    assert_nothing_published(tmp_path)


def test_the_partition_limit_follows_the_operator(tmp_path, limits, writers_created):
    path = summary_with_chromosomes(tmp_path / "variant_summary_2099-01.txt.gz", copies=5, distinct=40)
    limits(max_clinvar_partitions=39)
    with pytest.raises(ClinvarFormatError) as caught:
        convert_clinvar(path, tmp_path / "out", tmp_path / "rejected.parquet")
    assert (caught.value.detail.line, caught.value.detail.field) == (41, "Chromosome")
    assert_nothing_published(tmp_path)
    limits(max_clinvar_partitions=40)
    conversion = convert_clinvar(path, tmp_path / "out", tmp_path / "rejected.parquet")
    assert len(conversion.partitions) == 40 and conversion.rows == 60


def test_a_clinvar_vcf_with_too_many_chromosomes_is_refused(tmp_path, limits):
    lines = [line for line in gzip.decompress(VCF_EXCERPT.read_bytes()).decode().split("\n") if line]
    body = [i for i, line in enumerate(lines) if not line.startswith("#")]
    for n, index in enumerate(body):
        fields = lines[index].split("\t")
        fields[0] = f"u{n}"
        lines[index] = "\t".join(fields)
    path = tmp_path / "clinvar.vcf.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    limits(max_clinvar_partitions=100)
    with pytest.raises(ClinvarFormatError) as caught:
        convert_clinvar(path, tmp_path / "out", tmp_path / "rejected.parquet")
    problem = caught.value.detail
    assert (problem.line, problem.field, problem.code) == (body[100] + 1, "CHROM", "too_many_partitions")
    assert_nothing_published(tmp_path)


def test_the_real_files_convert_under_the_default_limit(tmp_path, limits):
    limits()
    conversion = convert_clinvar(VCF_EXCERPT, tmp_path / "out", tmp_path / "rejected.parquet")
    assert 0 < len(conversion.partitions) <= 1000 and conversion.rows > 0
