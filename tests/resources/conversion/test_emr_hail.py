"""The Hail engine on transient EMR clusters (EmrHailConverter), through dagster-aws's PipesEMRClient.

Everything runs against a real moto server: the lake (S3), the uploaded code, the manifest, the Pipes
messages and ``RunJobFlow``, whose cluster is checked as moto stored it. moto's clusters never run a step
nor terminate, so the EMR client the converter gets (through its client factory, as Dagster rebuilds
resources per run) answers ``DescribeCluster`` and ``ListSteps`` from a script of states laid over moto's
real description. When the script reaches RUNNING the test plays the cluster: it takes the step's
arguments and the Pipes environment as moto stored them, downloads the job script and the package zip from
the lake, and runs that script (a stand-in for spark/vcf_to_parquet.py speaking the same contract) with the
zip first on its path.
"""


import base64
import copy
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import dagster as dg
import pytest
from botocore.awsrequest import AWSResponse

from genolake_assets.lib.vcf.batch import BatchResult, ConversionJob, ConversionManifest, JobOutcome
from genolake_assets.lib.errors import InputProblem
from genolake_assets.resources.conversion import emr_hail as emr_hail
from genolake_assets.resources.conversion.emr_hail import EmrClusterFailed, EmrHailConverter, package_zip
from genolake_assets.resources.lake.s3_store import aws_client

REPO = Path(__file__).resolve().parents[3]

# A stand-in for spark/vcf_to_parquet.py: the same command line, Pipes calls and result, no Spark.
STAND_IN_JOB = r'''
import argparse, json, sys
import boto3
import genolake_assets
from dagster_pipes import PipesEnvVarParamsLoader, PipesS3MessageWriter, open_dagster_pipes
from genolake_assets.lib.vcf.batch import BatchResult, ConversionManifest, JobOutcome
from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.vcf.convert import ConversionReport, SampleReport

assert ".zip" in genolake_assets.__file__, f"genolake_assets came from {genolake_assets.__file__}, not --py-files"
parser = argparse.ArgumentParser()
parser.add_argument("--manifest", required=True)
args = parser.parse_args()
s3 = boto3.client("s3")

def split(uri):
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key

bucket, key = split(args.manifest)
manifest = ConversionManifest.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
assert PipesEnvVarParamsLoader().is_dagster_pipes_process(), "no Pipes environment on the driver"
outcomes = []
with open_dagster_pipes(message_writer=PipesS3MessageWriter(client=s3)) as pipes:
    pipes.log.info(f"converting {len(manifest.jobs)} VCFs")
    for job in manifest.jobs:
        if "bad" in job.vcf_uri:
            problem = InputProblem(file=job.vcf_uri, problem="not a VCF: no ##fileformat line", line=1)
            outcomes.append(JobOutcome(job_id=job.job_id, vcf_uri=job.vcf_uri, problem=problem))
            pipes.report_custom_message({"kind": "failed", "job_id": job.job_id, "vcf_uri": job.vcf_uri,
                                         "problem": problem.problem})
            continue
        samples = {}
        for name, sample_id in job.samples.items():
            samples[name] = SampleReport(sample_name=name, sample_id=sample_id, variant_rows=10,
                                         reference_block_rows=5, variant_records=10, reference_block_records=5,
                                         spanning_deletion_records=0, resorted=False,
                                         files={"variants": "v.parquet", "reference_blocks": "r.parquet"},
                                         bytes={"variants": 1500, "reference_blocks": 548})
            pipes.report_custom_message({"kind": "sample", "job_id": job.job_id, "sample_id": sample_id,
                                         "rows": 15, "bytes": 2048, "seconds": 1.5})
        report = ConversionReport(source=job.vcf_uri, records_read=10, reference_genome="GRCh38", caller=None,
                                  file_format="VCFv4.2", samples=samples, seconds=1.5, engine="hail",
                                  engine_version="0.2.139")
        outcomes.append(JobOutcome(job_id=job.job_id, vcf_uri=job.vcf_uri, report=report, seconds=1.5))
result = BatchResult(engine="hail", engine_version="0.2.139", outcomes=outcomes, seconds=3.0,
                     spark={"master": "yarn", "hail": "0.2.139"})
bucket, key = split(manifest.result_uri)
s3.put_object(Bucket=bucket, Key=key, Body=result.to_json().encode())
'''

RUNNING = [("STARTING", None), ("BOOTSTRAPPING", None), ("RUNNING", None)]
COMPLETED = ("TERMINATED", {"Code": "ALL_STEPS_COMPLETED", "Message": "Steps completed"})


@pytest.fixture(autouse=True)
def quick_pipes(monkeypatch):
    """Pipes waits up to 60 s for step logs EMR would upload and polls every second; moto uploads none."""
    import dagster._core.pipes.utils as pipes_utils

    monkeypatch.setattr(pipes_utils, "WAIT_FOR_LOGS_TIMEOUT", 0)
    monkeypatch.setattr(pipes_utils, "WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 0)
    monkeypatch.setattr(pipes_utils, "DEFAULT_SLEEP_INTERVAL", 0.05)


@pytest.fixture
def lake(make_s3_store):
    return make_s3_store("lake")


@pytest.fixture
def job_dir(tmp_path) -> Path:
    folder = tmp_path / "spark"
    folder.mkdir()
    (folder / "vcf_to_parquet.py").write_text(STAND_IN_JOB)
    shutil.copy(REPO / "spark" / "emr_bootstrap.sh", folder / "emr_bootstrap.sh")
    return folder


class ScriptedEmr:
    """An EMR client on moto whose cluster states (and failed step) come from a script."""

    def __init__(self, endpoint: str, raw_s3, tmp_path: Path, states, step_status=None, on_running=None):
        self.endpoint, self.raw_s3, self.tmp_path = endpoint, raw_s3, tmp_path
        self.states, self.step_status, self.polls = list(states), step_status, 0
        self.on_running = on_running or self.run_job
        self.moto = aws_client("emr", endpoint_url=endpoint, region_name="us-east-1")  # moto's own view
        self.client = aws_client("emr", endpoint_url=endpoint, region_name="us-east-1")
        self.calls: list[tuple[str, dict]] = []
        self.job_runs: list[subprocess.CompletedProcess] = []
        self.cluster_id: str | None = None
        events = self.client.meta.events
        events.register("before-parameter-build.emr", self._record)
        events.register("after-call.emr.RunJobFlow", self._launched)
        events.register("before-call.emr.DescribeCluster", self._describe_cluster)
        events.register("before-call.emr.ListSteps", self._list_steps)

    def _record(self, params, model, **_):
        self.calls.append((model.name, copy.deepcopy(params)))

    def called(self, operation: str) -> list[dict]:
        return [params for name, params in self.calls if name == operation]

    def _launched(self, parsed, **_):
        self.cluster_id = parsed["JobFlowId"]

    def _describe_cluster(self, **_):
        cluster_id = self.calls[-1][1]["ClusterId"]
        cluster = self.moto.describe_cluster(ClusterId=cluster_id)["Cluster"]
        state, reason = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        if state == "RUNNING" and self.on_running is not None:
            on_running, self.on_running = self.on_running, None
            on_running(cluster)
        cluster["Status"] = {"State": state, "StateChangeReason": reason or {}, "Timeline": {}}
        return AWSResponse(None, 200, {}, None), {"Cluster": cluster}

    def _list_steps(self, **_):
        params = self.calls[-1][1]
        steps = self.moto.list_steps(ClusterId=params["ClusterId"])["Steps"]
        for step in steps:
            step["Status"] = self.step_status or {"State": "COMPLETED", "StateChangeReason": {}}
        wanted = params.get("StepStates")
        steps = [step for step in steps if not wanted or step["Status"]["State"] in wanted]
        return AWSResponse(None, 200, {}, None), {"Steps": steps}

    def write_result(self, cluster: dict) -> None:
        """A quicker stand-in for the step when the job itself is not under test: write a one-VCF result."""
        args = self.step_args()
        bucket, _, key = args[args.index("--manifest") + 1].removeprefix("s3://").partition("/")
        manifest = ConversionManifest.from_json(self.raw_s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        result = BatchResult(engine="hail", engine_version="0.2.139", outcomes=[
            JobOutcome(job_id=job.job_id, vcf_uri=job.vcf_uri, problem=InputProblem(file=job.vcf_uri, problem="x"))
            for job in manifest.jobs])
        bucket, _, key = manifest.result_uri.removeprefix("s3://").partition("/")
        self.raw_s3.put_object(Bucket=bucket, Key=key, Body=result.to_json().encode())

    def step_args(self) -> list[str]:
        return self.moto.list_steps(ClusterId=self.cluster_id)["Steps"][0]["Config"]["Args"]

    job_flag = "--manifest"
    """The job's input argument on the step's command line."""
    local_spark_args: list[str] = []
    """Arguments the stand-in needs beyond the step's (a real Spark job: its local master)."""

    def run_job(self, cluster: dict) -> None:
        """Be the cluster's step: the stored spark-submit arguments and the Pipes environment from spark-env."""
        args = self.step_args()
        manifest_uri = args[args.index(self.job_flag) + 1]
        script_uri, zip_uri = args[args.index(self.job_flag) - 1], args[args.index("--py-files") + 1]
        local = {}
        for uri in (script_uri, zip_uri):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            local[uri] = self.tmp_path / Path(key).name
            self.raw_s3.download_file(bucket, key, str(local[uri]))
        spark_env = next(c for c in cluster["Configurations"] if c["Classification"] == "spark-env")
        pipes_env = next(c for c in spark_env["Configurations"] if c["Classification"] == "export")["Properties"]
        env = {**os.environ, **pipes_env, "PYTHONPATH": str(local[zip_uri]), "AWS_ENDPOINT_URL": self.endpoint,
               "PYSPARK_PYTHON": sys.executable}
        run = subprocess.run([sys.executable, str(local[script_uri]), self.job_flag, manifest_uri,
                              *self.local_spark_args], env=env, capture_output=True, text=True, timeout=600,
                             check=False)
        self.job_runs.append(run)
        assert run.returncode == 0, run.stderr


@pytest.fixture
def scripted_emr(monkeypatch, moto_endpoint, raw_s3, tmp_path):
    """scripted_emr(states, ...) -> the ScriptedEmr that the converter's client factory hands out for "emr"."""

    def make(states, **options) -> ScriptedEmr:
        emr = ScriptedEmr(moto_endpoint, raw_s3, tmp_path, states, **options)
        factory = emr_hail.aws_client
        monkeypatch.setattr(emr_hail, "aws_client",
                            lambda service, **kw: emr.client if service == "emr" else factory(service, **kw))
        return emr

    return make


def _converter(moto_endpoint, job_dir, **overrides) -> EmrHailConverter:
    config = {"region": "us-east-1", "endpoint_url": moto_endpoint, "job_dir": str(job_dir),
              "poll_interval_seconds": 0.05, "subnet_id": "subnet-0abc", "security_configuration": "genolake-dev-emr",
              "service_role": "arn:aws:iam::123456789012:role/genolake-dev-EmrServiceRole-X",
              "job_flow_role": "arn:aws:iam::123456789012:instance-profile/genolake-dev-EmrInstanceProfile-Y"}
    return EmrHailConverter(**{**config, **overrides})


def _manifest(lake, *vcfs: str) -> ConversionManifest:
    jobs = [ConversionJob(job_id=f"job{i}", vcf_uri=lake.uri(f"raw/vcf/{name}"),
                          samples={f"NA1287{i}": f"S{i}", f"NA1288{i}": f"T{i}"},
                          staging_uri=lake.uri(f"variants/_staging/run1/job{i}"))
            for i, name in enumerate(vcfs)]
    return ConversionManifest(jobs=jobs, result_uri=lake.uri("variants/_batches/run1/result.json"))


def _convert(converter, manifest, lake, partition_key="S0", instance=None):
    """convert_batch inside a real Dagster run of a one-asset job, as the pipeline calls it."""
    lines: list[str] = []

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["S0", "S1"]))
    def converted(context: dg.AssetExecutionContext, converter: EmrHailConverter) -> dg.MaterializeResult:
        result = converter.convert_batch(context, manifest, lake, lines.append)
        return dg.MaterializeResult(metadata={"result": result.to_json()})

    run = dg.materialize([converted], resources={"converter": converter}, partition_key=partition_key,
                         instance=instance, raise_on_error=False)
    return run, lines


def _result(run) -> BatchResult:
    assert run.success, run.get_step_failure_events()[0].event_specific_data.error.to_string()
    materialization = run.asset_materializations_for_node("converted")[0]
    return BatchResult.from_json(materialization.metadata["result"].value)


def _failure(run):
    """The error that failed the step (what convert_batch raised, not Dagster's wrapper around it)."""
    assert not run.success
    error = run.get_step_failure_events()[0].event_specific_data.error
    while error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    return error


# -- a batch that converts ---------------------------------------------------------------------------------


def test_a_batch_runs_on_a_transient_cluster_and_returns_the_jobs_result(scripted_emr, lake, job_dir, moto_endpoint,
                                                                          instance):
    emr = scripted_emr([*RUNNING, ("RUNNING", None), ("TERMINATING", None), COMPLETED])
    manifest = _manifest(lake, "a.vcf.gz", "b.vcf.gz")
    run, lines = _convert(_converter(moto_endpoint, job_dir), manifest, lake, instance=instance)
    result = _result(run)

    assert [o.job_id for o in result.outcomes] == ["job0", "job1"] and all(o.ok for o in result.outcomes)
    assert result.outcomes[0].report.samples["NA12870"].sample_id == "S0"
    assert result.spark["emr_cluster_id"] == emr.cluster_id and result.spark["hail"] == "0.2.139"
    # each sample's Pipes message reached the log; the job's own log line reached Dagster's
    assert sum("sample S0 converted: 15 rows, 2048 bytes in 1.5 s" in line for line in lines) == 1
    assert len([line for line in lines if " converted: " in line]) == 4
    assert any("converting 2 VCFs" in entry.user_message for entry in instance.all_logs(run.run_id))
    # the manifest the job read is the one given, next to the result
    written = ConversionManifest.from_json(lake.read_bytes("variants/_batches/run1/manifest.json").decode())
    assert written == manifest


def test_the_cluster_is_transient_and_built_as_configured(scripted_emr, lake, job_dir, moto_endpoint):
    emr = scripted_emr([*RUNNING, COMPLETED])
    run, _ = _convert(_converter(moto_endpoint, job_dir, core_instance_count=3, idle_timeout_seconds=600,
                                 step_timeout_seconds=7200, spark_conf={"spark.executor.memory": "40g"}),
                      _manifest(lake, "a.vcf.gz"), lake, partition_key="S1")
    _result(run)
    cluster = emr.moto.describe_cluster(ClusterId=emr.cluster_id)["Cluster"]  # as moto stored it
    assert cluster["ReleaseLabel"] == "emr-7.5.0"
    assert cluster["AutoTerminate"] is True and cluster["TerminationProtected"] is False  # no KeepJobFlowAlive
    assert cluster["StepConcurrencyLevel"] == 1 and cluster["VisibleToAllUsers"] is True
    assert cluster["LogUri"] == lake.uri("emr-logs") + "/"
    assert cluster["Applications"][0]["Name"] == "Spark"
    assert cluster["ServiceRole"] == "genolake-dev-EmrServiceRole-X"
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == "genolake-dev-EmrInstanceProfile-Y"
    assert cluster["Ec2InstanceAttributes"]["Ec2SubnetId"] == "subnet-0abc"
    assert cluster["SecurityConfiguration"] == "genolake-dev-emr" and "CustomAmiId" not in cluster
    assert cluster["Name"] == f"genolake-hail {run.run_id} S1"
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert tags["genolake:run-id"] == run.run_id and tags["genolake:samples"] == "2"
    assert tags["genolake:component"] == "hail-convert" and tags["for-use-with-amazon-emr-managed-policies"] == "true"
    assert tags["dagster/run-id"] == run.run_id  # Pipes' own tags ride along
    groups = emr.moto.list_instance_groups(ClusterId=emr.cluster_id)["InstanceGroups"]
    groups = {group["InstanceGroupType"]: group for group in groups}
    assert groups["MASTER"]["InstanceType"] == "m5.xlarge" and groups["CORE"]["RequestedInstanceCount"] == 3
    assert groups["CORE"]["InstanceType"] == "r5.2xlarge"
    # the bootstrap action is the uploaded spark/emr_bootstrap.sh
    [bootstrap] = emr.moto.list_bootstrap_actions(ClusterId=emr.cluster_id)["BootstrapActions"]
    shipped = (REPO / "spark" / "emr_bootstrap.sh").read_bytes()
    assert bootstrap["ScriptPath"] == lake.uri(f"code/{hashlib.sha256(shipped).hexdigest()}/emr_bootstrap.sh")
    # one step, terminating the cluster on failure; EMR has no step timeout, hence `timeout`
    [step] = emr.moto.list_steps(ClusterId=emr.cluster_id)["Steps"]
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER" and step["Config"]["Jar"] == "command-runner.jar"
    args = step["Config"]["Args"]
    assert args[:4] == ["timeout", "--kill-after=300", "7200", "spark-submit"]
    assert args[4:8] == ["--deploy-mode", "client", "--jars", emr_hail.HAIL_JAR]
    confs = dict(a.split("=", 1) for a in args[args.index("--jars") + 2:args.index("--py-files")] if a != "--conf")
    assert confs["spark.pyspark.python"] == confs["spark.pyspark.driver.python"] == "/usr/bin/python3.11"
    assert confs["spark.kryo.registrator"] == "is.hail.kryo.HailKryoRegistrator"
    assert confs["spark.driver.memory"] == "8g" and confs["spark.executor.memory"] == "40g"
    assert args[-2:] == ["--manifest", lake.uri("variants/_batches/run1/manifest.json")]
    assert args[-3].endswith("/vcf_to_parquet.py") and args[-5] == "--py-files"
    # AutoTerminationPolicy is not stored by moto: the request shows it
    [request] = emr.called("RunJobFlow")
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 600}


def test_pipes_reaches_the_driver_through_spark_env(scripted_emr, lake, job_dir, moto_endpoint):
    """The converter passes no Configurations of its own: dagster-aws's merge would drop the Pipes variables
    from a spark-env given by the caller (the classification's inner list is not merged)."""
    emr = scripted_emr([*RUNNING, COMPLETED])
    _result(_convert(_converter(moto_endpoint, job_dir), _manifest(lake, "a.vcf.gz"), lake)[0])
    cluster = emr.moto.describe_cluster(ClusterId=emr.cluster_id)["Cluster"]
    spark_env = next(c for c in cluster["Configurations"] if c["Classification"] == "spark-env")
    exported = spark_env["Configurations"][0]["Properties"]
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(exported)
    messages = json.loads(zlib.decompress(base64.b64decode(exported["DAGSTER_PIPES_MESSAGES"])))
    assert messages["bucket"] == lake.bucket and messages["key_prefix"].startswith("lake/emr-logs/pipes/")
    assert lake.list_objects(f"emr-logs/pipes/{messages['key_prefix'].rsplit('/', 1)[1]}")  # chunks were written there


def test_a_bad_vcf_is_an_outcome_not_a_failure(scripted_emr, lake, job_dir, moto_endpoint):
    scripted_emr([*RUNNING, COMPLETED])
    run, lines = _convert(_converter(moto_endpoint, job_dir), _manifest(lake, "good.vcf.gz", "bad.vcf.gz"), lake)
    result = _result(run)
    good, bad = result.outcomes
    assert good.ok and not bad.ok
    assert bad.problem.problem == "not a VCF: no ##fileformat line" and bad.report is None
    assert any(line == f"job1: {lake.uri('raw/vcf/bad.vcf.gz')} failed: not a VCF: no ##fileformat line"
               for line in lines)


def test_code_is_content_addressed_and_uploaded_once(scripted_emr, lake, job_dir, moto_endpoint):
    scripted_emr([*RUNNING, COMPLETED])
    converter = _converter(moto_endpoint, job_dir)
    _result(_convert(converter, _manifest(lake, "a.vcf.gz"), lake)[0])
    code = sorted(o.key for o in lake.list_objects("code"))
    assert sorted(k.rsplit("/", 1)[1] for k in code) == ["emr_bootstrap.sh", "genolake_assets.zip", "vcf_to_parquet.py"]
    for key in code:
        assert key.split("/")[1] == hashlib.sha256(lake.read_bytes(key)).hexdigest()

    second = scripted_emr([*RUNNING, COMPLETED])
    second.on_running = second.write_result
    puts: list = []
    lake.client.meta.events.register("before-parameter-build.s3.PutObject",
                                     lambda params, **_: puts.append(params["Key"]))
    _result(_convert(converter, _manifest(lake, "a.vcf.gz"), lake)[0])
    assert sorted(o.key for o in lake.list_objects("code")) == code
    assert puts and not [key for key in puts if key.startswith("lake/code/")], puts


def test_the_package_zip_is_reproducible_and_holds_the_lib_modules():
    first, second = package_zip(), package_zip()
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "genolake_assets/lib/vcf/batch.py" in names and "genolake_assets/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_custom_ami_mode_has_no_bootstrap_action(scripted_emr, lake, job_dir, moto_endpoint):
    emr = scripted_emr([*RUNNING, COMPLETED])
    emr.on_running = emr.write_result
    converter = _converter(moto_endpoint, job_dir, hail_install="custom_ami", custom_ami_id="ami-0123456789abcdef0")
    _result(_convert(converter, _manifest(lake, "a.vcf.gz"), lake)[0])
    cluster = emr.moto.describe_cluster(ClusterId=emr.cluster_id)["Cluster"]
    assert cluster["CustomAmiId"] == "ami-0123456789abcdef0"
    assert emr.moto.list_bootstrap_actions(ClusterId=emr.cluster_id)["BootstrapActions"] == []
    assert "BootstrapActions" not in emr.called("RunJobFlow")[0]
    assert not [o.key for o in lake.list_objects("code") if o.key.endswith("emr_bootstrap.sh")]


def test_custom_ami_mode_needs_an_ami(scripted_emr, lake, job_dir, moto_endpoint):
    emr = scripted_emr([*RUNNING, COMPLETED])
    run, _ = _convert(_converter(moto_endpoint, job_dir, hail_install="custom_ami"), _manifest(lake, "a.vcf.gz"), lake)
    assert "needs custom_ami_id" in _failure(run).message
    assert not emr.called("RunJobFlow")


# -- a cluster that fails -----------------------------------------------------------------------------------


def test_a_bootstrap_failure_names_the_cluster_and_the_reason(scripted_emr, lake, job_dir, moto_endpoint):
    message = "On the master instance (i-0f1e2d), bootstrap action 1 returned a non-zero return code"
    emr = scripted_emr([("STARTING", None), ("BOOTSTRAPPING", None),
                        ("TERMINATED_WITH_ERRORS", {"Code": "BOOTSTRAP_FAILURE", "Message": message})],
                       step_status={"State": "CANCELLED", "StateChangeReason": {}})
    run, _ = _convert(_converter(moto_endpoint, job_dir), _manifest(lake, "a.vcf.gz"), lake)
    error = _failure(run)
    assert error.cls_name == "EmrClusterFailed"
    assert emr.cluster_id in error.message and "BOOTSTRAP_FAILURE" in error.message and message in error.message
    assert "CANCELLED" in error.message
    assert emr.job_runs == [] and not lake.exists("variants/_batches/run1/result.json")


def test_a_step_failure_names_the_failure_details(scripted_emr, lake, job_dir, moto_endpoint):
    log_file = "s3://lake/emr-logs/j-X/steps/s-Y/stderr.gz"
    emr = scripted_emr([*RUNNING, ("TERMINATING", None),
                        ("TERMINATED_WITH_ERRORS", {"Code": "STEP_FAILURE", "Message": "Shut down as step failed"})],
                       on_running=lambda cluster: None,  # the job dies before writing a result
                       step_status={"State": "FAILED", "StateChangeReason": {}, "FailureDetails": {
                           "Reason": "Unknown error.", "Message": "java.lang.OutOfMemoryError: Java heap space",
                           "LogFile": log_file}})
    run, _ = _convert(_converter(moto_endpoint, job_dir), _manifest(lake, "a.vcf.gz"), lake)
    error = _failure(run)
    assert error.cls_name == "EmrClusterFailed"
    for text in (emr.cluster_id, "STEP_FAILURE", "Shut down as step failed", "Unknown error.",
                 "java.lang.OutOfMemoryError: Java heap space", log_file, "hail-convert"):
        assert text in error.message, text


def test_a_result_left_by_an_earlier_attempt_is_not_taken_for_this_clusters(scripted_emr, lake, job_dir, moto_endpoint):
    lake.write_bytes("variants/_batches/run1/result.json", b'{"stale": true}')
    scripted_emr([*RUNNING, COMPLETED], on_running=lambda cluster: None)  # the step "completes" writing nothing
    run, _ = _convert(_converter(moto_endpoint, job_dir), _manifest(lake, "a.vcf.gz"), lake)
    error = _failure(run)
    assert "ALL_STEPS_COMPLETED" in error.message and "without writing a result" in error.message


def test_the_failure_exception_carries_its_parts():
    error = EmrClusterFailed("j-1", "TERMINATED_WITH_ERRORS (STEP_FAILURE)", "step s-1 FAILED: boom")
    assert str(error) == "EMR cluster j-1 failed: TERMINATED_WITH_ERRORS (STEP_FAILURE); step s-1 FAILED: boom"
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.cluster_id, copied.reason, copied.details) == ("j-1", "TERMINATED_WITH_ERRORS (STEP_FAILURE)",
                                                                  "step s-1 FAILED: boom")


# -- stopping the cluster -----------------------------------------------------------------------------------


def test_a_terminated_dagster_run_terminates_the_cluster(scripted_emr, lake, job_dir, moto_endpoint):
    def interrupt(cluster):
        raise dg.DagsterExecutionInterruptedError("run terminated by the user")

    emr = scripted_emr([*RUNNING, COMPLETED], on_running=interrupt)
    run, _ = _convert(_converter(moto_endpoint, job_dir), _manifest(lake, "a.vcf.gz"), lake)
    assert _failure(run).cls_name == "DagsterExecutionInterruptedError"  # the run stops; so does the cluster
    assert emr.called("TerminateJobFlows") == [{"JobFlowIds": [emr.cluster_id]}]
    assert emr.moto.describe_cluster(ClusterId=emr.cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"


def test_a_cluster_that_outlives_its_time_is_terminated(scripted_emr, lake, job_dir, moto_endpoint):
    emr = scripted_emr([*RUNNING], on_running=lambda cluster: None)  # never ends
    converter = _converter(moto_endpoint, job_dir, startup_timeout_seconds=0, step_timeout_seconds=1,
                           poll_interval_seconds=0.1)
    run, _ = _convert(converter, _manifest(lake, "a.vcf.gz"), lake)
    error = _failure(run)
    assert error.cls_name == "EmrClusterFailed" and "TIMEOUT: still RUNNING" in error.message
    assert emr.called("TerminateJobFlows") == [{"JobFlowIds": [emr.cluster_id]}]


# -- settings and profile -----------------------------------------------------------------------------------


def test_the_aws_profile_with_the_hail_engine_builds_the_emr_converter(aws_resources, monkeypatch):
    from genolake_assets.resources.profile import build_resources

    monkeypatch.setenv("GENOLAKE_ENGINE", "hail")
    monkeypatch.setenv("GENOLAKE_EMR_RELEASE_LABEL", "emr-7.10.0")
    monkeypatch.setenv("GENOLAKE_EMR_SUBNET_ID", "subnet-9")
    monkeypatch.setenv("GENOLAKE_EMR_SERVICE_ROLE", "arn:aws:iam::1:role/svc")
    monkeypatch.setenv("GENOLAKE_EMR_INSTANCE_PROFILE", "arn:aws:iam::1:instance-profile/job")
    monkeypatch.setenv("GENOLAKE_EMR_SECURITY_CONFIGURATION", "sec")
    monkeypatch.setenv("GENOLAKE_EMR_CORE_INSTANCES", "8")
    monkeypatch.setenv("GENOLAKE_EMR_INSTANCE_TYPE", "r6i.4xlarge")
    converter = build_resources()["converter"]
    assert isinstance(converter, EmrHailConverter) and converter.engine == "hail"
    assert (converter.release_label, converter.subnet_id, converter.service_role, converter.job_flow_role,
            converter.security_configuration, converter.core_instance_count, converter.core_instance_type) == (
        "emr-7.10.0", "subnet-9", "arn:aws:iam::1:role/svc", "arn:aws:iam::1:instance-profile/job", "sec", 8,
        "r6i.4xlarge")
    assert converter.hail_install == "bootstrap" and converter.endpoint_url == os.environ["AWS_ENDPOINT_URL"]

    monkeypatch.setenv("GENOLAKE_HAIL_INSTALL", "custom_ami")
    monkeypatch.setenv("GENOLAKE_EMR_CUSTOM_AMI_ID", "ami-1")
    converter = build_resources()["converter"]
    assert (converter.hail_install, converter.custom_ami_id) == ("custom_ami", "ami-1")


def test_the_engine_defaults_to_arrow_in_both_profiles(aws_resources, monkeypatch, tmp_path):
    from genolake_assets.resources.conversion.engine import ConverterResource
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.settings import samples_per_run

    converter = aws_resources["converter"]
    assert type(converter) is ConverterResource and converter.engine == "arrow"
    monkeypatch.setenv("GENOLAKE_PROFILE", "local")
    monkeypatch.setenv("GENOLAKE_ENGINE", "hail")
    converter = build_resources()["converter"]
    assert type(converter) is ConverterResource and converter.engine == "hail"  # local Hail, not EMR
    assert samples_per_run() == 100
    monkeypatch.setenv("GENOLAKE_SAMPLES_PER_CLUSTER", "25")
    assert samples_per_run() == 25


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("GENOLAKE_ENGINE", "spark", "GENOLAKE_ENGINE must be one of arrow, hail, not 'spark'"),
    ("GENOLAKE_HAIL_INSTALL", "conda", "GENOLAKE_HAIL_INSTALL must be one of bootstrap, custom_ami"),
    ("GENOLAKE_HAIL_INSTALL", "custom_ami", "needs GENOLAKE_EMR_CUSTOM_AMI_ID"),
    ("GENOLAKE_SAMPLES_PER_CLUSTER", "0", "GENOLAKE_SAMPLES_PER_CLUSTER must be a whole number of at least 1"),
    ("GENOLAKE_EMR_CORE_INSTANCES", "four", "GENOLAKE_EMR_CORE_INSTANCES must be a whole number"),
])
def test_bad_engine_settings_are_refused_clearly(monkeypatch, variable, value, message):
    from genolake_assets.settings import Settings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env()


def test_the_stack_lets_the_orchestrator_act_only_on_clusters_with_the_converters_tag():
    from deploy import template

    params_tags = {"genolake:component": "hail-convert"}
    assert {template.EMR_COMPONENT_TAG: template.EMR_COMPONENT} == params_tags
    statements = template.orchestrator_policy()["OrchestratorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["EmrRunJobFlowRequiresStar"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/genolake:component": "hail-convert"}}
    assert {"elasticmapreduce:TerminateJobFlows", "elasticmapreduce:DescribeCluster"} <= set(
        by_sid["EmrFollowAndStopClusters"]["Action"])
    assert by_sid["PassEmrServiceRole"]["Resource"] == {"Fn::GetAtt": ["EmrServiceRole", "Arn"]}
    assert by_sid["PassEmrJobRole"]["Resource"] == {"Fn::GetAtt": ["EmrJobRole", "Arn"]}


def test_the_default_job_dir_is_the_repos_spark_folder():
    assert emr_hail.SPARK_DIR == REPO / "spark"
    assert (emr_hail.SPARK_DIR / emr_hail.BOOTSTRAP_SCRIPT).is_file()
    script = (emr_hail.SPARK_DIR / emr_hail.BOOTSTRAP_SCRIPT).read_text()
    for pin in ("hail==0.2.139", "dagster-pipes==", "pyarrow==", "numpy==", "boto3=="):
        assert pin in script
    assert emr_hail.HAIL_JAR in script and "set -euo pipefail" in script
    subprocess.run(["bash", "-n", str(emr_hail.SPARK_DIR / emr_hail.BOOTSTRAP_SCRIPT)], check=True)


def test_the_cluster_name_carries_a_backfills_partition_range():
    keys = dg.StaticPartitionsDefinition(["S0", "S1", "S2"])

    @dg.asset(partitions_def=keys)
    def converted(context: dg.AssetExecutionContext):
        return emr_hail._partition_range(context)

    context = dg.build_asset_context(partition_key_range=dg.PartitionKeyRange("S0", "S2"))
    assert converted(context) == "S0..S2"
    assert converted(dg.build_asset_context(partition_key="S1")) == "S1"
