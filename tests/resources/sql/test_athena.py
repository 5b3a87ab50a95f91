"""AthenaQueryEngine through PyAthena against a real moto server, and the aws profile's wiring.

moto runs no SQL: a query "succeeds" with the rows seeded through its API
(``POST /moto-api/static/athena/query-results``, a queue the next StartQueryExecution takes from).
A slow query is simulated with moto's state manager, which can hold executions in QUEUED, so the
timeout goes through the same PyAthena polling and StopQueryExecution as on AWS.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from genolake_assets.resources.sql.athena import AthenaQueryEngine, rows_to_arrow
from genolake_assets.resources.lake.s3_store import aws_client
from tests.moto_api import moto_api, seed_result

EXECUTION_MODEL = "athena::execution"


@pytest.fixture
def engine(moto_endpoint, bucket) -> AthenaQueryEngine:
    return AthenaQueryEngine(database="genolake", output_location=f"s3://{bucket}/athena-results/",
                             region="us-east-1", endpoint_url=moto_endpoint, poll_interval=0.05)


def sent_requests(engine: AthenaQueryEngine, operation: str) -> list[dict]:
    """The parameters of every ``operation`` request the engine's PyAthena client sends from now on."""
    sent: list[dict] = []
    engine._connect().client.meta.events.register(f"provide-client-params.athena.{operation}",
                                                  lambda params, **_: sent.append(params))
    return sent


COHORT_COLUMNS = [("variant_id", "varchar", 2147483647, 0), ("carriers", "bigint", 19, 0),
                  ("frequency", "double", 17, 0), ("called", "integer", 10, 0), ("is_drug_response", "boolean", 0, 0),
                  ("first_seen", "date", 0, 0), ("af", "decimal", 6, 3), ("filters", "array", 0, 0)]


def test_rows_and_types_come_back_as_arrow(engine, moto_endpoint):
    seed_result(moto_endpoint, COHORT_COLUMNS, [
        ["chr10:94781859:G:A", "12", "0.12", "100", "true", "2026-11-01", "0.125", "[PASS]"],
        ["chr22:42130692:G:A", None, "0.5", "98", "false", None, None, "[]"],
    ])

    result = engine.run("SELECT * FROM cohort_frequencies")

    table = result.table
    assert table.schema == pa.schema([
        ("variant_id", pa.string()), ("carriers", pa.int64()), ("frequency", pa.float64()), ("called", pa.int32()),
        ("is_drug_response", pa.bool_()), ("first_seen", pa.date32()), ("af", pa.decimal128(6, 3)),
        ("filters", pa.list_(pa.string())),
    ])
    assert table.to_pylist() == [
        {"variant_id": "chr10:94781859:G:A", "carriers": 12, "frequency": 0.12, "called": 100,
         "is_drug_response": True, "first_seen": datetime.date(2026, 11, 1), "af": Decimal("0.125"),
         "filters": ["PASS"]},
        {"variant_id": "chr22:42130692:G:A", "carriers": None, "frequency": 0.5, "called": 98,
         "is_drug_response": False, "first_seen": None, "af": None, "filters": []},
    ]


def test_query_id_bytes_scanned_and_the_request_are_recorded(engine, moto_endpoint, bucket):
    seed_result(moto_endpoint, [("n", "bigint", 19, 0)], [["3"]])
    started = sent_requests(engine, "StartQueryExecution")

    result = engine.run("SELECT count(*) AS n FROM variants")

    athena = aws_client("athena", endpoint_url=moto_endpoint, region_name="us-east-1")
    execution = athena.get_query_execution(QueryExecutionId=result.query_id)["QueryExecution"]
    assert execution["Query"] == "SELECT count(*) AS n FROM variants"
    assert result.executed_sql == "SELECT count(*) AS n FROM variants"
    assert result.bytes_scanned == execution["Statistics"]["DataScannedInBytes"] == 0
    assert result.reused_result is False
    assert result.seconds > 0 and result.engine.startswith("athena")
    assert result.table.to_pylist() == [{"n": 3}]
    [request] = started
    assert request["QueryExecutionContext"]["Database"] == "genolake"
    assert request["WorkGroup"] == "primary"
    assert request["ResultConfiguration"]["OutputLocation"] == f"s3://{bucket}/athena-results/"
    assert request["ResultReuseConfiguration"] == {"ResultReuseByAgeConfiguration": {"Enabled": True,
                                                                                    "MaxAgeInMinutes": 60}}
    assert result.metadata()["query_id"] == result.query_id


def test_result_reuse_is_not_requested_when_disabled(engine, moto_endpoint):
    engine = engine.model_copy(update={"result_reuse_minutes": 0})
    seed_result(moto_endpoint, [("n", "bigint", 19, 0)], [["1"]])
    started = sent_requests(engine, "StartQueryExecution")

    engine.run("SELECT 1 AS n")

    assert "ResultReuseConfiguration" not in started[0]


def test_no_output_location_leaves_the_result_location_to_the_workgroup(engine, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ATHENA_S3_STAGING_DIR", "s3://somewhere-else/")  # must not leak in
    engine = engine.model_copy(update={"output_location": None})
    seed_result(moto_endpoint, [("n", "bigint", 19, 0)], [["1"]])
    started = sent_requests(engine, "StartQueryExecution")

    engine.run("SELECT 1 AS n")

    assert "OutputLocation" not in started[0].get("ResultConfiguration", {})


@pytest.fixture
def queries_never_finish(moto_endpoint):
    """Hold every Athena execution in QUEUED until the test ends."""
    moto_api(moto_endpoint, "state-manager/set-transition",
             {"model_name": EXECUTION_MODEL, "transition": {"progression": "manual", "times": 1_000_000}})
    try:
        yield
    finally:
        moto_api(moto_endpoint, "state-manager/unset-transition", {"model_name": EXECUTION_MODEL})


def test_a_query_past_the_timeout_is_cancelled_and_named(engine, moto_endpoint, queries_never_finish):
    engine = engine.model_copy(update={"timeout_seconds": 0.3})
    stopped = sent_requests(engine, "StopQueryExecution")

    with pytest.raises(TimeoutError, match=r"Athena query [0-9a-f-]{36} ran longer than 0.3 s") as raised:
        engine.run("SELECT * FROM variants")

    [stop] = stopped
    assert stop["QueryExecutionId"] in str(raised.value)
    athena = aws_client("athena", endpoint_url=moto_endpoint, region_name="us-east-1")
    state = athena.get_query_execution(QueryExecutionId=stop["QueryExecutionId"])["QueryExecution"]["Status"]
    assert state["State"] == "CANCELLED"


def test_a_failed_query_is_reported_with_its_id_reason_and_sql(engine):
    # moto never fails a query: make the server's answer say FAILED, as Athena does for a bad column.
    def failed(parsed, **_):
        parsed["QueryExecution"]["Status"].update(
            State="FAILED", StateChangeReason="COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved")

    engine._connect().client.meta.events.register("after-call.athena.GetQueryExecution", failed)

    with pytest.raises(RuntimeError, match=r"Athena query [0-9a-f-]{36} failed: COLUMN_NOT_FOUND.*\nSELECT nope"):
        engine.run("SELECT nope FROM variants")


def test_rows_to_arrow_keeps_unparsed_nested_values_as_text_and_types_empty_results():
    description = [("tags", "array", None, None, 0, 0, "UNKNOWN"), ("n", "bigint", None, None, 19, 0, "UNKNOWN"),
                   ("doc", "json", None, None, 0, 0, "UNKNOWN")]

    mixed = rows_to_arrow(description, [("[a, {b=1}]", 1, {"k": [1]}), ([1, 2], None, None)])
    empty = rows_to_arrow(description[1:], [])

    assert mixed.column("tags").to_pylist() == ["[a, {b=1}]", "[1, 2]"]
    assert mixed.column("doc").to_pylist() == ['{"k": [1]}', None]
    assert empty.schema == pa.schema([("n", pa.int64()), ("doc", pa.string())]) and empty.num_rows == 0


# -- the aws profile --------------------------------------------------------------------------


def aws_environment(monkeypatch, tmp_path: Path, endpoint: str, bucket: str | None) -> None:
    monkeypatch.setenv("GENOLAKE_PROFILE", "aws")
    monkeypatch.setenv("GENOLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("GENOLAKE_S3_PREFIX", "lake")
    for name in ("GENOLAKE_GLUE_DATABASE", "GENOLAKE_ATHENA_WORKGROUP", "GENOLAKE_ATHENA_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    if bucket:
        monkeypatch.setenv("GENOLAKE_S3_BUCKET", bucket)
    else:
        monkeypatch.delenv("GENOLAKE_S3_BUCKET", raising=False)


def test_the_aws_profile_builds_glue_and_athena(monkeypatch, tmp_path, moto_endpoint, bucket):
    from genolake_assets.resources.catalog.glue_catalog import GlueCatalog
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.resources.lake.s3_store import S3ObjectStore
    from genolake_assets.settings import Settings

    aws_environment(monkeypatch, tmp_path, moto_endpoint, bucket)
    monkeypatch.setenv("GENOLAKE_ATHENA_WORKGROUP", "genomics")
    monkeypatch.setenv("GENOLAKE_BATCH_JOB_QUEUE", "bam-queue")
    monkeypatch.setenv("GENOLAKE_FILE_CATALOG_TABLE", "files")

    resources = build_resources(Settings.from_env())

    assert set(resources) == {"lake", "catalog", "sql", "converter", "cohort_engine", "compression_runner", "file_catalog",
                              "transfer"}
    assert resources["compression_runner"].job_queue == "bam-queue"
    assert resources["file_catalog"].table_name == "files"
    assert isinstance(resources["lake"].store(), S3ObjectStore)
    catalog, sql = resources["catalog"], resources["sql"]
    assert isinstance(catalog, GlueCatalog) and isinstance(sql, AthenaQueryEngine)
    assert (catalog.database, catalog.s3_bucket, catalog.s3_prefix, catalog.endpoint_url) == (
        "genolake", bucket, "lake", moto_endpoint)
    assert (sql.database, sql.workgroup, sql.output_location, sql.endpoint_url) == (
        "genolake", "genomics", f"s3://{bucket}/lake/athena-results/", moto_endpoint)


def test_the_aws_profile_without_a_bucket_says_what_is_missing(monkeypatch, tmp_path, moto_endpoint):
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.settings import Settings

    aws_environment(monkeypatch, tmp_path, moto_endpoint, bucket=None)

    with pytest.raises(ValueError, match="GENOLAKE_S3_BUCKET"):
        build_resources(Settings.from_env())


def test_the_local_profile_pairs_duckdb_catalog_and_engine_on_one_file(lake_home):
    from genolake_assets.resources.catalog.duckdb_catalog import DuckDbCatalog
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.resources.sql.duckdb_engine import DuckDbQueryEngine
    from genolake_assets.settings import Settings

    resources = build_resources(Settings.from_env())

    assert isinstance(resources["catalog"], DuckDbCatalog) and isinstance(resources["sql"], DuckDbQueryEngine)
    assert resources["sql"].database == resources["catalog"].database == str(lake_home.resolve() / "catalog.duckdb")


# --- The wire protocol: why the lock holds botocore below 1.44, and how the suite says when to lift it ---

def athena_protocol_of_installed_botocore() -> str:
    import botocore.session
    return botocore.session.get_session().get_service_model("athena").metadata["protocol"]


def test_the_locked_botocore_speaks_a_protocol_moto_routes_for_athena():
    """botocore 1.44 moved Athena to rest-json, which moto 5.2 answers with 404; pyproject's
    [tool.uv] constraint keeps the lock on the JSON-RPC model until moto routes the new one."""
    assert athena_protocol_of_installed_botocore() == "json", (
        "the locked botocore speaks rest-json to Athena: moto must route it before this lock can land "
        "(see test_moto_routes_athena_rest_json)")


@pytest.mark.xfail(strict=True, reason="moto 5.2 routes Athena only as JSON-RPC; when this passes, lift "
                                        "pyproject's constraint botocore<1.44 and run `make lock`")
def test_moto_routes_athena_rest_json(moto_endpoint, bucket):
    """The request botocore >= 1.44 sends for StartQueryExecution (rest-json: POST /query-executions)."""
    import json
    import urllib.request

    body = json.dumps({"QueryString": "SELECT 1",
                       "ResultConfiguration": {"OutputLocation": f"s3://{bucket}/athena-results/"}}).encode()
    request = urllib.request.Request(f"{moto_endpoint}/query-executions", data=body, method="POST", headers={
        "Content-Type": "application/json",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/athena/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(request, timeout=10) as response:  # raises HTTPError on moto's 404
        assert "QueryExecutionId" in json.loads(response.read())


def test_the_engine_sends_the_same_parameters_whatever_the_protocol(engine, moto_endpoint):
    """Production goes through PyAthena's boto3 client, which takes operation parameters, never a hand-built
    HTTP body: what the engine asks for is protocol-free, so botocore's move to rest-json changes nothing
    for real Athena."""
    seed_result(moto_endpoint, [("n", "integer", 10, 0)], [["1"]])
    client = engine._connect().client
    assert client.meta.service_model.metadata["protocol"] == athena_protocol_of_installed_botocore()
    sent = sent_requests(engine, "StartQueryExecution")
    engine.run("SELECT 1 AS n")
    assert sent and sent[0]["QueryString"].strip().endswith("SELECT 1 AS n")
