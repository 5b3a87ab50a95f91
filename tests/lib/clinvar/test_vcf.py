"""ClinVar VCF → the unified ClinVar table, on a real excerpt of the 2026-02-26 GRCh38 ClinVar VCF.

Expected values come from pysam (htslib) and from a plain-Python reading of the INFO column in this file,
plus values read by eye (``zcat … | grep``). See ``tests/data/clinvar/PROVENANCE.md``.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pysam
import pytest

from genolake_assets.lib.clinvar.convert import convert_clinvar, detect_clinvar_format

DATA = Path(__file__).resolve().parents[2] / "data" / "clinvar"
EXCERPT = DATA / "clinvar_GRCh38_20260226.excerpt.vcf.gz"
ORIGIN_NAMES = {1: "germline", 2: "somatic", 4: "inherited", 8: "paternal", 16: "maternal", 32: "de novo",
                64: "biparental", 128: "uniparental", 256: "not-tested", 512: "tested-inconclusive"}
SUMMARY_ONLY = ("name", "hgnc_id", "clin_sig_simple", "last_evaluated", "rcv_accessions", "origin_simple", "start",
                "stop", "reference_allele", "alternate_allele", "cytogenetic", "number_submitters", "guidelines",
                "tested_in_gtr", "submitter_categories")


def records() -> list[tuple[int, list[str], dict[str, str]]]:
    """(line number, fixed columns, INFO) for every record, read with gzip and str.split."""
    out = []
    with gzip.open(EXCERPT, "rt", encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.startswith("#"):
                columns = line.rstrip("\n").split("\t")
                info = dict(entry.split("=", 1) for entry in columns[7].split(";") if "=" in entry)
                out.append((number, columns, info))
    return out


def spaced_ids(entry: str) -> str:
    database, _, identifier = entry.partition(":")
    return unquote(database.replace("_", " ") + ":" + identifier)


def expected(columns: list[str], info: dict[str, str]) -> dict:
    def listed(key, separator=","):
        return None if key not in info else [unquote(x) for x in info[key].split(separator)]

    genes = [pair.rsplit(":", 1) for pair in info["GENEINFO"].split("|")] if "GENEINFO" in info else None
    origin = None
    if "ORIGIN" in info:
        code = int(info["ORIGIN"])
        origin = [name for bit, name in ORIGIN_NAMES.items() if code & bit] or ["unknown"]
    return {
        "allele_id": int(info["ALLELEID"]), "variation_id": int(columns[2]),
        "type": info["CLNVC"].replace("_", " "),
        "gene_ids": [int(gene_id) for _, gene_id in genes] if genes else None,
        "gene_symbols": [symbol for symbol, _ in genes] if genes else None,
        "clinical_significance": unquote(info["CLNSIG"]).replace("_", " ").replace("|", ", ")
        if "CLNSIG" in info else None,
        "rs_id": int(info["RS"]) if "RS" in info else None,
        "dbvar_ids": listed("DBVARID"),
        "phenotype_ids": None if "CLNDISDB" not in info else [
            None if group == "." else ",".join(spaced_ids(entry) for entry in group.split(","))
            for group in info["CLNDISDB"].split("|")],
        "phenotype_list": None if "CLNDN" not in info else [
            None if name == "." else unquote(name).replace("_", " ") for name in info["CLNDN"].split("|")],
        "origin": origin,
        "assembly": "GRCh38",
        "chromosome_accession": info["CLNHGVS"].split(":")[0],
        "chromosome": columns[0],
        "review_status": info["CLNREVSTAT"].replace("_", " ") if "CLNREVSTAT" in info else None,
        "other_ids": None if "CLNVI" not in info else [spaced_ids(x) for x in info["CLNVI"].split("|")],
        "position_vcf": int(columns[1]), "reference_allele_vcf": columns[3],
        "alternate_allele_vcf": None if columns[4] == "." else columns[4],
        "molecular_consequences": info["MC"].split(",") if "MC" in info else None,
        "hgvs": listed("CLNHGVS"), "source_format": "vcf", "release": "2026-02-26",
        **{column: None for column in SUMMARY_ONLY},
    }


def hashable(row: dict) -> tuple:
    return tuple(sorted((key, tuple(value) if isinstance(value, list) else value) for key, value in row.items()))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("clinvar_vcf")
    conversion = convert_clinvar(EXCERPT, root / "clinvar", root / "rejected.parquet")
    rows = [row for file in conversion.files for row in pq.read_table(file).to_pylist()]
    return conversion, rows


@pytest.fixture(scope="module")
def by_variation(converted):
    return {row["variation_id"]: row for row in converted[1]}


def test_every_record_is_one_row(converted):
    conversion, rows = converted
    with pysam.VariantFile(str(EXCERPT)) as vcf:
        htslib = Counter((r.chrom, r.pos, int(r.id), r.ref, r.alts[0] if r.alts else None,
                          r.info["ALLELEID"]) for r in vcf)
    assert sum(htslib.values()) == len(records()) == 1_871
    assert (conversion.rows, conversion.rejected_rows, conversion.source_format) == (1_871, 0, "vcf")
    assert Counter((r["chromosome"], r["position_vcf"], r["variation_id"], r["reference_allele_vcf"],
                    r["alternate_allele_vcf"], r["allele_id"]) for r in rows) == htslib


def test_every_column_of_every_row_equals_a_plain_python_parse(converted):
    _, rows = converted
    want = Counter(hashable(expected(columns, info)) for _, columns, info in records())
    got = Counter(hashable(row) for row in rows)
    assert want == got, (list(want - got)[:1], list(got - want)[:1])


def test_release_assembly_and_partitions(converted):
    conversion, rows = converted
    assert conversion.release == "2026-02-26"  # ##fileDate
    by_chromosome = Counter(columns[0] for _, columns, _ in records())
    assert conversion.partitions == {f"GRCh38/{chrom}": n for chrom, n in by_chromosome.items()}
    assert conversion.partitions["GRCh38/13"] == 1_005 and conversion.partitions["GRCh38/17"] == 811
    for file in conversion.files:
        positions = pq.read_table(file, columns=["position_vcf"]).column(0).to_pylist()
        assert positions == sorted(positions)


@pytest.mark.parametrize("variation_id, clinical_significance", [
    (822, "Conflicting classifications of pathogenicity, association, risk factor"),
    (2498404, "Likely pathogenic"),
    (209598, "Benign"),
])
def test_clnsig_is_spelled_as_in_variant_summary(by_variation, variation_id, clinical_significance):
    assert by_variation[variation_id]["clinical_significance"] == clinical_significance


def test_clnsig_drug_response_and_low_penetrance(converted):
    _, rows = converted
    values = {row["clinical_significance"] for row in rows}
    assert "drug response" in values
    assert "Pathogenic/Likely pathogenic/Pathogenic, low penetrance" in values
    assert not any("_" in value for value in values if value)
    assert {row["review_status"] for row in rows} >= {"criteria provided, single submitter",
                                                       "criteria provided, multiple submitters, no conflicts",
                                                       "reviewed by expert panel"}


@pytest.mark.parametrize("origin, names", [
    ("0", ["unknown"]), ("1", ["germline"]), ("3", ["germline", "somatic"]), ("33", ["germline", "de novo"]),
    ("65", ["germline", "biparental"]), ("17", ["germline", "maternal"]), ("32", ["de novo"]),
    ("43", ["germline", "somatic", "paternal", "de novo"]),
])
def test_origin_bitmask_is_decoded(converted, origin, names):
    _, rows = converted
    ids = {int(info["ALLELEID"]) for _, _, info in records() if info.get("ORIGIN") == origin}
    assert ids, origin
    assert {tuple(row["origin"]) for row in rows if row["allele_id"] in ids} == {tuple(names)}


def test_geneinfo_is_split_into_ids_and_symbols(by_variation):
    assert by_variation[2498404]["gene_ids"] == [84842, 129930440]
    assert by_variation[2498404]["gene_symbols"] == ["HPDL", "LOC129930440"]
    assert by_variation[91282]["gene_symbols"] == ["PMS2", "AIMP2"]
    assert by_variation[91282]["molecular_consequences"] == ["SO:0001583|missense_variant",
                                                             "SO:0001627|intron_variant"]


def test_disease_names_and_ids_stay_aligned(converted, by_variation):
    _, rows = converted
    for row in rows:
        if row["phenotype_list"] is not None:
            assert len(row["phenotype_ids"]) == len(row["phenotype_list"])
    row = by_variation[209598]
    assert row["phenotype_list"] == ["not provided", "Breast-ovarian cancer, familial, susceptibility to, 2"]
    assert row["phenotype_ids"][0] == "MedGen:C3661900"
    assert by_variation[822]["phenotype_ids"][1] is None  # CLNDISDB "." for a name without ids


def test_percent_encoding_and_database_names(converted):
    _, rows = converted
    hgvs = {value for row in rows for value in row["hgvs"] or []}
    assert "NC_000013.11:g.32332592=" in hgvs  # %3D in the file
    other_ids = {value for row in rows for value in row["other_ids"] or []}
    assert any(value.startswith("Breast Cancer Information Core (BIC) (BRCA2):") for value in other_ids)
    phenotype_ids = {value for row in rows for value in row["phenotype_ids"] or [] if value}
    assert any("Human Phenotype Ontology:HP:" in value for value in phenotype_ids)
    assert not any("Human_Phenotype_Ontology" in value for value in phenotype_ids)


def test_records_without_a_germline_classification_keep_their_row(converted):
    _, rows = converted
    unclassified = [info for _, _, info in records() if "CLNSIG" not in info]
    assert unclassified
    ids = {int(info["ALLELEID"]) for info in unclassified}
    assert {row["clinical_significance"] for row in rows if row["allele_id"] in ids} == {None}


def test_detected_as_vcf_and_release_argument_wins(tmp_path):
    assert detect_clinvar_format(EXCERPT) == "vcf"
    conversion = convert_clinvar(EXCERPT, tmp_path / "out", tmp_path / "rejected.parquet", release="weekly-7")
    assert conversion.release == "weekly-7"
    assert set(pq.read_table(conversion.files[0], columns=["release"]).column(0).to_pylist()) == {"weekly-7"}


def test_chr_prefixed_contigs_lose_the_prefix(tmp_path):
    lines = gzip.decompress(EXCERPT.read_bytes()).decode().split("\n")
    prefixed = [line if line.startswith("#") or not line else "chr" + line for line in lines]
    path = tmp_path / "clinvar_chr.vcf"
    path.write_text("\n".join(prefixed))
    conversion = convert_clinvar(path, tmp_path / "out", tmp_path / "rejected.parquet")
    assert conversion.partitions == {f"GRCh38/{chrom}": n for chrom, n in
                                     Counter(columns[0] for _, columns, _ in records()).items()}


def test_only_database_names_lose_their_underscores():
    import pyarrow as pa

    from genolake_assets.lib.clinvar.vcf import _database_names_spaced

    entries = pa.array(["Human_Phenotype_Ontology:HP:0001258", "EFO:EFO_0000407", "MONDO:MONDO:0011450",
                        "Genetic_Testing_Registry_(GTR):GTR000_1", None])
    assert _database_names_spaced(entries).to_pylist() == [
        "Human Phenotype Ontology:HP:0001258", "EFO:EFO_0000407", "MONDO:MONDO:0011450",
        "Genetic Testing Registry (GTR):GTR000_1", None]
