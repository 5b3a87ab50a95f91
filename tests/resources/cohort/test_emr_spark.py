"""The cohort update on a transient EMR cluster (EmrSparkCohortEngine), from the ``cohort_variants`` asset to the
published manifest, on a real moto server: S3 lake, Glue, ``RunJobFlow``.

moto's clusters never run a step (tests/resources/conversion/test_emr_hail.py's ``ScriptedEmr`` plays their
states). When the scripted cluster reaches RUNNING, the test is the cluster: it takes the step's spark-submit
arguments and the Pipes environment as moto stored them, downloads the job script and the package zip the
engine uploaded, and runs **the real spark/cohort_update.py** on local Spark (local[2]) with that zip first on
its path, reading and writing the lake on moto's S3. The result must equal an in-process build of the same
per-sample files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from genolake_assets.assets.variants import cohort_variants
from genolake_assets.lib.cohort.build import build_cohort, load_state
from genolake_assets.lib.cohort.sample_tokens import samples_table_tokens
from genolake_assets.lib.lake.layout import COHORT_PREFIX, REFERENCE_BLOCKS_TABLE, STAGING_COHORT_PREFIX, VARIANTS_TABLE
from genolake_assets.resources.cohort import emr_spark
from genolake_assets.resources.cohort.emr_spark import EmrSparkCohortEngine
from genolake_assets.resources.lake.local_store import LocalObjectStore
from genolake_assets.resources.lake.s3_store import aws_client
from tests.conftest import require_spark
from tests.lib.cohort.cohort_equality import assert_same_cohort
from tests.pipeline.helpers import ingest, refresh_tables, tick
from tests.pipeline.report_oracle import GVCFS
from tests.resources.conversion.test_emr_hail import COMPLETED, RUNNING, ScriptedEmr, quick_pipes  # noqa: F401

require_spark("the cohort job runs on local Spark here")

REPO = Path(__file__).resolve().parents[3]


class ScriptedCohortCluster(ScriptedEmr):
    """ScriptedEmr whose step is the cohort job, run for real on local Spark against moto's S3."""

    job_flag = "--job"

    def run_job(self, cluster: dict) -> None:
        self.local_spark_args = ["--master", "local[2]", "--local-dir", str(self.tmp_path / "spark-local")]
        super().run_job(cluster)


@pytest.fixture
def job_dir(tmp_path) -> Path:
    folder = tmp_path / "spark"
    folder.mkdir()
    for name in (emr_spark.JOB_SCRIPT, emr_spark.BOOTSTRAP_SCRIPT):
        shutil.copy(REPO / "spark" / name, folder / name)
    return folder


def test_the_asset_runs_the_cohort_update_on_a_transient_cluster(aws_resources, instance, moto_endpoint, raw_s3,
                                                                 bucket, job_dir, tmp_path, monkeypatch):
    resources, store = aws_resources, aws_resources["lake"].store()
    for path in GVCFS[:3]:
        store.upload(path, f"landing/{path.name}")
    for request in tick(instance, resources).run_requests:
        assert ingest(instance, resources, request.partition_key).success
    assert refresh_tables(instance, resources).success

    emr = ScriptedCohortCluster(moto_endpoint, raw_s3, tmp_path, [*RUNNING, COMPLETED])
    factory = emr_spark.aws_client
    monkeypatch.setattr(emr_spark, "aws_client",
                        lambda service, **kw: emr.client if service == "emr" else factory(service, **kw))
    engine = EmrSparkCohortEngine(region="us-east-1", endpoint_url=moto_endpoint, job_dir=str(job_dir),
                                  poll_interval_seconds=0.05, subnet_id="subnet-0abc", fold_partitions=3,
                                  service_role="arn:aws:iam::123456789012:role/genolake-dev-EmrServiceRole-X")
    run = dg.materialize([cohort_variants], instance=instance, resources={**resources, "cohort_engine": engine})
    assert run.success
    metadata = run.asset_materializations_for_node("cohort_variants")[0].metadata
    assert metadata["engine"].value == "emr-spark" and metadata["samples_added"].value == 3
    logged = [e.message for e in instance.all_logs(run.run_id) if e.message]
    assert any("cohort job: {'kind': 'cohort'" in message for message in logged)  # the job's Pipes message

    # the cluster: one cohort step (spark-submit of the uploaded script with the package zip), transient
    cluster = emr.moto.describe_cluster(ClusterId=emr.cluster_id)["Cluster"]
    assert {t["Key"]: t["Value"] for t in cluster["Tags"]}["genolake:component"] == "cohort-update"
    assert cluster["ServiceRole"] == "genolake-dev-EmrServiceRole-X"
    args = emr.step_args()
    assert args[:3] == ["timeout", "--kill-after=300", str(engine.step_timeout_seconds)]
    assert args[3] == "spark-submit" and args[args.index("--py-files") + 1].endswith("/genolake_assets.zip")
    assert args[args.index("--job") - 1].endswith("/cohort_update.py") and args[-2:] == ["--fold-partitions", "3"]
    [bootstrap] = emr.moto.list_bootstrap_actions(ClusterId=emr.cluster_id)["BootstrapActions"]
    assert bootstrap["ScriptPath"].endswith("/emr_bootstrap.sh")
    assert list(store.list_objects(STAGING_COHORT_PREFIX)) == []  # the job and its result are removed

    # the same table as an in-process build of the same per-sample files
    local = LocalObjectStore(tmp_path / "local-lake")
    for table in (VARIANTS_TABLE, REFERENCE_BLOCKS_TABLE):
        for obj in store.list_objects(f"{table}/"):
            store.download(obj.key, local.root / obj.key)
    tokens = samples_table_tokens(store, resources["lake"].local_copy)
    build_cohort(local, local.local_path, tmp_path / "work", tokens)
    state = load_state(store)
    rows = assert_same_cohort(local, load_state(local), store, state)
    assert rows == metadata["rows"].value > 0
    assert sorted(o.key for o in store.list_objects(COHORT_PREFIX)) == state.all_live_keys()

    # nothing changed since: the next update publishes a version without starting a cluster
    again = dg.materialize([cohort_variants], instance=instance, resources={**resources, "cohort_engine": engine})
    assert again.success and load_state(store).version == state.version + 1
    assert len(emr.called("RunJobFlow")) == 1

    # registered like an in-process build: one Glue partition per (contig, bin)
    glue = aws_client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")
    partitions = glue.get_partitions(DatabaseName=resources["catalog"].database, TableName="cohort_variants")
    assert sorted(tuple(p["Values"]) for p in partitions["Partitions"]) == sorted(
        (p.contig, str(p.bin)) for p in state.partitions.values())


def test_the_aws_profile_picks_the_emr_engine(monkeypatch, tmp_path, moto_endpoint, bucket):
    for name, value in {"GENOLAKE_PROFILE": "aws", "GENOLAKE_HOME": str(tmp_path), "GENOLAKE_S3_BUCKET": bucket,
                        "GENOLAKE_COHORT_ENGINE": "spark", "GENOLAKE_EMR_SUBNET_ID": "subnet-0abc",
                        "GENOLAKE_EMR_CORE_INSTANCES": "6"}.items():
        monkeypatch.setenv(name, value)
    from genolake_assets.resources.profile import build_resources

    engine = build_resources()["cohort_engine"]
    assert isinstance(engine, EmrSparkCohortEngine)
    assert (engine.subnet_id, engine.core_instance_count, engine.packages_install) == ("subnet-0abc", 6, "bootstrap")
    monkeypatch.setenv("GENOLAKE_PROFILE", "local")
    assert build_resources()["cohort_engine"].engine == "spark"
    monkeypatch.setenv("GENOLAKE_COHORT_ENGINE", "dask")
    with pytest.raises(ValueError, match="GENOLAKE_COHORT_ENGINE must be one of in-process, spark"):
        build_resources()


def test_a_cluster_that_fails_publishes_nothing(aws_resources, instance, moto_endpoint, raw_s3, job_dir, tmp_path,
                                                monkeypatch):
    resources, store = aws_resources, aws_resources["lake"].store()
    store.upload(GVCFS[0], f"landing/{GVCFS[0].name}")
    for request in tick(instance, resources).run_requests:
        assert ingest(instance, resources, request.partition_key).success
    assert refresh_tables(instance, resources).success
    failed = ("TERMINATED_WITH_ERRORS", {"Code": "STEP_FAILURE", "Message": "Shut down as step failed"})
    emr = ScriptedCohortCluster(moto_endpoint, raw_s3, tmp_path, [*RUNNING, failed],
                                step_status={"State": "FAILED", "StateChangeReason": {},
                                             "FailureDetails": {"Reason": "Unknown error.", "Message": "exit 1"}},
                                on_running=lambda cluster: None)
    factory = emr_spark.aws_client
    monkeypatch.setattr(emr_spark, "aws_client",
                        lambda service, **kw: emr.client if service == "emr" else factory(service, **kw))
    engine = EmrSparkCohortEngine(region="us-east-1", endpoint_url=moto_endpoint, job_dir=str(job_dir),
                                  poll_interval_seconds=0.05)
    run = dg.materialize([cohort_variants], instance=instance, resources={**resources, "cohort_engine": engine},
                         raise_on_error=False)
    assert not run.success
    error = run.get_step_failure_events()[0].event_specific_data.error
    while error.cause is not None and "EmrClusterFailed" not in error.cls_name:
        error = error.cause
    assert error.cls_name == "EmrClusterFailed" and "STEP_FAILURE" in error.message and "exit 1" in error.message
    assert not store.exists("registry/cohort/state.json")  # nothing published
    assert list(store.list_objects(STAGING_COHORT_PREFIX)) == []
