"""Moving sequencer output into the lake's landing zone: the interface of AWS DataSync and a local copier.

:class:`TransferResource` is the capability and :class:`TransferExecution` what it reports. Both systems
take DataSync include patterns (``lib/transfers/rules.py``: dated run folders, ad-hoc manifests) and
report executions with DataSync's statuses, so schedules and sensors treat the two profiles alike.
The aws profile's ``DataSyncTransfer`` (``datasync.py``) starts executions of an existing task (source:
the sequencers' NFS/SMB share, destination: the landing prefix) and reads them back. The local profile's
``LocalTransfer`` (``local.py``) copies from a folder that plays the share into the local lake,
synchronously inside ``start()``, with DataSync's rules: only files matching the includes, only changed
files, each copy verified (sha256) after transfer.
"""

import time
from abc import abstractmethod
from dataclasses import dataclass, field, fields

import dagster as dg

TERMINAL_STATUSES = frozenset({"SUCCESS", "ERROR"})


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
