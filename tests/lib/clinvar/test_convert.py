"""ClinVar variant_summary → Parquet, checked on the real 2021-01 release (86,362 rows).

Expected values come from reading the source with plain ``gzip`` + ``str.split`` in this file, never from
the converter's code, and from numbers read off the real file (see ``data/clinvar/PROVENANCE.md``).
"""

from __future__ import annotations

import datetime
import functools
import gzip
import re
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.clinvar.convert import convert_clinvar, detect_clinvar_format
from genolake_assets.lib.clinvar.schema import CLINVAR_SCHEMA, REJECTED_SCHEMA, partition_safe

REPO = Path(__file__).resolve().parents[3]
REAL_SUMMARY = REPO / "data" / "clinvar" / "variant_summary_2021-01.first86362rows.txt.gz"
DATA = REPO / "tests" / "data" / "clinvar"
MONTHS = {name: number for number, name in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}


@functools.cache
def source_rows(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    assert lines[0].startswith("#AlleleID\t") and lines[-1] == ""
    return [line.split("\t") for line in lines[1:-1]]


def expected_row(fields: list[str], release: str | None) -> dict:
    """The documented rules of lib/clinvar/summary.py, written out by hand."""
    (allele_id, type_, name, gene_id, gene_symbol, hgnc, clnsig, clnsig_simple, last_evaluated, rs, dbvar, rcv,
     phenotype_ids, phenotype_list, origin, origin_simple, assembly, accession, chromosome, start, stop, ref, alt,
     cytogenetic, review, submitters, guidelines, gtr, other_ids, categories, variation_id, position_vcf, ref_vcf,
     alt_vcf) = fields

    def text(value, *missing):
        return None if value in ("", *missing) else value

    def number(value, *missing):
        return None if value in ("", *missing) else int(value)

    def listed(value, separator, *missing):
        return None if value in ("", *missing) else value.split(separator)

    def date(value):
        if value in ("", "-"):
            return None
        month, day, year = value.replace(",", "").split(" ")
        return datetime.date(int(year), MONTHS[month], int(day))

    return {
        "allele_id": int(allele_id), "variation_id": int(variation_id), "type": text(type_), "name": text(name),
        "gene_ids": None if gene_id in ("", "-1") else [int(x) for x in gene_id.split(";")],
        "gene_symbols": listed(gene_symbol, ";", "-"), "hgnc_id": text(hgnc, "-"),
        "clinical_significance": text(clnsig), "clin_sig_simple": number(clnsig_simple),
        "last_evaluated": date(last_evaluated), "rs_id": number(rs, "-1"),
        "dbvar_ids": None if dbvar in ("", "-") else re.split("[;,]", dbvar),
        "rcv_accessions": listed(rcv, "|", "-"), "phenotype_ids": listed(phenotype_ids, "|", "-"),
        "phenotype_list": listed(phenotype_list, "|", "-"), "origin": listed(origin, ";"),
        "origin_simple": text(origin_simple), "assembly": partition_safe(assembly),
        "chromosome_accession": text(accession, "na"), "chromosome": partition_safe(chromosome),
        "start": number(start, "-1"), "stop": number(stop, "-1"), "reference_allele": text(ref, "na"),
        "alternate_allele": text(alt, "na"), "cytogenetic": text(cytogenetic, "-"), "review_status": text(review),
        "number_submitters": number(submitters), "guidelines": text(guidelines, "-"),
        "tested_in_gtr": {"Y": True, "N": False}[gtr], "other_ids": listed(other_ids, ",", "-"),
        "submitter_categories": number(categories), "position_vcf": number(position_vcf, "-1"),
        "reference_allele_vcf": text(ref_vcf, "na", "-"), "alternate_allele_vcf": text(alt_vcf, "na", "-"),
        "molecular_consequences": None, "hgvs": None, "source_format": "variant_summary", "release": release,
    }


def hashable(row: dict) -> tuple:
    return tuple((key, tuple(value) if isinstance(value, list) else value) for key, value in row.items())


def read_rows(files: list[Path]) -> list[dict]:
    return [row for file in files for row in pq.read_table(file).to_pylist()]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("clinvar_real")
    conversion = convert_clinvar(REAL_SUMMARY, root / "clinvar", root / "rejected.parquet")
    return conversion, root


def test_row_count_matches_an_independent_count_of_the_source(real):
    conversion, _ = real
    rows = source_rows(REAL_SUMMARY)
    assert len(rows) == 86_362
    assert all(len(fields) == 34 for fields in rows)
    assert conversion.rejected_rows == 0 and conversion.rejection_reasons == {}
    assert conversion.rows == 86_362
    assert sum(pq.read_metadata(file).num_rows for file in conversion.files) == 86_362


def test_every_column_of_every_row_equals_a_plain_python_parse(real):
    conversion, _ = real
    expected = Counter(hashable(expected_row(fields, "2021-01")) for fields in source_rows(REAL_SUMMARY))
    actual = Counter(hashable(row) for row in read_rows(conversion.files))
    missing, extra = expected - actual, actual - expected
    assert not missing and not extra, (list(missing)[:2], list(extra)[:2])


def test_values_read_by_eye_from_the_first_row(real):
    conversion, _ = real
    table = pq.read_table(conversion.files[0].parents[1] / "chromosome=7" / "part-00000.parquet")
    row = next(r for r in table.to_pylist() if r["allele_id"] == 15041)
    assert row["name"].startswith("NM_014855.3(AP5Z1):c.80_83delinsTGCTGTAAACTGTAACTGTAAA")
    assert row["last_evaluated"] == datetime.date(2010, 6, 29)
    assert row["rs_id"] == 397704705 and row["gene_ids"] == [9907] and row["gene_symbols"] == ["AP5Z1"]
    assert row["phenotype_ids"] == ["MONDO:MONDO:0013342,MedGen:C3150901,OMIM:613647,Orphanet:306511"]
    assert row["other_ids"] == ["ClinGen:CA215070", "OMIM:613653.0001"]
    assert row["reference_allele"] is None and row["alternate_allele"] is None
    assert (row["position_vcf"], row["reference_allele_vcf"], row["alternate_allele_vcf"]) == (
        4820844, "GGAT", "TGCTGTAAACTGTAACTGTAAA")
    assert row["assembly"] == "GRCh37" and row["chromosome_accession"] == "NC_000007.13"
    assert row["tested_in_gtr"] is False and row["dbvar_ids"] is None and row["guidelines"] is None


def test_275_drug_response_rows_as_in_the_source(real):
    conversion, root = real
    in_source = sum("drug response" in fields[6].lower() for fields in source_rows(REAL_SUMMARY))
    assert in_source == 275
    with duckdb.connect() as con:
        count = con.execute(
            "SELECT count(*) FROM read_parquet(?, hive_partitioning = true) "
            "WHERE lower(clinical_significance) LIKE '%drug response%'",
            [str(root / "clinvar" / "**" / "*.parquet")]).fetchone()[0]
    assert count == 275


def test_one_file_per_partition_holding_only_that_partition(real):
    conversion, root = real
    expected = Counter(f"{fields[16]}/{fields[18]}" for fields in source_rows(REAL_SUMMARY))
    assert conversion.partitions == dict(expected)
    assert sum(rows for key, rows in expected.items() if key.startswith("GRCh38/")) == 41_963
    assert sum(rows for key, rows in expected.items() if key.startswith("GRCh37/")) == 41_949
    assert conversion.partitions["na/na"] == 2_444 and conversion.partitions["NCBI36/X"] == 4
    assert len(conversion.files) == len(expected)
    for file in conversion.files:
        assembly = file.parent.parent.name.removeprefix("assembly=")
        chromosome = file.parent.name.removeprefix("chromosome=")
        assert file.name == "part-00000.parquet" and file.parent.parent.parent == root / "clinvar"
        table = pq.read_table(file, columns=["assembly", "chromosome"])
        assert set(zip(table["assembly"].to_pylist(), table["chromosome"].to_pylist())) == {(assembly, chromosome)}
        assert table.num_rows == conversion.partitions[f"{assembly}/{chromosome}"]


def test_files_are_sorted_typed_and_zstd(real):
    conversion, _ = real
    for file in conversion.files:
        parquet = pq.ParquetFile(file)
        assert parquet.schema_arrow.equals(CLINVAR_SCHEMA)
        assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
        keys = [(r["position_vcf"] is None, r["position_vcf"] or 0, r["start"] is None, r["start"] or 0)
                for r in parquet.read(columns=["position_vcf", "start"]).to_pylist()]
        assert keys == sorted(keys), file


def test_release_rejected_file_and_report(real):
    conversion, root = real
    assert conversion.source_format == "variant_summary"
    assert conversion.release == "2021-01"  # from the file name
    assert conversion.input_bytes == REAL_SUMMARY.stat().st_size
    assert conversion.output_bytes == sum(file.stat().st_size for file in conversion.files)
    assert conversion.seconds > 0 and conversion.ignored_columns == []
    rejected = pq.read_table(root / "rejected.parquet")
    assert rejected.num_rows == 0 and rejected.schema.equals(REJECTED_SCHEMA)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_drug_response_query_on_a_hive_partitioned_read(real):
    _, root = real
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT assembly, count(*) FROM read_parquet(?, hive_partitioning = true) "
            "WHERE clinical_significance LIKE '%response%' GROUP BY ALL ORDER BY 1",
            [str(root / "clinvar" / "**" / "*.parquet")]).fetchall()
    in_source = Counter(fields[16] for fields in source_rows(REAL_SUMMARY) if "response" in fields[6])
    assert dict(rows) == dict(in_source)


@pytest.mark.parametrize("name, rows", [("exomiser_variant_summary_test.txt.gz", 12),
                                        ("cellbase_grch38_variant_summary_excerpt.txt.gz", 10)])
def test_small_real_excerpts(tmp_path, name, rows):
    path = DATA / name
    assert detect_clinvar_format(path) == "variant_summary"
    conversion = convert_clinvar(path, tmp_path / "out", tmp_path / "rejected.parquet", release="test")
    assert (conversion.rows, conversion.rejected_rows, conversion.release) == (rows, 0, "test")
    expected = Counter(hashable(expected_row(fields, "test")) for fields in source_rows(path))
    assert Counter(hashable(row) for row in read_rows(conversion.files)) == expected


def test_multi_valued_fields_of_a_cellbase_row(tmp_path):
    conversion = convert_clinvar(DATA / "cellbase_grch38_variant_summary_excerpt.txt.gz", tmp_path / "out",
                                 tmp_path / "rejected.parquet")
    assert conversion.release is None  # no date in the file name
    row = next(r for r in read_rows(conversion.files) if r["allele_id"] == 432803 and r["assembly"] == "GRCh38")
    assert row["rcv_accessions"] == ["RCV000507387", "RCV000661398", "RCV000781038"]
    assert row["phenotype_list"] == ["not provided", "Breast-ovarian cancer, familial 2",
                                     "Hereditary breast and ovarian cancer syndrome"]
    assert len(row["phenotype_ids"]) == 3 and row["phenotype_ids"][0] == "MedGen:CN517202"
    assert row["guidelines"] == "ACMG2013,ACMG2016" and row["review_status"] == "reviewed by expert panel"
    assert row["number_submitters"] == 3 and row["chromosome"] == "13" and row["start"] == 32339556


def test_sorting_in_several_bounded_passes_gives_the_same_files(real, tmp_path, monkeypatch):
    import genolake_assets.lib.clinvar.convert as clinvar_convert

    conversion, _ = real
    monkeypatch.setattr(clinvar_convert, "SORT_BUCKET_BYTES", 256 << 10)  # several passes per partition
    monkeypatch.setattr(clinvar_convert, "TAKE_ROWS", 100)
    again = convert_clinvar(REAL_SUMMARY, tmp_path / "clinvar", tmp_path / "rejected.parquet")
    assert again.partitions == conversion.partitions
    for first, second in zip(conversion.files, again.files, strict=True):
        assert first.relative_to(first.parents[2]) == second.relative_to(second.parents[2])
        assert pq.read_table(first).equals(pq.read_table(second))


def test_a_header_only_file_gives_an_empty_table(tmp_path):
    with gzip.open(REAL_SUMMARY, "rt", encoding="utf-8", newline="") as handle:
        header = handle.readline()
    path = tmp_path / "variant_summary_2021-02.txt"
    path.write_text(header)
    conversion = convert_clinvar(path, tmp_path / "clinvar", tmp_path / "rejected.parquet")
    assert (conversion.rows, conversion.rejected_rows, conversion.files, conversion.release) == (0, 0, [], "2021-02")
    assert (tmp_path / "clinvar").is_dir() and not any((tmp_path / "clinvar").iterdir())
