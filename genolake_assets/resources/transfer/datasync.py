"""The aws profile's transfer: executions of an existing AWS DataSync task, started and read back."""

import re
import time

from pydantic import PrivateAttr

from genolake_assets.lib.transfers.rules import include_filter
from genolake_assets.resources.lake.s3_store import aws_client
from genolake_assets.resources.transfer.transfer import TERMINAL_STATUSES, TransferExecution, TransferResource

REASON_TAG = "genolake:reason"
_TAG_VALUE_INVALID = re.compile(r"[^a-zA-Z0-9\s+=._:@/-]")  # DataSync's tag-value alphabet


class DataSyncTransfer(TransferResource):
    """Executions of an existing DataSync task (source: the sequencer share; destination: the landing prefix)."""

    task_arn: str
    region: str | None = None
    endpoint_url: str | None = None
    _client: object = PrivateAttr(default=None)
    _reasons: dict = PrivateAttr(default_factory=dict)

    def with_client(self, client) -> "DataSyncTransfer":
        """A copy that uses this boto3 DataSync client (tests: a botocore Stubber) instead of building one."""
        copy = self.model_copy()
        copy._client, copy._reasons = client, {}
        return copy

    def _datasync(self):
        if not self.task_arn:
            raise ValueError("no DataSync task: set task_arn in the transfer config (GENOLAKE_TRANSFER_CONFIG)")
        if self._client is None:
            self._client = aws_client("datasync", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._client

    def start(self, includes: list[str], reason: str) -> TransferExecution:
        includes = list(includes)
        tag = _TAG_VALUE_INVALID.sub("_", reason)[:256].strip()
        response = self._datasync().start_task_execution(
            TaskArn=self.task_arn, Includes=include_filter(includes),
            Tags=[{"Key": REASON_TAG, "Value": tag}] if tag else [])
        arn = response["TaskExecutionArn"]
        self._reasons[arn] = reason
        return TransferExecution(arn, "QUEUED", includes, time.time(), None, reason=reason)

    def describe(self, execution_id: str) -> TransferExecution:
        """The execution as DescribeTaskExecution reports it. ``reason`` (a tag, which that call does
        not return) is known only for executions this resource started."""
        d = self._datasync().describe_task_execution(TaskExecutionArn=execution_id)
        status, result = d["Status"], d.get("Result") or {}
        started = d["StartTime"].timestamp() if d.get("StartTime") else None
        finished = d["EndTime"].timestamp() if d.get("EndTime") else None
        if finished is None and status in TERMINAL_STATUSES and started is not None and "TotalDuration" in result:
            finished = started + result["TotalDuration"] / 1000.0
        detail = ": ".join(str(result[k]) for k in ("ErrorCode", "ErrorDetail") if result.get(k))
        error = (detail or "the execution ended with status ERROR (no error detail)") if status == "ERROR" else None
        includes = [p for f in d.get("Includes") or [] for p in f.get("Value", "").split("|") if p]
        return TransferExecution(
            execution_id, status, includes, started, finished, bytes_transferred=d.get("BytesTransferred", 0),
            files_transferred=d.get("FilesTransferred", 0), files_verified=d.get("FilesVerified", 0),
            error=error, reason=self._reasons.get(execution_id, ""))

    def _listed(self) -> list[dict]:
        pages = self._datasync().get_paginator("list_task_executions").paginate(TaskArn=self.task_arn)
        return [entry for page in pages for entry in page.get("TaskExecutions", [])]

    def active(self) -> list[TransferExecution]:
        listed = [e for e in self._listed() if e.get("Status") not in TERMINAL_STATUSES]
        return _newest_first(self.describe(e["TaskExecutionArn"]) for e in listed)

    def recent(self, limit: int = 50) -> list[TransferExecution]:
        """ListTaskExecutions does not document its order, only that it lists; so the first and the last
        ``limit`` entries are described (the newest are at one end) and sorted by start time."""
        arns = [e["TaskExecutionArn"] for e in self._listed()] if limit > 0 else []
        chosen = dict.fromkeys(arns[:limit] + arns[-limit:])
        return _newest_first(self.describe(arn) for arn in chosen)[:limit]


def _newest_first(executions) -> list[TransferExecution]:
    return sorted(executions, key=lambda e: e.started_at if e.started_at is not None else float("inf"),
                  reverse=True)
