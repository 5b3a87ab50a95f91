"""The aws profile end to end on a real moto server: S3 lake, Glue tables and partitions, the ClinVar
snapshot behind partition projection, and the report's Trino SQL sent to Athena through PyAthena.

moto executes no SQL: the Athena result is seeded with what the independent computation says the
query returns, and the test checks the statement Athena received is the project's query, verbatim.
"""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq

from genolake_assets.assets.annotations import clinvar_source, clinvar_table, clinvar_variants
from genolake_assets.assets.variants import cohort_variants
from genolake_assets.assets.reports import drug_response_report
from genolake_assets.queries import render
from genolake_assets.resources.lake.s3_store import aws_client
from tests.moto_api import seed_result
from tests.pipeline.helpers import ingest, refresh_tables, tick
from tests.pipeline.report_oracle import GVCFS, derived_clinvar, expected_report

REPORT_COLUMNS = [("chromosome", "varchar"), ("pos", "integer"), ("ref", "varchar"), ("alt", "varchar"),
                  ("genotype", "varchar"), ("samples_with_genotype", "bigint"), ("cohort_samples", "bigint"),
                  ("called_samples", "bigint"), ("seed_frequency", "double"), ("called_frequency", "double"),
                  ("variation_id", "bigint"), ("clinical_significance", "varchar")]


def test_ingest_catalog_clinvar_and_report_on_the_aws_profile(aws_resources, instance, tmp_path, moto_endpoint,
                                                               bucket):
    resources, store = aws_resources, aws_resources["lake"].store()
    gvcfs = GVCFS[:2]
    for path in gvcfs:
        store.upload(path, f"landing/{path.name}")
    for request in tick(instance, resources).run_requests:
        assert ingest(instance, resources, request.partition_key).success
    assert refresh_tables(instance, resources).success
    assert dg.materialize([cohort_variants], instance=instance, resources=resources).success

    glue = aws_client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")
    database = resources["catalog"].database
    variants = glue.get_table(DatabaseName=database, Name="variants")["Table"]
    assert [k["Name"] for k in variants["PartitionKeys"]] == ["sample_id"]
    assert variants["StorageDescriptor"]["Location"] == f"s3://{bucket}/lake/variants/"
    found = glue.get_partitions(DatabaseName=database, TableName="variants", Expression="sample_id = 'HG00187'")
    assert [p["Values"] for p in found["Partitions"]] == [["HG00187"]]
    assert glue.get_table(DatabaseName=database, Name="samples")["Table"]["StorageDescriptor"]["Location"] == (
        f"s3://{bucket}/lake/samples/")

    clinvar = derived_clinvar(tmp_path / "variant_summary_derived.txt.gz")
    loaded = dg.materialize([clinvar_source, clinvar_variants, clinvar_table], instance=instance, resources=resources,
                            run_config={"ops": {"clinvar_source": {"config": {"uri": str(clinvar)}}}})
    assert loaded.success
    table = glue.get_table(DatabaseName=database, Name="clinvar")["Table"]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert set(parameters["projection.assembly.values"].split(",")) == {"GRCh37", "GRCh38"}
    assert parameters["storage.location.template"].startswith(f"s3://{bucket}/lake/clinvar/snapshot=")
    assert "position_vcf" in {c["Name"] for c in table["StorageDescriptor"]["Columns"]}

    config = {"sample_pattern": "%", "significance_pattern": "%drug response%", "assembly": "GRCh38", "limit": 40}
    size, expected = expected_report(gvcfs, clinvar, "%", "%drug response%", "GRCh38", 40)
    seed_result(moto_endpoint, [(name, kind, 0, 0) for name, kind in REPORT_COLUMNS],
                [[str(row[name]) for name, _ in REPORT_COLUMNS] for row in expected])
    report = dg.materialize([drug_response_report], instance=instance, resources=resources,
                            run_config={"ops": {"drug_response_report": {"config": config}}})
    assert report.success

    athena = aws_client("athena", endpoint_url=moto_endpoint, region_name="us-east-1")
    query_ids = athena.list_query_executions()["QueryExecutionIds"]
    sent = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"] for q in query_ids]
    statement = render("drug_response_report", sample_pattern="%", significance_pattern="%drug response%",
                       assembly="GRCh38", result_limit=40)
    report_query = next(q for q in sent if q["Query"] == statement)
    assert report_query["QueryExecutionContext"]["Database"] == database
    assert report_query["ResultConfiguration"]["OutputLocation"].startswith(f"s3://{bucket}/lake/athena-results/")

    metadata = {k: v.value for k, v in report.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert metadata["engine"].startswith("athena") and metadata["rows"] == len(expected) > 0
    assert metadata["query_id"] == report_query["QueryExecutionId"]
    assert metadata["csv_uri"] == f"s3://{bucket}/lake/reports/drug_response/latest/drug_response_report.csv"
    local = tmp_path / "report.parquet"
    store.download("reports/drug_response/latest/drug_response_report.parquet", local)
    rows = pq.read_table(local).to_pylist()
    assert [(r["pos"], r["genotype"], r["called_samples"]) for r in rows] == [
        (r["pos"], r["genotype"], r["called_samples"]) for r in expected]
