"""The drug-response report end to end (ingest → ClinVar → report through real Dagster runs on DuckDB),
checked row for row against an independent plain-Python computation over the VCFs and the ClinVar TSV."""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from genolake_assets.assets.annotations import clinvar_source, clinvar_table, clinvar_variants
from genolake_assets.assets.variants import cohort_variants
from genolake_assets.assets.reports import drug_response_report
from genolake_assets.demo import RANGE_END, RANGE_START
from tests.pipeline.helpers import INGEST_ASSETS, refresh_tables, tick
from tests.pipeline.report_oracle import COHORT_VCF, GVCFS, VARIANT_SUMMARY, derived_clinvar, expected_report

CLINVAR_ASSETS = [clinvar_source, clinvar_variants, clinvar_table]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """One lake for the module: the 100-sample cohort and 5 gVCFs ingested, tables refreshed."""
    home = tmp_path_factory.mktemp("report") / "home"
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("GENOLAKE_PROFILE", "local")
        patch.setenv("GENOLAKE_HOME", str(home))
        from genolake_assets.resources.profile import build_resources

        resources = build_resources()
        store = resources["lake"].store()
        for path in [COHORT_VCF, *GVCFS]:
            store.upload(path, f"landing/{path.name}")
        requests = tick(instance, resources).run_requests
        by_file: dict[str, list[str]] = {}
        for request in requests:
            by_file.setdefault(request.tags["genolake/source_uri"], []).append(request.partition_key)
        for keys in by_file.values():
            tags = {RANGE_START: keys[0], RANGE_END: keys[-1]}
            assert dg.materialize(INGEST_ASSETS, instance=instance, resources=resources, tags=tags).success
        refresh_tables(instance, resources)
        assert dg.materialize([cohort_variants], instance=instance, resources=resources).success
        yield instance, resources


def load_clinvar(lake, source: Path) -> dg.ExecuteInProcessResult:
    instance, resources = lake
    return dg.materialize(CLINVAR_ASSETS, instance=instance, resources=resources,
                          run_config={"ops": {"clinvar_source": {"config": {"uri": str(source)}}}})


def run_report(lake, **config) -> tuple[list[dict], dict]:
    instance, resources = lake
    result = dg.materialize([drug_response_report], instance=instance, resources=resources,
                            run_config={"ops": {"drug_response_report": {"config": config}}},
                            selection=[drug_response_report])
    assert result.success
    event = result.get_asset_materialization_events()[0]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    store = resources["lake"].store()
    table = pq.read_table(store.local_path("reports/drug_response/latest/drug_response_report.parquet"))
    return table.to_pylist(), metadata


def assert_same_rows(actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        for column, value in want.items():
            if isinstance(value, float):
                assert math.isclose(got[column], value, rel_tol=1e-12), (column, got, want)
            else:
                assert got[column] == value, (column, got, want)


def test_real_clinvar_matches_on_the_cohort_equal_an_independent_computation(lake):
    load_clinvar(lake, VARIANT_SUMMARY)
    for sample_pattern, significance in [("%::HG%", "%benign%"), ("%", "%conflicting%"), ("C1589::%", "%")]:
        rows, metadata = run_report(lake, sample_pattern=sample_pattern, significance_pattern=significance,
                                    assembly="GRCh37", limit=50)
        size, expected = expected_report([COHORT_VCF], VARIANT_SUMMARY, sample_pattern, significance, "GRCh37", 50)
        assert expected, f"the bundled data should have matches for {significance}"
        assert_same_rows(rows, expected)
        assert metadata["cohort_samples"] == size and metadata["rows"] == len(expected)
    assert size == 9


def test_the_seed_drug_response_question_is_honestly_empty_on_the_cohort(lake):
    load_clinvar(lake, VARIANT_SUMMARY)
    rows, metadata = run_report(lake, sample_pattern="%", significance_pattern="%drug response%",
                                assembly="GRCh37", limit=50)
    assert rows == [] == expected_report([COHORT_VCF], VARIANT_SUMMARY, "%", "%drug response%", "GRCh37", 50)[1]
    assert metadata["cohort_samples"] == 100 and metadata["rows"] == 0
    assert "No variant" in metadata["report"]


def test_called_denominator_counts_reference_blocks_and_skips_no_calls(lake, tmp_path):
    clinvar = derived_clinvar(tmp_path / "variant_summary_derived.txt.gz")
    load_clinvar(lake, clinvar)

    rows, metadata = run_report(lake, sample_pattern="%", significance_pattern="%drug response%",
                                assembly="GRCh38", limit=500)
    size, expected = expected_report(GVCFS, clinvar, "%", "%drug response%", "GRCh38", 500)
    assert size == 5 and len(expected) > 20
    assert_same_rows(rows, expected)
    # The point of the second frequency: some sites are not covered in every gVCF.
    assert any(r["called_samples"] < r["cohort_samples"] for r in rows)
    assert all(r["called_frequency"] >= r["seed_frequency"] for r in rows)

    rows, _ = run_report(lake, sample_pattern="%", significance_pattern="%drug response%", assembly="GRCh37",
                         limit=10)
    size, expected = expected_report([COHORT_VCF], clinvar, "%", "%drug response%", "GRCh37", 10)
    assert_same_rows(rows, expected)
    assert len(rows) == 10 and all(r["called_samples"] < 100 for r in rows)


def test_report_files_chart_and_metadata(lake):
    load_clinvar(lake, VARIANT_SUMMARY)
    rows, metadata = run_report(lake, sample_pattern="%::HG%", significance_pattern="%benign%", assembly="GRCh37",
                                limit=3)
    store = lake[1]["lake"].store()
    csv_rows = pa_csv.read_csv(store.local_path("reports/drug_response/latest/drug_response_report.csv")).to_pylist()
    assert [r["pos"] for r in csv_rows] == [r["pos"] for r in rows] and len(rows) == 3
    png = store.read_bytes("reports/drug_response/latest/drug_response_report.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    assert metadata["chart"].startswith("![seed vs called frequency](data:image/png;base64,")
    assert metadata["report"].count("\n") == 2 + 3 - 1
    assert metadata["engine"].startswith("duckdb") and metadata["bytes_scanned"] > 0
    assert "LIKE '%::HG%'" in metadata["query"]


def test_patterns_are_bound_as_literals_not_sql(lake):
    load_clinvar(lake, VARIANT_SUMMARY)
    rows, metadata = run_report(lake, sample_pattern="x' OR '1'='1", significance_pattern="%'; DROP TABLE samples; --",
                                assembly="GRCh37", limit=5)
    assert rows == [] and metadata["cohort_samples"] == 0
    instance, resources = lake
    assert resources["catalog"].table_columns("samples") is not None


@pytest.mark.parametrize("config, message", [
    ({"assembly": "GRCh38; DROP"}, "not an assembly name"),
    ({"limit": 0}, "limit must be between"),
    ({"sample_pattern": ""}, "must not be empty"),
])
def test_bad_report_config_fails_with_a_clear_message(lake, config, message):
    instance, resources = lake
    result = dg.materialize([drug_response_report], instance=instance, resources=resources, raise_on_error=False,
                            run_config={"ops": {"drug_response_report": {"config": config}}},
                            selection=[drug_response_report])
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert message in str(failure.event_specific_data.error)
