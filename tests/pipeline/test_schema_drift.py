"""Schema drift between samples: the header is the schema, and the catalog is one view over all samples.

(a) a later sample declaring a new INFO key adds a nullable column (NULL for earlier samples), and
    the run's ``schema_matches_catalog`` check reports it;
(b) a later sample redeclaring an existing key with another type is rejected (quarantined with code
    ``schema_conflict``) and the catalog's data is unchanged.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from tests.conftest import DATA_VCF
from tests.pipeline.helpers import ingest, refresh_tables, tick

SCHEMA_CHECK = dg.AssetCheckKey(dg.AssetKey("sample_variants"), "schema_matches_catalog")


def gvcf_lines(name: str) -> list[str]:
    return gzip.decompress((DATA_VCF / f"{name}.hg38.g.vcf.gz").read_bytes()).decode().rstrip("\n").split("\n")


def renamed(lines: list[str], sample: str) -> list[str]:
    lines = list(lines)
    i = next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))
    lines[i] = "\t".join(lines[i].split("\t")[:9] + [sample])
    return lines


def first_variant_index(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if not line.startswith("#") and line.split("\t")[4] != "<NON_REF>")


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def variant_count(resources) -> dict[str, int]:
    rows = resources["catalog"].query("SELECT sample_id, count(*) AS n FROM variants GROUP BY sample_id").to_pylist()
    return {r["sample_id"]: r["n"] for r in rows}


def ingest_landed(instance, resources, cursor=None) -> tuple[dict[str, dg.ExecuteInProcessResult], str]:
    result = tick(instance, resources, cursor=cursor)
    runs = {r.partition_key: ingest(instance, resources, r.partition_key) for r in result.run_requests}
    return runs, result.cursor


def test_new_info_key_becomes_a_nullable_column_reported_by_the_schema_check(tmp_path, instance, resources, land):
    land(DATA_VCF / "HG00190.hg38.g.vcf.gz")
    land(DATA_VCF / "HG00187.hg38.g.vcf.gz")
    runs, cursor = ingest_landed(instance, resources)
    assert sorted(runs) == ["HG00187", "HG00190"] and all(r.success for r in runs.values())
    refresh_tables(instance, resources)
    columns_before = resources["catalog"].table_columns("variants")
    assert "info_newkey" not in columns_before

    lines = renamed(gvcf_lines("NA12249"), "NEWSAMPLE1")
    chrom = next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))
    lines.insert(chrom, '##INFO=<ID=NEWKEY,Number=1,Type=Integer,Description="A key earlier samples do not have">')
    i = first_variant_index(lines)
    cols = lines[i].split("\t")
    cols[7] += ";NEWKEY=7"
    lines[i] = "\t".join(cols)
    new_pos, new_alt = int(cols[1]), cols[4].split(",")[0]
    land(write_text(tmp_path / "NEWSAMPLE1.g.vcf", lines))

    runs, _ = ingest_landed(instance, resources, cursor)
    (sample_id, result), = runs.items()
    assert sample_id == "NEWSAMPLE1" and result.success
    check = {e.asset_check_key: e for e in result.get_asset_check_evaluations()}[SCHEMA_CHECK]
    assert check.passed is False
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["new_variant_columns"].value == "info_newkey"
    assert check.metadata["new_reference_block_columns"].value == "info_newkey"

    refresh_tables(instance, resources)
    columns = resources["catalog"].table_columns("variants")
    assert columns["info_newkey"] == "INTEGER"
    assert {c: t for c, t in columns.items() if c != "info_newkey"} == columns_before
    values = resources["catalog"].query(
        "SELECT sample_id, pos, alt, info_newkey FROM variants ORDER BY sample_id, pos, alt").to_pylist()
    older = [r for r in values if r["sample_id"] in ("HG00187", "HG00190")]
    assert older and all(r["info_newkey"] is None for r in older)
    new = [r for r in values if r["sample_id"] == "NEWSAMPLE1"]
    assert [(r["pos"], r["alt"]) for r in new if r["info_newkey"] is not None] == [(new_pos, new_alt)]
    assert [r["info_newkey"] for r in new if r["info_newkey"] is not None] == [7]
    assert sum(r["info_newkey"] is None for r in new) == len(new) - 1


def test_conflicting_type_for_an_existing_key_is_quarantined_and_catalog_unchanged(tmp_path, instance, resources,
                                                                                     store, land):
    land(DATA_VCF / "HG00190.hg38.g.vcf.gz")
    runs, cursor = ingest_landed(instance, resources)
    assert runs["HG00190"].success
    refresh_tables(instance, resources)
    counts_before = variant_count(resources)
    blocks_before = resources["catalog"].query("SELECT count(*) AS n FROM reference_blocks").to_pylist()[0]["n"]
    columns_before = resources["catalog"].table_columns("variants")
    assert columns_before["info_dp"] == "INTEGER"

    lines = renamed(gvcf_lines("HG00187"), "DRIFTED1")
    declaration = next(i for i, line in enumerate(lines) if line.startswith("##INFO=<ID=DP,"))
    lines[declaration] = lines[declaration].replace("Type=Integer", "Type=Float")
    land(write_text(tmp_path / "DRIFTED1.g.vcf", lines))

    runs, _ = ingest_landed(instance, resources, cursor)
    (sample_id, result), = runs.items()
    assert sample_id == "DRIFTED1" and not result.success
    message = "\n".join(e.step_failure_data.error.message for e in result.all_events
                        if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "info_dp: DOUBLE (catalog has INTEGER)" in message

    reason = json.loads(store.read_bytes("quarantine/DRIFTED1/reason.json"))
    assert reason["code"] == "schema_conflict"
    assert "info_dp: DOUBLE (catalog has INTEGER)" in reason["problem"]
    assert reason["file"].endswith("/landing/DRIFTED1.g.vcf")
    assert store.exists("quarantine/DRIFTED1/DRIFTED1.g.vcf")
    record = json.loads(store.read_bytes("registry/samples/DRIFTED1.json"))
    assert record["status"] == "quarantined" and "info_dp" in record["reason"]
    for table in ("variants", "reference_blocks"):
        assert not (store.root / table / "sample_id=DRIFTED1").exists()
    assert pq.read_schema(store.root / "variants" / "sample_id=HG00190" / "part-00000.parquet").field(
        "info_dp").type == "int32"

    refresh_tables(instance, resources)
    assert variant_count(resources) == counts_before
    assert resources["catalog"].query("SELECT count(*) AS n FROM reference_blocks").to_pylist()[0]["n"] == blocks_before
    assert resources["catalog"].table_columns("variants") == columns_before
    samples = {r["sample_id"]: r
               for r in resources["catalog"].query("SELECT sample_id, status FROM samples").to_pylist()}
    assert samples["DRIFTED1"]["status"] == "quarantined" and samples["HG00190"]["status"] == "converted"
