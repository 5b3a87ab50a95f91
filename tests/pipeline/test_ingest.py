"""End to end through real Dagster runs: landed VCFs become queryable tables."""

import dagster as dg
import pyarrow.parquet as pq

from tests.pipeline.helpers import INGEST_ASSETS, ingest, refresh_tables, tick


def test_landed_samples_are_converted_and_queryable(instance, resources, land, data_vcf):
    land(data_vcf / "HG00187.hg38.g.vcf.gz")
    land(data_vcf / "1kg_chr20_100samples_GRCh37.vcf")
    requests = tick(instance, resources).run_requests
    cohort_sample = next(r.partition_key for r in requests if r.tags["genolake/sample_name"] == "C1046::HG02024")

    for key in ("HG00187", cohort_sample):
        result = ingest(instance, resources, key)
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"rows_match_records": True, "schema_matches_catalog": True}
    refresh_tables(instance, resources)

    catalog = resources["catalog"]
    counts = {r["sample_id"]: r["n"] for r in
              catalog.query("SELECT sample_id, count(*) AS n FROM variants GROUP BY 1").to_pylist()}
    assert counts == {"HG00187": 41, cohort_sample: 73}
    blocks = catalog.query("SELECT count(*) AS n FROM reference_blocks WHERE sample_id = ?", ["HG00187"])
    assert blocks.to_pylist()[0]["n"] == 960
    sample = catalog.query("SELECT * FROM samples WHERE sample_id = 'HG00187'").to_pylist()[0]
    assert sample["status"] == "converted"
    assert sample["reference_genome"] == "GRCh38" and sample["caller"].startswith("GATK HaplotypeCaller")
    assert sample["variant_rows"] == 41 and sample["records_read"] == 1000
    assert len(sample["sha256"]) == 64 and sample["raw_key"].startswith("raw/vcf/")


def test_materialisation_metadata_names_rows_bytes_and_uris(instance, resources, land, data_vcf, store):
    land(data_vcf / "HG00190.hg38.g.vcf.gz")
    tick(instance, resources)

    result = ingest(instance, resources, "HG00190")

    events = {e.asset_key.to_user_string(): e.materialization.metadata
              for e in result.get_asset_materialization_events()}
    variants = events["sample_variants"]
    assert variants["rows"].value > 0 and variants["bytes"].value > 0
    assert variants["uri"].value.endswith("variants/sample_id=HG00190/part-00000.parquet")
    assert events["raw_vcf"]["sha256"].value and events["raw_vcf"]["reference_genome"].value == "GRCh38"
    on_disk = pq.read_metadata(store.local_path("variants/sample_id=HG00190/part-00000.parquet"))
    assert on_disk.num_rows == variants["rows"].value


def test_rematerialising_a_partition_is_idempotent(instance, resources, land, data_vcf, store):
    land(data_vcf / "NA12249.hg38.g.vcf.gz")
    tick(instance, resources)
    ingest(instance, resources, "NA12249")
    key = "variants/sample_id=NA12249/part-00000.parquet"
    first = pq.read_table(store.local_path(key))

    assert ingest(instance, resources, "NA12249").success

    assert pq.read_table(store.local_path(key)).equals(first)
    assert [o.key for o in store.list_objects("variants")] == [key]


def test_a_multi_partition_backfill_converts_a_cohort_in_one_run(instance, resources, land, data_vcf):
    land(data_vcf / "1kg_chr20_100samples_GRCh37.vcf")
    keys = [r.partition_key for r in tick(instance, resources).run_requests]

    result = dg.materialize(
        INGEST_ASSETS, instance=instance, resources=resources,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )

    assert result.success
    refresh_tables(instance, resources)
    n = resources["catalog"].query("SELECT count(DISTINCT sample_id) AS n FROM reference_blocks").to_pylist()[0]["n"]
    assert n == 100


def test_a_landed_vcf_is_marked_for_expiry_only_after_its_raw_copy_exists(instance, resources, land, data_vcf, store,
                                                                          tmp_path):
    good = land(data_vcf / "HG00190.hg38.g.vcf.gz")
    broken = tmp_path / "HG00187.hg38.g.vcf.gz"
    whole = (data_vcf / "HG00187.hg38.g.vcf.gz").read_bytes()
    broken.write_bytes(whole[:len(whole) - 5_000])  # a truncated upload whose header still reads
    bad = land(broken)
    tick(instance, resources)
    assert store.get_tags(good) == {} and store.get_tags(bad) == {}

    assert ingest(instance, resources, "HG00190").success
    assert not ingest(instance, resources, "HG00187").success

    assert store.get_tags(good) == {"genolake-copied": "true"}
    assert store.get_tags(bad) == {}  # refused: its only lake copy stays, untagged, never expired
