"""ClinVar through real Dagster runs on the local profile: source → snapshot → catalog table, atomic
refreshes, malformed rows kept aside, and the weekly schedule."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from genolake_assets.assets.annotations import clinvar_source, clinvar_table, clinvar_variants
from genolake_assets.lib.lake.layout import CLINVAR_PUBLISHED_KEY

DATA = Path(__file__).resolve().parents[1] / "data" / "clinvar"
VCF_EXCERPT = DATA / "clinvar_GRCh38_20260226.excerpt.vcf.gz"
EXOMISER = DATA / "exomiser_variant_summary_test.txt.gz"
CELLBASE = DATA / "cellbase_grch38_variant_summary_excerpt.txt.gz"
ASSETS = [clinvar_source, clinvar_variants, clinvar_table]


def refresh(instance, resources, source: Path, max_rejected_fraction: float | None = None, release: str | None = None):
    ops = {"clinvar_source": {"config": {"uri": str(source), **({"release": release} if release else {})}}}
    if max_rejected_fraction is not None:
        ops["clinvar_variants"] = {"config": {"max_rejected_fraction": max_rejected_fraction}}
    return dg.materialize(ASSETS, instance=instance, resources=resources, run_config={"ops": ops},
                          raise_on_error=False)


def metadata_of(result, asset: str) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def clinvar_rows(resources) -> list[dict]:
    return resources["catalog"].query(
        "SELECT release, source_format, assembly, chromosome, count(*) AS n FROM clinvar GROUP BY ALL ORDER BY ALL"
    ).to_pylist()


def test_a_clinvar_vcf_becomes_a_typed_partitioned_table(instance, resources, store):
    result = refresh(instance, resources, VCF_EXCERPT)
    assert result.success
    converted = metadata_of(result, "clinvar_variants")
    assert converted["rows"] == 1871 and converted["rejected_rows"] == 0 and converted["release"] == "2026-02-26"
    table = metadata_of(result, "clinvar_table")
    assert table["rows"] == 1871 and table["partitions"] == converted["partitions"]
    columns = resources["catalog"].table_columns("clinvar")
    assert columns["position_vcf"] == "BIGINT" and columns["gene_symbols"] == "VARCHAR[]"
    assert columns["last_evaluated"] == "DATE"
    brca = resources["catalog"].query(
        "SELECT count(*) AS n FROM clinvar WHERE list_contains(gene_symbols, 'BRCA2') AND chromosome = '13'")
    assert brca.to_pylist()[0]["n"] >= 1000
    files = [o.key for o in store.list_objects("clinvar/")]
    assert all("/assembly=GRCh38/chromosome=" in key and key.endswith("/part-00000.parquet") for key in files)
    for key in files:
        chromosome = key.split("chromosome=")[1].split("/")[0]
        column = pq.read_table(store.local_path(key), columns=["chromosome"]).column(0)
        assert set(column.to_pylist()) == {chromosome}


def test_a_refresh_flips_the_table_to_the_new_release_and_keeps_one_previous(instance, resources, store):
    assert refresh(instance, resources, EXOMISER).success
    first = clinvar_rows(resources)
    assert {r["assembly"] for r in first} == {"GRCh37", "GRCh38"} and sum(r["n"] for r in first) == 12
    assert refresh(instance, resources, VCF_EXCERPT).success
    assert {r["source_format"] for r in clinvar_rows(resources)} == {"vcf"}
    assert refresh(instance, resources, CELLBASE, release="2024-05").success
    rows = clinvar_rows(resources)
    assert {r["release"] for r in rows} == {"2024-05"} and sum(r["n"] for r in rows) == 10

    snapshots = {o.key.split("/")[1] for o in store.list_objects("clinvar/")}
    published = store.read_bytes(CLINVAR_PUBLISHED_KEY).decode()
    assert len(snapshots) == 2, snapshots  # the served one and the one before it; the first is removed
    assert all(s in published for s in snapshots)


def test_malformed_rows_are_counted_kept_aside_and_the_rest_published(instance, resources, store):
    result = refresh(instance, resources, DATA / "bad" / "wrong_column_count.txt.gz", max_rejected_fraction=0.5)
    assert result.success
    meta = metadata_of(result, "clinvar_variants")
    # Line 5 has 33 columns, line 9 has 35: both kept aside, the other 10 rows published.
    assert meta["rows"] == 10 and meta["rejected_rows"] == 2
    assert sum(meta["rejection_reasons"].values()) == 2
    rejected = pq.read_table(store.local_path(meta["rejected_rows_uri"].split("/lake/", 1)[1])).to_pylist()
    assert [r["line_number"] for r in rejected] == [5, 9] and all(r["raw_line"] for r in rejected)
    assert sum(r["n"] for r in clinvar_rows(resources)) == 10


def test_a_release_with_too_many_bad_rows_or_a_broken_file_leaves_the_served_one(instance, resources):
    assert refresh(instance, resources, CELLBASE, release="2024-05").success
    served = clinvar_rows(resources)

    too_many = refresh(instance, resources, DATA / "bad" / "non_integer_allele_id.txt.gz")
    assert not too_many.success
    failure = next(e for e in too_many.all_events if e.event_type_value == "STEP_FAILURE")
    assert "rows are malformed" in str(failure.event_specific_data.error)

    truncated = refresh(instance, resources, DATA / "bad" / "truncated.txt.gz")
    assert not truncated.success
    failure = next(e for e in truncated.all_events if e.event_type_value == "STEP_FAILURE")
    assert "truncated.txt.gz" in str(failure.event_specific_data.error)
    assert clinvar_rows(resources) == served


def test_not_clinvar_is_refused_at_the_source(instance, resources, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("this is not ClinVar\n")
    result = refresh(instance, resources, other)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "notes.txt" in str(failure.event_specific_data.error)


def failure_text(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return str(failure.event_specific_data.error)


def test_a_launcher_cannot_read_host_files_or_see_what_a_non_clinvar_file_holds(instance, resources, tmp_path):
    """Issue 21, High 2: /etc/passwd and file:// are refused; a key file the run may read is never echoed."""
    for uri in ("/etc/passwd", "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/"):
        result = dg.materialize(ASSETS, instance=instance, resources=resources, raise_on_error=False,
                                run_config={"ops": {"clinvar_source": {"config": {"uri": uri}}}})
        assert not result.success
        text = failure_text(result)
        assert "not in an allowed folder" in text or "not under an allowed source" in text
        assert "root:x:0" not in text
    key = tmp_path / "pseudonym.key"
    key.write_text("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\n")

    text = failure_text(refresh(instance, resources, key))

    assert "pseudonym.key" in text and "not a ClinVar file" in text and "q83v" not in text


def test_weekly_schedule_refreshes_clinvar_from_ncbi():
    from genolake_assets.definitions import defs

    schedule = next(s for s in defs.schedules if s.name == "weekly_clinvar")
    assert schedule.cron_schedule == "0 6 * * 1" and schedule.job_name == "refresh_clinvar"
    job = defs.resolve_job_def("refresh_clinvar")
    assert {n.name for n in job.nodes} == {"clinvar_source", "clinvar_variants", "clinvar_table"}
    with dg.build_schedule_context() as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.run_config["ops"]["clinvar_source"]["config"]["uri"].startswith("https://ftp.ncbi.nlm.nih.gov/")
