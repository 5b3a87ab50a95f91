"""The aws profile's compression runner: the program as an AWS Batch job, its log read from CloudWatch Logs."""

import re
import time
from collections import deque
from pathlib import PurePosixPath
from urllib.parse import urlparse

import dagster as dg
from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from genolake_assets.resources.compression.runner import LOG_TAIL_LINES, CompressionRunner, RunnerOutcome
from genolake_assets.resources.lake.s3_store import aws_client

INTERRUPTS = (KeyboardInterrupt, dg.DagsterExecutionInterruptedError)
_BATCH_NAME_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_LOG_PAGES_PER_POLL = 100

# Module-level so tests can drive the clock.
_sleep = time.sleep
_monotonic = time.monotonic


def batch_job_name(work_order: dict) -> str:
    """``bam-compress-<input file name>``, within Batch's job-name alphabet and length."""
    name = PurePosixPath(urlparse(work_order.get("input_uri") or "").path).name or "input"
    return ("bam-compress-" + _BATCH_NAME_INVALID.sub("_", name))[:128]


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
