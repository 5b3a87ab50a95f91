"""cohort_variants through real Dagster runs: appends, compaction, re-conversion, catalog views on
DuckDB and Glue (moto), the lookup and the cohort SQL, all checked against the per-sample tables."""

from __future__ import annotations

import json
import time

import dagster as dg
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from genolake_assets.assets.variants import cohort_variants
from genolake_assets.lib.cohort.lookup import parse_marker
from genolake_assets.lib.cohort.state import STATE_KEY, CohortState
from genolake_assets.lib.cohort.lookup import lookup
from genolake_assets.queries import render
from genolake_assets.resources.lake.s3_store import aws_client
from tests.pipeline.helpers import ingest, refresh_tables, tick

GVCFS = ("HG00187", "HG00190", "HG01377", "NA12249", "NA20317")


def build_cohort(instance, resources, **config) -> dict:
    result = dg.materialize([cohort_variants], instance=instance, resources=resources,
                            run_config={"ops": {"cohort_variants": {"config": config}}} if config else None)
    assert result.success
    return {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}


def land_and_ingest(instance, resources, land, data_vcf, samples) -> None:
    for sample in samples:
        land(data_vcf / f"{sample}.hg38.g.vcf.gz")
    for request in tick(instance, resources).run_requests:
        if request.partition_key in samples:  # the test's sensor ticks start without a cursor
            assert ingest(instance, resources, request.partition_key).success
    assert refresh_tables(instance, resources).success


def state_of(store) -> CohortState:
    return CohortState.from_json(store.read_bytes(STATE_KEY))


def per_sample_genotypes(store, position: int) -> dict[str, str]:
    """sample → genotype at chr22:position, read straight from the per-sample tables."""
    found = {}
    for table in ("reference_blocks", "variants"):
        for obj in store.list_objects(f"{table}/"):
            rows = pq.read_table(store.local_path(obj.key),
                                 columns=["sample_id", "pos", "end", "gt", "gt_phased"]).to_pylist()
            for row in rows:
                end = row["end"] or row["pos"]
                if (table == "variants" and row["pos"] == position) or (
                        table == "reference_blocks" and row["pos"] <= position <= end):
                    alleles = row["gt"] if row["gt_phased"] else sorted(row["gt"], key=lambda a: (a is None, a))
                    found[row["sample_id"]] = ("|" if row["gt_phased"] else "/").join(
                        "." if a is None else str(a) for a in alleles)
    return found


def test_appends_compaction_and_lookups_agree_with_the_per_sample_tables(instance, resources, land, data_vcf, store):
    land_and_ingest(instance, resources, land, data_vcf, GVCFS[:2])
    first = build_cohort(instance, resources)
    assert first["samples"] == 2 and first["samples_added"] == 2 and first["version"] == 1

    land_and_ingest(instance, resources, land, data_vcf, GVCFS[2:])
    second = build_cohort(instance, resources)
    assert second["samples"] == 5 and second["samples_added"] == 3 and second["compacted_partitions"] == 0
    partition = state_of(store).partitions["chr22/10"]
    assert len(partition.files) == 2  # one delta per run

    again = build_cohort(instance, resources)  # nothing new: a no-op version
    assert again["samples_added"] == 0 and again["rows_added"] == 0

    compacted = build_cohort(instance, resources, max_files_per_partition=1)
    state = state_of(store)
    partition = state.partitions["chr22/10"]
    assert partition.gen == 2 and len(partition.files) == 1 and partition.files[0].startswith("compact-")
    assert compacted["rows"] == second["rows"]
    old_gen = "cohort/contig=chr22/bin=10/gen=1/"
    assert old_gen in state.retired and list(store.list_objects(old_gen))  # kept for in-flight readers
    build_cohort(instance, resources)
    assert not list(store.list_objects(old_gen))  # gone once no manifest refers to it

    variant_rows = resources["catalog"].query("SELECT count(*) AS n FROM variants").to_pylist()[0]["n"]
    cohort_variant_rows = resources["catalog"].query(
        "SELECT count(*) AS n FROM cohort_variants WHERE kind = 'variant'").to_pylist()[0]["n"]
    assert cohort_variant_rows == variant_rows

    positions = [r["pos"] for r in resources["catalog"].query(
        "SELECT DISTINCT pos FROM variants ORDER BY pos LIMIT 25").to_pylist()]
    filesystem, root = pafs.LocalFileSystem(), str(resources["lake"].home_path / "lake")
    result = lookup([parse_marker(f"chr22:{p}") for p in positions], state, filesystem, root).table.to_pylist()
    for position in positions:
        expected = per_sample_genotypes(store, position)
        got = {r["sample_id"]: r["genotype"] for r in result if r["pos"] == position and r["status"] != "no_call"}
        assert {s: g for s, g in got.items()} == {s: expected[s] for s in got} and set(got) == set(expected)

    # The same question through the project's SQL path (Trino → DuckDB) on the cohort table.
    position = positions[0]
    frequencies = resources["sql"].run(render("cohort_frequency_at_marker", contig="chr22", pos=position,
                                              bin_size=state.bin_size)).table.to_pylist()
    carriers = {r["genotype"]: r for r in result if r["pos"] == position and r["status"] == "variant"}
    called = sum(1 for g in per_sample_genotypes(store, position).values() if "." not in g)
    assert frequencies and all(f["called_samples"] == called for f in frequencies)
    assert sum(f["samples_with_genotype"] for f in frequencies) == len(
        [r for r in result if r["pos"] == position and r["status"] == "variant"]) >= len(carriers)

    top = resources["sql"].run(render("top_variants_in_region", contig="chr22", region_start=10_000_000,
                                      region_end=11_000_000, bin_size=state.bin_size, result_limit=5)).table
    direct = resources["catalog"].query(
        "SELECT pos, count(*) AS n FROM variants WHERE list_contains(gt, 1) GROUP BY pos ORDER BY n DESC, pos LIMIT 5")
    assert top.column("carriers").to_pylist() == direct.column("n").to_pylist()


def test_a_reconverted_sample_replaces_its_rows(instance, resources, land, data_vcf, store):
    land_and_ingest(instance, resources, land, data_vcf, GVCFS[:2])
    before = build_cohort(instance, resources)
    time.sleep(1.1)  # conversion times have one-second resolution
    assert ingest(instance, resources, "HG00187").success  # converted again: a new version token
    assert refresh_tables(instance, resources).success
    after = build_cohort(instance, resources)
    assert after["samples_reconverted"] == 1 and after["rows"] == before["rows"]
    assert after["rows_removed"] == after["rows_added"] > 0
    rows = resources["catalog"].query(
        "SELECT sample_id, count(*) AS n FROM cohort_variants GROUP BY 1 ORDER BY 1").to_pylist()
    assert [r["sample_id"] for r in rows] == ["HG00187", "HG00190"]


def test_the_cohort_table_on_glue_moves_partitions_to_the_compacted_generation(
        instance, data_vcf, aws_resources, moto_endpoint, bucket):
    resources = aws_resources
    store = resources["lake"].store()

    def land_on_s3(samples):
        for sample in samples:
            store.upload(data_vcf / f"{sample}.hg38.g.vcf.gz", f"landing/{sample}.hg38.g.vcf.gz")
        for request in tick(instance, resources).run_requests:
            if request.partition_key in samples:
                assert ingest(instance, resources, request.partition_key).success
        assert refresh_tables(instance, resources).success

    land_on_s3(GVCFS[:2])
    build_cohort(instance, resources)

    glue = aws_client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")
    database = resources["catalog"].database
    table = glue.get_table(DatabaseName=database, Name="cohort_variants")["Table"]
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("contig", "string"), ("bin", "int")]
    found = glue.get_partitions(DatabaseName=database, TableName="cohort_variants",
                                Expression="contig = 'chr22' AND bin = 10")["Partitions"]
    assert found[0]["StorageDescriptor"]["Location"] == f"s3://{bucket}/lake/cohort/contig=chr22/bin=10/gen=1/"

    land_on_s3(GVCFS[2:3])
    build_cohort(instance, resources, max_files_per_partition=1)  # one file + one delta > 1: compact
    found = glue.get_partitions(DatabaseName=database, TableName="cohort_variants",
                                Expression="contig = 'chr22' AND bin = 10")["Partitions"]
    assert found[0]["StorageDescriptor"]["Location"] == f"s3://{bucket}/lake/cohort/contig=chr22/bin=10/gen=2/"
    manifest = json.loads(store.read_bytes(STATE_KEY))
    assert manifest["partitions"]["chr22/10"]["gen"] == 2
