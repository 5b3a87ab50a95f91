"""Moving sequencer output into the lake's landing zone: AWS DataSync, or a local copier.

Both take DataSync include patterns (``lib/transfer_rules``: dated run folders, ad-hoc manifests) and
report executions with DataSync's statuses, so schedules and sensors treat the two profiles alike.
``DataSyncTransfer`` starts executions of an existing task (source: the sequencers' NFS/SMB share,
destination: the landing prefix) and reads them back. ``LocalTransfer`` copies from a folder that
plays the share into the local lake, synchronously inside ``start()``, with DataSync's rules:
only files matching the includes, only changed files, each copy verified (sha256) after transfer.
"""

import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from abc import abstractmethod
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from genolake_assets.lib.transfers.rules import include_filter, matches
from genolake_assets.resources.lake.s3_store import aws_client

TERMINAL_STATUSES = frozenset({"SUCCESS", "ERROR"})
REASON_TAG = "genolake:reason"
_LOCAL_ID = re.compile(r"exec-local-\d{8}T\d{12}Z-\d+")
_TAG_VALUE_INVALID = re.compile(r"[^a-zA-Z0-9\s+=._:@/-]")  # DataSync's tag-value alphabet
_CHUNK = 1 << 20


@dataclass
class TransferExecution:
    execution_id: str  # DataSync: the task execution ARN
    status: str  # DataSync's: QUEUED | LAUNCHING | PREPARING | TRANSFERRING | VERIFYING | SUCCESS | ERROR
    includes: list[str]
    started_at: float | None  # epoch seconds
    finished_at: float | None
    bytes_transferred: int = 0
    files_transferred: int = 0
    files_verified: int = 0
    error: str | None = None
    reason: str = ""
    files: list[str] = field(default_factory=list, repr=False)  # local copier: share paths copied

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def active(self) -> bool:
        """Queued or running (QUEUED, LAUNCHING, PREPARING, TRANSFERRING, VERIFYING); so are CANCELLING and
        moto's INITIALIZING: whatever has not ended still holds the task."""
        return not self.terminal

    @property
    def duration_seconds(self) -> float | None:
        """Start to finish; for an execution still active, the time it has run so far."""
        if self.started_at is None:
            return None
        return (self.finished_at if self.finished_at is not None else time.time()) - self.started_at

    @classmethod
    def from_dict(cls, data: dict) -> "TransferExecution":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class TransferResource(dg.ConfigurableResource):
    """Starts and watches transfers from the sequencers' storage to the landing zone."""

    @abstractmethod
    def start(self, includes: list[str], reason: str) -> TransferExecution:
        """Start an execution limited to the include patterns (never empty: that would copy the whole share)."""

    @abstractmethod
    def active(self) -> list[TransferExecution]:
        """Executions queued or running, newest first."""

    @abstractmethod
    def describe(self, execution_id: str) -> TransferExecution:
        """The execution's current state."""

    @abstractmethod
    def recent(self, limit: int = 50) -> list[TransferExecution]:
        """The last ``limit`` executions, newest first."""


class LocalTransfer(TransferResource):
    """Copies from a local folder playing the sequencer share into ``<lake_root>/<destination_prefix>``.

    ``start()`` runs the whole copy before returning a terminal execution, so ``active()`` is always
    empty. Executions in other processes are serialised by a lock file in ``state_dir`` (a second
    ``start()`` waits for the first). The state (``copied.json``: size and mtime of each file copied,
    one ``<execution id>.json`` per execution) survives restarts.
    """

    source_root: str
    lake_root: str
    destination_prefix: str = "landing/sequencers/"
    state_dir: str
    quiet_seconds: int = 60

    def start(self, includes: list[str], reason: str) -> TransferExecution:
        includes = list(includes)
        include_filter(includes)  # DataSync's checks: none would mean the whole share; no "|"; the length limit
        state = Path(self.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        with open(state / ".lock", "a") as lock:  # one execution at a time, across processes too
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            execution = TransferExecution(self._new_id(state), "TRANSFERRING", includes, time.time(), None,
                                          reason=reason)
            copied = json.loads((state / "copied.json").read_text()) if (state / "copied.json").exists() else {}
            try:
                self._copy_all(execution, copied)
            except BaseException as error:
                execution.error = execution.error or f"copy stopped: {error!r}"
                raise
            finally:  # whatever was copied is recorded, even when an unexpected error ends the execution
                execution.finished_at = time.time()
                execution.status = "ERROR" if execution.error else "SUCCESS"
                _write_json(state / "copied.json", copied)
                _write_json(state / f"{execution.execution_id}.json", asdict(execution))
        return execution

    def _copy_all(self, execution: TransferExecution, copied: dict) -> None:
        root = Path(self.source_root)
        if not root.is_dir():
            execution.error = f"source root {root} is not a directory"
            return
        destination_root = Path(self.lake_root) / self.destination_prefix
        now = time.time()
        for folder, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                source = Path(folder) / name
                relative = "/" + source.relative_to(root).as_posix()
                if not matches(relative, execution.includes):
                    continue
                try:
                    stat = source.stat()
                except FileNotFoundError:  # deleted since the walk listed it
                    continue
                if now - stat.st_mtime < self.quiet_seconds:
                    continue  # still being written: a later execution takes it
                target = destination_root / relative.lstrip("/")
                known = copied.get(relative)
                if (known and known["size"] == stat.st_size and known["mtime_ns"] == stat.st_mtime_ns
                        and target.is_file() and target.stat().st_size == stat.st_size):
                    continue  # unchanged since the last copy
                try:
                    digest = self._copy_verified(source, target, stat)
                except (OSError, ValueError) as error:
                    execution.error = execution.error or f"{relative}: {error}"
                    continue
                if digest is None:
                    continue  # changed while being copied: a later execution takes it
                copied[relative] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest,
                                    "execution_id": execution.execution_id}
                execution.files.append(relative)
                execution.bytes_transferred += stat.st_size
                execution.files_transferred += 1
                execution.files_verified += 1

    def _copy_verified(self, source: Path, target: Path, stat: os.stat_result) -> str | None:
        """Copy to a hidden temp file beside the target, verify its sha256, publish it with os.replace.
        The sha256, or None when the source changed during the copy (nothing published)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        os.close(fd)
        try:
            source_digest = _copy_file(source, Path(tmp))
            with open(tmp, "rb") as copy:
                copy_digest = hashlib.file_digest(copy, "sha256").hexdigest()
            if copy_digest != source_digest:
                raise ValueError(f"sha256 after copy {copy_digest} differs from the source's {source_digest}; "
                                 "copy removed")
            after = source.stat()
            if (after.st_size, after.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
                return None
            os.utime(tmp, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # like DataSync's Mtime=PRESERVE
            os.replace(tmp, target)
            return source_digest
        finally:
            Path(tmp).unlink(missing_ok=True)

    @staticmethod
    def _new_id(state: Path) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        n = next(n for n in range(1, 1 << 30) if not (state / f"exec-local-{stamp}-{n}.json").exists())
        return f"exec-local-{stamp}-{n}"

    def active(self) -> list[TransferExecution]:
        return []  # start() returns only when its execution has ended

    def describe(self, execution_id: str) -> TransferExecution:
        path = Path(self.state_dir) / f"{execution_id}.json"
        if not _LOCAL_ID.fullmatch(execution_id) or not path.is_file():
            raise LookupError(f"no local transfer execution {execution_id!r} in {self.state_dir}")
        return TransferExecution.from_dict(json.loads(path.read_text()))

    def recent(self, limit: int = 50) -> list[TransferExecution]:
        paths = [p for p in Path(self.state_dir).glob("exec-local-*.json") if _LOCAL_ID.fullmatch(p.stem)]
        executions = [TransferExecution.from_dict(json.loads(p.read_text())) for p in paths]
        executions.sort(key=lambda e: (e.started_at or 0.0, e.execution_id), reverse=True)
        return executions[:limit]


def _copy_file(source: Path, target: Path) -> str:
    """Copy source over target; the sha256 of the bytes read from the source."""
    digest = hashlib.sha256()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _write_json(path: Path, data) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
