"""The Hail conversion engine on a transient EMR cluster, launched and followed through dagster-aws Pipes.

One batch is one cluster: ``convert_batch`` uploads the job code to the lake (content-addressed, so an
unchanged job is uploaded once), writes the manifest next to ``result_uri``, starts a cluster whose only
step is ``spark/vcf_to_parquet.py --manifest <uri>`` and which terminates when the step ends, forwards
the job's Pipes messages (per-sample progress) while it runs, then reads the job's :class:`BatchResult`.
A VCF the job could not convert is an outcome in that result; only a cluster that ended without writing
one (bootstrap or step failure, timeout) raises :class:`EmrClusterFailed`. A terminated Dagster run, a
timeout or an error while waiting terminates the cluster.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError, WaiterError
from dagster_aws.pipes import PipesEMRClient, PipesS3MessageReader

import genolake_assets
from genolake_assets.lib.lake.layout import EMR_CODE_PREFIX, EMR_LOGS_PREFIX, EMR_PIPES_PREFIX
from genolake_assets.lib.vcf.batch import BatchResult, ConversionManifest
from genolake_assets.resources.conversion.engine import ConverterResource
from genolake_assets.resources.lake.object_store import ObjectStore
from genolake_assets.resources.lake.s3_store import S3ObjectStore, aws_client

SPARK_DIR = Path(__file__).resolve().parents[3] / "spark"
"""The repo's ``spark/`` (this package is used from an editable install; ``job_dir`` overrides it)."""
JOB_SCRIPT = "vcf_to_parquet.py"
BOOTSTRAP_SCRIPT = "emr_bootstrap.sh"
CLUSTER_PYTHON = "/usr/bin/python3.11"
"""Hail 0.2.139 needs Python >= 3.10; EMR 7's default python3 is 3.9, its python3.11 is installed beside it."""
HAIL_JAR = "/opt/genolake/hail-all-spark.jar"
"""Where emr_bootstrap.sh (or a custom AMI) links Hail's jar: spark-submit starts the driver JVM before Hail's
Python code runs, so the jar must be given on the command line."""
# On the spark-submit line rather than as cluster Configurations: dagster-aws merges its Pipes variables into
# a caller's spark-env classification by dropping them, and the driver would never find its Pipes context.
HAIL_SPARK_CONF = {
    "spark.pyspark.python": CLUSTER_PYTHON,
    "spark.pyspark.driver.python": CLUSTER_PYTHON,
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
    "spark.kryo.registrator": "is.hail.kryo.HailKryoRegistrator",
}
DEFAULT_SPARK_CONF = {"spark.driver.memory": "8g"}
"""Hail's driver needs more than Spark's 1 GiB default heap; spark_conf entries override these."""
TERMINAL_ERROR_STATE = "TERMINATED_WITH_ERRORS"


class EmrClusterFailed(RuntimeError):
    """The cluster ended (or was stopped) before the job wrote its result."""

    def __init__(self, cluster_id: str, reason: str, details: str = ""):
        self.cluster_id, self.reason, self.details = cluster_id, reason, details
        super().__init__(f"EMR cluster {cluster_id} failed: {reason}" + (f"; {details}" if details else ""))

    def __reduce__(self):
        return type(self), (self.cluster_id, self.reason, self.details)


class _LakeMessageReader(PipesS3MessageReader):
    """Messages under the lake's emr-logs/ (the stock reader uses a random prefix at the bucket root, which the
    cluster's role may not write), each custom message also handed to ``on_custom`` as it arrives."""

    def __init__(self, *, folder: str, on_custom: Callable[[dict], None], **kwargs):
        super().__init__(**kwargs)
        self._folder, self._on_custom = folder, on_custom

    @contextmanager
    def get_params(self):
        with super().get_params() as params:
            yield {**params, "key_prefix": f"{self._folder}/{params['key_prefix']}"}

    def download_messages_chunk(self, index, params):
        chunk = super().download_messages_chunk(index, params)
        for line in (chunk or "").splitlines():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # the handler skips such lines too
            if isinstance(message, dict) and message.get("method") == "report_custom_message":
                self._on_custom(message["params"]["payload"])
        return chunk


class _TransientClusterClient(PipesEMRClient):
    """PipesEMRClient with one change to its wait: the stock one gives up after 30 minutes per waiter and leaves
    the cluster running (dagster-io/dagster#27469), and its cluster_running waiter takes a cluster that has
    already finished for a failure. This waits for termination only, as long as the batch may take, and
    terminates the cluster when the wait stops for any reason but a Dagster interrupt (which run() handles)."""

    def __init__(self, *, delay: float, max_attempts: int, log: Callable[[str], None], **kwargs):
        super().__init__(**kwargs)
        self._waiter_config = {"Delay": delay, "MaxAttempts": max_attempts}
        self._log = log
        self.final_cluster: dict = {}

    def _wait_for_completion(self, context, response):
        cluster_id = response["JobFlowId"]
        self._log(f"EMR cluster {cluster_id} started; waiting for it to finish")
        try:
            self.client.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=self._waiter_config)
        except WaiterError as error:
            state = (error.last_response or {}).get("Cluster", {}).get("Status", {}).get("State")
            if state != TERMINAL_ERROR_STATE:  # a failed cluster is explained from its description below
                self._stop(context, response)
                seconds = self._waiter_config["Delay"] * self._waiter_config["MaxAttempts"]
                timed_out = "Max attempts" in str(error)
                reason = f"TIMEOUT: still {state} after {seconds:g} s" if timed_out else f"WAIT_FAILED: {error}"
                raise EmrClusterFailed(cluster_id, reason, "the cluster was terminated") from error
        except dg.DagsterExecutionInterruptedError:
            raise  # run() terminates the cluster itself (forward_termination)
        except BaseException:  # KeyboardInterrupt, an API error: no cluster is left running unwatched
            self._stop(context, response)
            raise
        self.final_cluster = self.client.describe_cluster(ClusterId=cluster_id)["Cluster"]
        return {"Cluster": self.final_cluster}

    def _stop(self, context, response) -> None:
        try:
            self._terminate(context, response)
        except (BotoCoreError, ClientError) as error:  # keep the error that stopped the wait; warn instead
            self._log(f"could not terminate EMR cluster {response['JobFlowId']}, it may still be running: {error!r}")


class EmrHailConverter(ConverterResource):
    """Runs a batch of VCF → Parquet conversions with Hail on one transient EMR cluster.

    Fields: ``region``/``endpoint_url`` of the EMR API; ``release_label`` (an EMR 7.x release: Spark 3.5, as
    Hail 0.2.139 needs; 7.5.0 has Spark 3.5.2); ``master_instance_type``, ``core_instance_type`` and
    ``core_instance_count``; ``subnet_id`` (tag it ``for-use-with-amazon-emr-managed-policies=true``);
    ``service_role`` and ``job_flow_role`` (the instance profile; names or ARNs); ``security_configuration``;
    ``log_uri`` (default ``s3://<lake>/emr-logs/``); ``hail_install``: ``"bootstrap"`` (spark/emr_bootstrap.sh
    pip-installs Hail on every node) or ``"custom_ami"`` (``custom_ami_id`` already has it, linked at
    :data:`HAIL_JAR`); ``idle_timeout_seconds`` (AutoTerminationPolicy); ``startup_timeout_seconds`` plus
    ``step_timeout_seconds``: how long the cluster may take before it is terminated; ``poll_interval_seconds``
    for cluster state and messages; ``spark_conf``: ``--conf`` entries over :data:`DEFAULT_SPARK_CONF` (driver
    and executor memory); ``job_dir`` holding the job and bootstrap scripts (default: the repo's spark/).
    """

    engine: str = "hail"
    region: str | None = None
    endpoint_url: str | None = None
    release_label: str = "emr-7.5.0"
    master_instance_type: str = "m5.xlarge"
    core_instance_type: str = "r5.2xlarge"
    core_instance_count: int = 4
    subnet_id: str | None = None
    service_role: str = "EMR_DefaultRole_V2"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    security_configuration: str | None = None
    log_uri: str | None = None
    hail_install: str = "bootstrap"
    custom_ami_id: str | None = None
    idle_timeout_seconds: int = 900
    startup_timeout_seconds: int = 45 * 60
    step_timeout_seconds: int = 8 * 3600
    poll_interval_seconds: float = 15.0
    spark_conf: dict[str, str] | None = None
    job_dir: str | None = None

    def stages_in_lake(self) -> bool:
        return True

    def convert_batch(self, context, manifest: ConversionManifest, store: ObjectStore,
                      log: Callable[[str], None]) -> BatchResult:
        if not isinstance(store, S3ObjectStore):
            raise TypeError(f"the EMR engine needs the lake on S3, not {type(store).__name__}")
        self._check_hail_install()
        result_key = _lake_key(store, manifest.result_uri)
        manifest_key = str(PurePosixPath(result_key).parent / "manifest.json")
        code = self._upload_code(store)
        store.write_bytes(manifest_key, manifest.to_json().encode())
        store.delete(result_key)  # a result left by an earlier attempt must not pass for this cluster's
        params = self.job_flow_params(context, manifest, code, store.uri(manifest_key), store)
        client = _TransientClusterClient(
            client=aws_client("emr", endpoint_url=self.endpoint_url, region_name=self.region),
            message_reader=_LakeMessageReader(
                bucket=store.bucket, client=store.client, interval=self.poll_interval_seconds,
                folder="/".join(filter(None, (store.prefix, EMR_PIPES_PREFIX))),
                on_custom=lambda payload: log(_describe(payload)),
                # the driver's output arrives as messages: no waiting for EMR's 5-minute log uploads
                include_stdio_in_messages=True),
            delay=self.poll_interval_seconds, log=log,
            max_attempts=max(1, math.ceil((self.startup_timeout_seconds + self.step_timeout_seconds)
                                          / self.poll_interval_seconds)))
        client.run(context=context, run_job_flow_params=params)
        cluster = client.final_cluster
        try:
            result = BatchResult.from_json(store.read_bytes(result_key).decode())
        except FileNotFoundError:
            raise _failure(client.client, cluster, "the step ended without writing a result") from None
        if cluster["Status"]["State"] == TERMINAL_ERROR_STATE:
            log(f"warning: {_failure(client.client, cluster, '')} (after the job wrote its result)")
        result.spark.setdefault("emr_cluster_id", cluster["Id"])
        result.spark.setdefault("emr_release_label", self.release_label)
        return result

    def job_flow_params(self, context, manifest: ConversionManifest, code: dict[str, str], manifest_uri: str,
                        store: S3ObjectStore) -> dict:
        """RunJobFlow's parameters: a cluster that runs the one conversion step and terminates."""
        self._check_hail_install()
        samples = sum(len(job.samples) for job in manifest.jobs)
        partitions = _partition_range(context)
        spark_conf = {**HAIL_SPARK_CONF, **DEFAULT_SPARK_CONF, **(self.spark_conf or {})}
        conf = [arg for key, value in spark_conf.items() for arg in ("--conf", f"{key}={value}")]
        spark_submit = ["spark-submit", "--deploy-mode", "client", "--jars", HAIL_JAR, *conf,
                        "--py-files", code["package"], code["script"], "--manifest", manifest_uri]
        instances: dict = {
            "InstanceGroups": [
                {"Name": "master", "InstanceRole": "MASTER", "InstanceType": self.master_instance_type,
                 "InstanceCount": 1},
                {"Name": "core", "InstanceRole": "CORE", "InstanceType": self.core_instance_type,
                 "InstanceCount": self.core_instance_count}],
            "KeepJobFlowAliveWhenNoSteps": False, "TerminationProtected": False}
        if self.subnet_id:
            instances["Ec2SubnetId"] = self.subnet_id
        params: dict = {
            "Name": f"genolake-hail {context.run_id}{' ' + partitions if partitions else ''}"[:256],
            "ReleaseLabel": self.release_label,
            "LogUri": self.log_uri or f"{store.uri(EMR_LOGS_PREFIX.rstrip('/'))}/",
            "Applications": [{"Name": "Spark"}],
            "Instances": instances,
            "Steps": [{"Name": "hail-convert", "ActionOnFailure": "TERMINATE_CLUSTER", "HadoopJarStep": {
                # EMR has no step timeout of its own: `timeout` ends a hung job even if nobody is waiting for it
                "Jar": "command-runner.jar",
                "Args": ["timeout", "--kill-after=300", str(self.step_timeout_seconds), *spark_submit]}}],
            "StepConcurrencyLevel": 1,
            "AutoTerminationPolicy": {"IdleTimeout": self.idle_timeout_seconds},
            "VisibleToAllUsers": True,
            "ServiceRole": _iam_name(self.service_role),
            "JobFlowRole": _iam_name(self.job_flow_role),
            "Tags": [{"Key": "genolake:run-id", "Value": context.run_id},
                     {"Key": "genolake:samples", "Value": str(samples)},
                     {"Key": "genolake:component", "Value": "hail-convert"},
                     # AmazonEMRServicePolicy_v2 (the stack's service role) acts only on resources with this tag
                     {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}],
        }
        if self.hail_install == "bootstrap":
            params["BootstrapActions"] = [{"Name": "install-hail",
                                           "ScriptBootstrapAction": {"Path": code["bootstrap"], "Args": []}}]
        else:
            params["CustomAmiId"] = self.custom_ami_id
        if self.security_configuration:
            params["SecurityConfiguration"] = self.security_configuration
        return params

    def _check_hail_install(self) -> None:
        if self.hail_install not in ("bootstrap", "custom_ami"):
            raise ValueError(f"hail_install must be 'bootstrap' or 'custom_ami', not {self.hail_install!r}")
        if self.hail_install == "custom_ami" and not self.custom_ami_id:
            raise ValueError(f"hail_install='custom_ami' needs custom_ami_id (an AMI with Hail linked at {HAIL_JAR})")

    def _upload_code(self, store: S3ObjectStore) -> dict[str, str]:
        """The job script, the package zip and the bootstrap script under code/<sha256>/ (uploaded once)."""
        folder = Path(self.job_dir) if self.job_dir else SPARK_DIR
        names = {"script": JOB_SCRIPT}
        if self.hail_install == "bootstrap":
            names["bootstrap"] = BOOTSTRAP_SCRIPT
        missing = [name for name in names.values() if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} not found in {folder} (set job_dir to the spark/ folder)")
        files = {role: (name, (folder / name).read_bytes()) for role, name in names.items()}
        files["package"] = ("genolake_assets.zip", package_zip())
        uris = {}
        for role, (name, data) in files.items():
            key = f"{EMR_CODE_PREFIX}{hashlib.sha256(data).hexdigest()}/{name}"
            if store.head(key) is None:
                store.write_bytes(key, data)
            uris[role] = store.uri(key)
        return uris


def package_zip() -> bytes:
    """``genolake_assets/`` as a zip for ``--py-files``, byte-identical for identical sources (no timestamps,
    sorted entries) so its content address changes only when the code does."""
    root = Path(genolake_assets.__file__).resolve().parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            name = f"{root.name}/{path.relative_to(root).as_posix()}"
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _lake_key(store: S3ObjectStore, uri: str) -> str:
    root = store.root_uri.rstrip("/") + "/"
    if not uri.startswith(root):
        raise ValueError(f"{uri} is not in the lake ({root}): the cluster reads and writes only there")
    return uri[len(root):]


def _iam_name(name_or_arn: str) -> str:
    """RunJobFlow takes role and instance-profile names; an ARN (what the stack outputs) is reduced to its name."""
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def _partition_range(context) -> str:
    if context.has_partition_key_range:
        keys = context.partition_key_range
        return keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"
    return context.partition_key if context.has_partition_key else ""


def _describe(payload) -> str:
    """A log line for the job's per-sample ("sample") and per-VCF ("failed") messages."""
    kind, get = (payload.get("kind"), payload.get) if isinstance(payload, dict) else (None, None)
    if kind == "sample":
        return (f"{get('job_id')}: sample {get('sample_id')} converted: {get('rows')} rows, {get('bytes')} bytes "
                f"in {float(get('seconds') or 0):.1f} s")
    if kind == "failed":
        return f"{get('job_id')}: {get('vcf_uri')} failed: {get('problem')}"
    return f"job message: {payload}"


def _failure(emr, cluster: dict, fallback: str) -> EmrClusterFailed:
    """Why the cluster failed, from its state change reason and its failed step's FailureDetails."""
    status = cluster["Status"]
    change = status.get("StateChangeReason") or {}
    reason = ": ".join(part for part in (change.get("Code"), change.get("Message")) if part)
    reason = f"{status['State']} ({reason})" if reason else status["State"]
    steps = emr.list_steps(ClusterId=cluster["Id"], StepStates=["FAILED", "CANCELLED", "INTERRUPTED"])["Steps"]
    details = []
    for step in steps:
        failure = step["Status"].get("FailureDetails") or {}
        parts = [failure.get("Reason"), failure.get("Message"), failure.get("LogFile") and f"log {failure['LogFile']}"]
        details.append(f"step {step['Id']} ({step.get('Name')}) {step['Status']['State']}: "
                       + ("; ".join(part for part in parts if part) or "no failure details"))
    return EmrClusterFailed(cluster["Id"], reason, " | ".join(details) or fallback)
