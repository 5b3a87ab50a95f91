"""Where the BAM compression program runs: a local subprocess, or an AWS Batch job.

Both runners start the same program, ``python -m genolake_assets.programs.bam_compress --work-order <uri>``
(the Docker image's ENTRYPOINT on Batch), stream its log to the caller line by line and wait for it.
The caller has already written the work order to ``work_order_uri``; the program writes its result
JSON to the work order's ``result_uri``, which the runner reads back through the caller's
``read_result`` once the program has ended.

A run never outlives its Dagster run: on a timeout, a ``KeyboardInterrupt`` or Dagster's
``DagsterExecutionInterruptedError`` (a run being terminated) the local process group is killed or
the Batch job terminated. dagster-aws has no Pipes client for Batch, hence this small
submit / poll / stream-the-log resource.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import urlparse

import dagster as dg
from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from genolake_assets.resources.processes import kill_process_group
from genolake_assets.resources.lake.s3_store import aws_client

ENTRYPOINT_MODULE = "genolake_assets.programs.bam_compress"
LOG_TAIL_LINES = 50
INTERRUPTS = (KeyboardInterrupt, dg.DagsterExecutionInterruptedError)
_BATCH_NAME_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_LOG_PAGES_PER_POLL = 100

# Module-level so tests can drive the clock.
_sleep = time.sleep
_monotonic = time.monotonic


@dataclass
class RunnerOutcome:
    job_id: str
    exit_code: int | None
    status: str  # "SUCCEEDED" | "FAILED" | "CANCELLED"
    result: dict | None = None
    log_tail: list[str] = field(default_factory=list)
    reason: str | None = None


class CompressionRunner(dg.ConfigurableResource):
    """Runs the compression program on one work order (one per profile; see the module docstring)."""

    @abstractmethod
    def run(self, work_order: dict, work_order_uri: str, read_result: Callable[[str], dict | None],
            log: Callable[[str], None]) -> RunnerOutcome:
        """Run the program on the work order at ``work_order_uri`` and wait for it to end.

        ``log`` receives each line of the program's log as it arrives; ``read_result(uri)`` reads the
        result JSON (None when absent). Interrupts stop the program and propagate.
        """


def batch_job_name(work_order: dict) -> str:
    """``bam-compress-<input file name>``, within Batch's job-name alphabet and length."""
    name = PurePosixPath(urlparse(work_order.get("input_uri") or "").path).name or "input"
    return ("bam-compress-" + _BATCH_NAME_INVALID.sub("_", name))[:128]


class LocalCompressionRunner(CompressionRunner):
    """The program as a subprocess of this Python, in its own process group."""

    python: str = sys.executable
    timeout_seconds: int = 3600

    def run(self, work_order, work_order_uri, read_result, log) -> RunnerOutcome:
        command = [self.python, "-m", ENTRYPOINT_MODULE, "--work-order", work_order_uri]
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        with tempfile.TemporaryDirectory(prefix="genolake-compress-") as scratch:
            # Only the lake's reference may be used: never let htslib fetch one from the network.
            refs = os.path.join(scratch, "ref-cache", "%2s", "%2s", "%s")
            env = {**os.environ, "REF_PATH": refs, "REF_CACHE": refs, "PYTHONUNBUFFERED": "1"}
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # noqa: S603 - argv list (this Python, a fixed module, one URI), no shell
                                       errors="replace", env=env, cwd=scratch, start_new_session=True)
            job_id = f"local-{process.pid}"
            try:
                timed_out = self._follow(process, tail, log)
            except BaseException:
                kill_process_group(process)
                raise
        if timed_out:
            return RunnerOutcome(job_id, None, "FAILED", None, list(tail),
                                 f"{job_id} timed out after {self.timeout_seconds} s; process group killed")
        code = process.returncode
        result = read_result(work_order["result_uri"])
        if code == 0:
            return RunnerOutcome(job_id, 0, "SUCCEEDED", result, list(tail))
        if code < 0:
            signame = {s.value: s.name for s in signal.Signals}.get(-code, f"signal {-code}")
            status = "FAILED" if signame == "SIGKILL" else "CANCELLED"
            return RunnerOutcome(job_id, None, status, result, list(tail), f"{job_id} killed by {signame}")
        return RunnerOutcome(job_id, code, "FAILED", result, list(tail), f"{job_id} exited with status {code}")

    def _follow(self, process: subprocess.Popen, tail: deque, log) -> bool:
        """Pass the output on until the process ends; True when it ran out of time (and was killed)."""
        lines: queue.Queue[str | None] = queue.Queue()

        def pump():
            with process.stdout:
                for line in process.stdout:
                    lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True, name="compress-log").start()
        deadline = _monotonic() + self.timeout_seconds
        while True:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                kill_process_group(process)
                return True
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if process.poll() is not None:
                    kill_process_group(process)  # exited, but a leftover child still holds the output open
                continue
            if line is None:
                break
            tail.append(line)
            log(line)
        try:
            process.wait(timeout=max(deadline - _monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            kill_process_group(process)
            return True
        return False


class AwsBatchCompressionRunner(CompressionRunner):
    """The program as an AWS Batch job (the image's ENTRYPOINT), its log read from CloudWatch Logs."""

    job_queue: str
    job_definition: str
    region: str | None = None
    endpoint_url: str | None = None
    poll_interval_seconds: float = 15.0
    timeout_seconds: float = 6 * 3600.0
    log_group: str = "/aws/batch/job"
    _batch_client: object = PrivateAttr(default=None)
    _logs_client: object = PrivateAttr(default=None)

    def with_clients(self, batch=None, logs=None) -> "AwsBatchCompressionRunner":
        """A copy that uses these boto3 clients (tests: botocore Stubbers) instead of building its own."""
        copy = self.model_copy()
        copy._batch_client, copy._logs_client = batch, logs
        return copy

    def _batch(self):
        if self._batch_client is None:
            self._batch_client = aws_client("batch", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._batch_client

    def _logs(self):
        if self._logs_client is None:
            self._logs_client = aws_client("logs", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._logs_client

    def run(self, work_order, work_order_uri, read_result, log) -> RunnerOutcome:
        batch = self._batch()
        submitted = batch.submit_job(
            jobName=batch_job_name(work_order), jobQueue=self.job_queue, jobDefinition=self.job_definition,
            containerOverrides={"command": ["--work-order", work_order_uri]},
            # Batch's own limit too, so the job stops even if this process dies without terminating it.
            timeout={"attemptDurationSeconds": max(60, int(self.timeout_seconds))},
            tags={"genolake:job": "bam-compress"})
        job_id = submitted["jobId"]
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        tokens: dict[str, str | bool] = {}  # stream -> next token; False: unreadable
        status = None
        deadline = _monotonic() + self.timeout_seconds
        try:
            log(f"submitted Batch job {job_id} ({submitted.get('jobName')}) to {self.job_queue}")
            while True:
                job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
                if job["status"] != status:
                    status = job["status"]
                    log(f"Batch job {job_id}: {status}")
                self._stream_logs(job, tokens, tail, log)
                if status in ("SUCCEEDED", "FAILED") or _monotonic() >= deadline:
                    break
                _sleep(self.poll_interval_seconds)
        except BaseException as error:
            # Whatever stops the polling (a terminated Dagster run, an API error) stops the job too.
            reason = "Dagster run terminated" if isinstance(error, INTERRUPTS) else f"runner failed: {error!r}"[:1000]
            try:
                batch.terminate_job(jobId=job_id, reason=reason)
            except Exception as terminate_error:  # keep the original error; say the job may still run
                log(f"could not terminate Batch job {job_id}: {terminate_error!r}")
            raise
        if status not in ("SUCCEEDED", "FAILED"):
            reason = f"Batch job {job_id} timed out after {self.timeout_seconds:g} s"
            batch.terminate_job(jobId=job_id, reason=reason)
            return RunnerOutcome(job_id, None, "FAILED", None, list(tail), reason)
        attempts = job.get("attempts") or []
        container = attempts[-1].get("container", {}) if attempts else job.get("container", {})
        reasons = [r for r in (job.get("statusReason"), container.get("reason")) if r]
        if status == "FAILED" and (job.get("isCancelled") or not attempts):
            status = "CANCELLED"  # ended without ever running: cancelled while queued
        return RunnerOutcome(job_id, container.get("exitCode"), status, read_result(work_order["result_uri"]),
                             list(tail), "; ".join(reasons) or None)

    def _stream_logs(self, job: dict, tokens: dict, tail: deque, log) -> None:
        """Pass on the log events not yet seen from every attempt's CloudWatch log stream."""
        streams = [a.get("container", {}).get("logStreamName") for a in job.get("attempts") or []]
        streams.append(job.get("container", {}).get("logStreamName"))
        for stream in dict.fromkeys(s for s in streams if s):
            if tokens.get(stream) is False:
                continue  # unreadable (already said so)
            for _ in range(_LOG_PAGES_PER_POLL):
                request = {"logGroupName": self.log_group, "logStreamName": stream, "startFromHead": True}
                if tokens.get(stream):
                    request["nextToken"] = tokens[stream]
                try:
                    page = self._logs().get_log_events(**request)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                        log(f"cannot read log stream {stream}: {error}")  # the job matters, not its log
                        tokens[stream] = False
                    break  # a missing stream (or group) appears once the container starts writing
                for event in page.get("events", []):
                    tail.append(event["message"])
                    log(event["message"])
                token = page.get("nextForwardToken")
                if not token or token == tokens.get(stream):
                    break  # CloudWatch returns the same token at the end of the stream
                tokens[stream] = token
