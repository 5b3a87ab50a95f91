"""What the Dagster UI shows, from real definitions and real materialisations on the local profile:
column schemas (with a line per column), row counts, clickable URIs, table names, checksums, kinds,
ClinVar's freshness policy and the CRAM round-trip check."""

from dataclasses import fields
from datetime import timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest

from genolake_assets.assets.alignments import ROUND_TRIP_CHECK, round_trip_check
from genolake_assets.assets.annotations import clinvar_source, clinvar_table, clinvar_variants
from genolake_assets.assets.variants import cohort_variants
from genolake_assets.assets.reports import drug_response_report
from genolake_assets.demo import RANGE_END, RANGE_START
from genolake_assets.lib.alignments.registry import load_alignment
from genolake_assets.lib.clinvar.schema import CLINVAR_SCHEMA
from genolake_assets.lib.cohort.layout import COHORT_SCHEMA
from genolake_assets.lib.lake.registry import SampleRecord
from genolake_assets.lib.lake.checksums import sha256_of_file
from tests.pipeline.helpers import INGEST_ASSETS, refresh_tables, tick
from tests.pipeline.report_oracle import COHORT_VCF, VARIANT_SUMMARY
from tests.pipeline.test_alignments import HTSNEXUS, compress, land_reference
from tests.pipeline.test_alignments import tick as tick_alignments
from tests.pipeline.test_alignments import DATA_BAM

GVCF = COHORT_VCF.parent / "HG00187.hg38.g.vcf.gz"
SCHEMA, ROWS, PARTITION_ROWS, URI, TABLE = ("dagster/column_schema", "dagster/row_count",
                                            "dagster/partition_row_count", "dagster/uri", "dagster/table_name")


def columns(schema) -> dict[str, str | None]:
    """name → description of a column schema metadata value (definition or event)."""
    schema = getattr(schema, "schema", schema)
    return {column.name: column.description for column in schema.columns}


def events_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str | None, dict]:
    """partition (None if unpartitioned) → metadata of each materialisation of ``asset`` in the run."""
    return {e.partition: dict(e.materialization.metadata) for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == asset}


def local_path(store, uri_value) -> str:
    assert isinstance(uri_value, dg.UrlMetadataValue), uri_value
    key = uri_value.value.removeprefix(store.root_uri.rstrip("/") + "/")
    return str(store.local_path(key))


@pytest.fixture(scope="module")
def ui_lake(tmp_path_factory):
    """One lake: the 100-sample cohort ingested in one run, a gVCF in its own run, the catalog tables,
    the cohort, ClinVar and the report; the results of each run are kept for the tests to read."""
    home = tmp_path_factory.mktemp("ui") / "home"
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("GENOLAKE_PROFILE", "local")
        patch.setenv("GENOLAKE_HOME", str(home))
        from genolake_assets.resources.profile import build_resources

        resources = build_resources()
        store = resources["lake"].store()
        for path in (COHORT_VCF, GVCF):
            store.upload(path, f"landing/{path.name}")
        requests = tick(instance, resources).run_requests
        cohort = [r.partition_key for r in requests if r.tags["genolake/source_uri"].endswith(COHORT_VCF.name)]
        runs = {"backfill": dg.materialize(INGEST_ASSETS, instance=instance, resources=resources,
                                           tags={RANGE_START: cohort[0], RANGE_END: cohort[-1]}),
                "single": dg.materialize(INGEST_ASSETS, instance=instance, resources=resources,
                                         partition_key="HG00187"),
                "tables": refresh_tables(instance, resources),
                "cohort": dg.materialize([cohort_variants], instance=instance, resources=resources),
                "clinvar": dg.materialize(
                    [clinvar_source, clinvar_variants, clinvar_table], instance=instance, resources=resources,
                    run_config={"ops": {"clinvar_source": {"config": {"uri": str(VARIANT_SUMMARY)}}}}),
                "report": dg.materialize(
                    [drug_response_report], instance=instance, resources=resources,
                    run_config={"ops": {"drug_response_report": {"config": {
                        "sample_pattern": "HG%", "significance_pattern": "%benign%", "assembly": "GRCh37"}}}})}
        assert all(result.success for result in runs.values())
        yield runs, store, len(cohort)


def test_the_definitions_carry_table_schemas_kinds_owners_and_clinvar_freshness(lake_home):
    from genolake_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    node = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    expected = {"clinvar_variants": CLINVAR_SCHEMA.names, "clinvar_table": CLINVAR_SCHEMA.names,
                "samples_table": [f.name for f in fields(SampleRecord)], "cohort_variants": COHORT_SCHEMA.names}
    for asset, names in expected.items():
        described = columns(node[asset].metadata[SCHEMA])
        assert list(described) == list(names), asset
        assert all(described.values()), f"{asset}: columns without a description"
    assert len(CLINVAR_SCHEMA.names) == 38

    assert node["drug_response_report"].kinds == {"sql", "duckdb", "athena", "parquet"}
    for table in ("variants_table", "reference_blocks_table", "clinvar_table"):
        assert node[table].kinds == {"duckdb", "glue"}
    for asset, spec in node.items():
        assert spec.kinds and "hail" not in spec.kinds, asset  # hail arrives with the Hail engine
        assert spec.owners and spec.description and spec.group_name != "default", asset

    for asset in ("clinvar_table", "clinvar_variants"):
        policy = node[asset].freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy) and policy.fail_window.to_timedelta() == timedelta(days=7)
        assert policy.warn_window.to_timedelta() == timedelta(days=6)
    assert node["drug_response_report"].freshness_policy is None
    assert dg.AssetCheckKey(dg.AssetKey("compressed_bam"), ROUND_TRIP_CHECK) in graph.asset_check_keys


def test_each_partition_of_a_backfill_run_describes_its_own_sample(ui_lake):
    runs, store, samples = ui_lake
    for asset in ("sample_variants", "sample_reference_blocks"):
        events = events_of(runs["backfill"], asset)
        assert len(events) >= samples  # the range may hold the gVCF's partition too
        for partition in sorted(events)[:3]:
            metadata = events[partition]
            assert metadata["sample_id"].value == partition
            path = local_path(store, metadata[URI])
            assert f"sample_id={partition}/" in path and metadata["uri"] == metadata[URI]
            on_disk = pq.read_metadata(path)
            assert metadata["rows"].value == metadata[PARTITION_ROWS].value == on_disk.num_rows
            assert list(columns(metadata[SCHEMA])) == on_disk.schema.to_arrow_schema().names
            assert metadata["sha256"].value == sha256_of_file(path)
            assert metadata["samples_in_run"].value == len(events)  # the run's totals, under their own names
    raw = events_of(runs["backfill"], "raw_vcf")
    assert {metadata["sample_id"].value for metadata in raw.values()} == set(raw)


def test_a_sample_partition_shows_its_columns_described_from_the_vcf_header(ui_lake):
    runs, store, _ = ui_lake
    metadata = events_of(runs["single"], "sample_variants")["HG00187"]
    described = columns(metadata[SCHEMA])
    assert described["pos"].startswith("1-based position")
    assert described["fmt_gq"] == "FORMAT/GQ (Number=1): Genotype Quality"
    assert described["info_dp"].startswith("INFO/DP (Number=1): ")
    assert all(described.values())
    assert metadata["engine"].value.startswith("genolake-arrow ") and metadata["seconds"].value >= 0
    assert metadata["written_by"].value.startswith("parquet-cpp-arrow version ")
    assert isinstance(metadata["source_uri"], dg.UrlMetadataValue)
    raw = events_of(runs["single"], "raw_vcf")["HG00187"]
    assert raw["sha256"].value == sha256_of_file(local_path(store, raw[URI]))


def test_catalog_tables_show_their_registered_columns_rows_and_names(ui_lake):
    runs, _, samples = ui_lake
    tables = runs["tables"]
    variants = events_of(tables, "variants_table")[None]
    assert variants[TABLE].value.endswith(".main.variants")
    assert variants[ROWS].value == variants["rows"].value > 0
    described = columns(variants[SCHEMA])
    assert {"sample_id", "variant_id", "info_dp", "fmt_gq"} <= set(described) and all(described.values())
    samples_table = events_of(tables, "samples_table")[None]
    assert samples_table[ROWS].value == samples + 1
    assert set(columns(samples_table[SCHEMA])) == {f.name for f in fields(SampleRecord)}
    cohort = events_of(runs["cohort"], "cohort_variants")[None]
    assert list(columns(cohort[SCHEMA]))[:len(COHORT_SCHEMA)] == COHORT_SCHEMA.names
    assert cohort[ROWS].value > 0 and cohort[TABLE].value.endswith(".main.cohort_variants")


def test_clinvar_materialisations_link_their_files_and_describe_every_column(ui_lake):
    runs, store, _ = ui_lake
    source = events_of(runs["clinvar"], "clinvar_source")[None]
    assert sha256_of_file(local_path(store, source[URI])) == source["sha256"].value
    assert isinstance(source["source_uri"], dg.PathMetadataValue)  # a local file, given as a path
    snapshot = events_of(runs["clinvar"], "clinvar_variants")[None]
    assert local_path(store, snapshot[URI]).endswith(snapshot["snapshot"].value.rsplit("/", 1)[-1])
    assert snapshot[ROWS].value == snapshot["rows"].value > 0
    table = events_of(runs["clinvar"], "clinvar_table")[None]
    assert table[ROWS].value == snapshot["rows"].value and table[TABLE].value.endswith(".main.clinvar")
    described = columns(table[SCHEMA])
    assert set(CLINVAR_SCHEMA.names) <= set(described) and all(described[n] for n in CLINVAR_SCHEMA.names)


def test_the_report_shows_its_result_schema_rows_and_file_links(ui_lake):
    runs, store, _ = ui_lake
    report = events_of(runs["report"], "drug_response_report")[None]
    parquet = local_path(store, report[URI])
    assert parquet.endswith("drug_response/latest/drug_response_report.parquet")
    result = pq.read_table(parquet)
    assert report[ROWS].value == result.num_rows > 0
    described = columns(report[SCHEMA])
    assert list(described) == result.column_names and all(described.values())
    for name in ("csv_uri", "chart_uri", "run_uri"):
        assert isinstance(report[name], dg.UrlMetadataValue)
    assert report["engine"].value.startswith("duckdb")


@pytest.fixture
def htsnexus(instance, resources, store):
    """A real BAM whose CRAM keeps every record except 103 unmapped reads' CIGARs (which CRAM cannot)."""
    store.upload(DATA_BAM / f"{HTSNEXUS}.bam", f"landing/{HTSNEXUS}.bam")
    land_reference(store, "htsnexus_test_NA12878.md_ref.fa.gz")
    tick_alignments(instance, resources)
    return HTSNEXUS


def check_of(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == ROUND_TRIP_CHECK]
    return evaluation


def test_the_round_trip_check_passes_for_a_verified_cram_with_records_ratio_and_accepted_differences(
        htsnexus, instance, resources, store):
    result = compress(instance, resources, htsnexus, ignore_md5=True)

    assert result.success
    evaluation = check_of(result)
    assert evaluation.passed and evaluation.asset_key == dg.AssetKey("compressed_bam")
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["records"] == metadata["cram_records"] > 0 and metadata["ratio"] > 1
    assert metadata["accepted_differences"]["unmapped_read_cigar"] == 103
    compressed = events_of(result, "compressed_bam")[htsnexus]
    assert compressed[URI] == compressed["cram_uri"] and local_path(store, compressed[URI]).endswith(".cram")

    # Evaluated from the lake: a CRAM that vanished after verification no longer passes.
    store.delete(load_alignment(store, htsnexus).cram_key)
    gone = round_trip_check(store, htsnexus)
    assert not gone.passed and "is missing or not the verified size" in gone.description


def test_the_round_trip_check_fails_with_the_reason_when_strict_mode_refuses_the_cram(
        htsnexus, instance, resources):
    result = compress(instance, resources, htsnexus, ignore_md5=True, strict=True)

    assert not result.success
    evaluation = check_of(result)
    assert not evaluation.passed
    assert "does not decode to the original" in evaluation.description
    assert "unmapped_read_cigar" in evaluation.description
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["error_code"] == "verification_failed" and metadata["records"] > 0
    assert "unmapped_read_cigar" in str(metadata["differences"])
