"""Transient EMR clusters launched and followed through dagster-aws Pipes: what the Hail converter
(resources/conversion/emr_hail.py) and the Spark cohort build (resources/cohort/emr_spark.py) share.

A job is one cluster with one step: its code is uploaded to the lake content-addressed, its Pipes messages
are read from the lake's emr-logs/, the wait lasts as long as the job may take and a cluster is never left
running unwatched.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError, WaiterError
from dagster_aws.pipes import PipesEMRClient, PipesS3MessageReader

import genolake_assets
from genolake_assets.lib.lake.layout import EMR_CODE_PREFIX, EMR_LOGS_PREFIX, EMR_PIPES_PREFIX
from genolake_assets.resources.lake.s3_store import S3ObjectStore

SPARK_DIR = Path(__file__).resolve().parents[3] / "spark"
"""The repo's ``spark/`` (this package is used from an editable install; ``job_dir`` overrides it)."""
CLUSTER_PYTHON = "/usr/bin/python3.11"
"""Hail 0.2.139 needs Python >= 3.10; EMR 7's default python3 is 3.9, its python3.11 is installed beside it."""
TERMINAL_ERROR_STATE = "TERMINATED_WITH_ERRORS"


class EmrClusterFailed(RuntimeError):
    """The cluster ended (or was stopped) before the job wrote its result."""

    def __init__(self, cluster_id: str, reason: str, details: str = ""):
        self.cluster_id, self.reason, self.details = cluster_id, reason, details
        super().__init__(f"EMR cluster {cluster_id} failed: {reason}" + (f"; {details}" if details else ""))

    def __reduce__(self):
        return type(self), (self.cluster_id, self.reason, self.details)


class LakeMessageReader(PipesS3MessageReader):
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


class TransientClusterClient(PipesEMRClient):
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


def upload_code(store: S3ObjectStore, files: dict[str, tuple[str, bytes]]) -> dict[str, str]:
    """``files`` (role → (name, bytes)) under code/<sha256>/<name>, each uploaded once; role → s3:// URI."""
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


def lake_key(store: S3ObjectStore, uri: str) -> str:
    root = store.root_uri.rstrip("/") + "/"
    if not uri.startswith(root):
        raise ValueError(f"{uri} is not in the lake ({root}): the cluster reads and writes only there")
    return uri[len(root):]


def iam_name(name_or_arn: str) -> str:
    """RunJobFlow takes role and instance-profile names; an ARN (what the stack outputs) is reduced to its name."""
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def partition_range(context) -> str:
    if context.has_partition_key_range:
        keys = context.partition_key_range
        return keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"
    return context.partition_key if context.has_partition_key else ""


def cluster_failure(emr, cluster: dict, fallback: str) -> EmrClusterFailed:
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


def transient_cluster_params(resource, store: S3ObjectStore, *, name: str, step_name: str, command: list[str],
                             tags: dict[str, str], bootstrap: tuple[str, str] | None,
                             custom_ami_id: str | None) -> dict:
    """RunJobFlow's parameters for a cluster that runs one step and terminates.

    ``resource`` carries the cluster's settings (release_label, master/core instance type and count, subnet_id,
    log_uri, service_role, job_flow_role, security_configuration, idle and step timeouts); ``bootstrap`` is
    (action name, script URI), else the nodes come from ``custom_ami_id``."""
    instances: dict = {
        "InstanceGroups": [
            {"Name": "master", "InstanceRole": "MASTER", "InstanceType": resource.master_instance_type,
             "InstanceCount": 1},
            {"Name": "core", "InstanceRole": "CORE", "InstanceType": resource.core_instance_type,
             "InstanceCount": resource.core_instance_count}],
        "KeepJobFlowAliveWhenNoSteps": False, "TerminationProtected": False}
    if resource.subnet_id:
        instances["Ec2SubnetId"] = resource.subnet_id
    params: dict = {
        "Name": name[:256],
        "ReleaseLabel": resource.release_label,
        "LogUri": resource.log_uri or f"{store.uri(EMR_LOGS_PREFIX.rstrip('/'))}/",
        "Applications": [{"Name": "Spark"}],
        "Instances": instances,
        "Steps": [{"Name": step_name, "ActionOnFailure": "TERMINATE_CLUSTER", "HadoopJarStep": {
            # EMR has no step timeout of its own: `timeout` ends a hung job even if nobody is waiting for it
            "Jar": "command-runner.jar",
            "Args": ["timeout", "--kill-after=300", str(resource.step_timeout_seconds), *command]}}],
        "StepConcurrencyLevel": 1,
        "AutoTerminationPolicy": {"IdleTimeout": resource.idle_timeout_seconds},
        "VisibleToAllUsers": True,
        "ServiceRole": iam_name(resource.service_role),
        "JobFlowRole": iam_name(resource.job_flow_role),
        # AmazonEMRServicePolicy_v2 (the stack's service role) acts only on resources with the last tag
        "Tags": [*({"Key": key, "Value": value} for key, value in tags.items()),
                 {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}],
    }
    if bootstrap is not None:
        params["BootstrapActions"] = [{"Name": bootstrap[0], "ScriptBootstrapAction": {"Path": bootstrap[1], "Args": []}}]
    else:
        params["CustomAmiId"] = custom_ami_id
    if resource.security_configuration:
        params["SecurityConfiguration"] = resource.security_configuration
    return params


def run_transient_cluster(resource, context, store: S3ObjectStore, emr_client, params: dict,
                          log: Callable[[str], None], on_custom: Callable[[dict], None]) -> TransientClusterClient:
    """Start the cluster and follow it to its end through Pipes (messages from the lake's emr-logs/); the
    client it returns holds the final cluster description (``final_cluster``) and the EMR client."""
    client = TransientClusterClient(
        client=emr_client,
        message_reader=LakeMessageReader(
            bucket=store.bucket, client=store.client, interval=resource.poll_interval_seconds,
            folder="/".join(filter(None, (store.prefix, EMR_PIPES_PREFIX))), on_custom=on_custom,
            # the driver's output arrives as messages: no waiting for EMR's 5-minute log uploads
            include_stdio_in_messages=True),
        delay=resource.poll_interval_seconds, log=log,
        max_attempts=max(1, math.ceil((resource.startup_timeout_seconds + resource.step_timeout_seconds)
                                      / resource.poll_interval_seconds)))
    client.run(context=context, run_job_flow_params=params)
    return client
