"""The local profile's transfer: a verified copier from a folder playing the sequencer share into the lake."""

import fcntl
import hashlib
import json
import logging
import os
import re
import stat as stat_mode
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from genolake_assets.lib.lake.leftovers import temp_file_prefix
from genolake_assets.lib.transfers.rules import include_filter, matches
from genolake_assets.resources.transfer.transfer import TransferExecution, TransferResource

_LOCAL_ID = re.compile(r"exec-local-\d{8}T\d{12}Z-\d+")
_CHUNK = 1 << 20
_NOT_FOLLOWED = "symbolic link: not followed (only regular files inside the share are copied)"
_log = logging.getLogger(__name__)


class LocalTransfer(TransferResource):
    """Copies from a local folder playing the sequencer share into ``<lake_root>/<destination_prefix>``.

    ``start()`` runs the whole copy before returning a terminal execution, so ``active()`` is always
    empty. Executions in other processes are serialised by a lock file in ``state_dir`` (a second
    ``start()`` waits for the first). The state (``copied.json``: size and mtime of each file copied,
    one ``<execution id>.json`` per execution) survives restarts.

    Only regular files inside the share are copied: a symbolic link (to a file or a folder, inside or
    outside the share) is never followed, nor is a FIFO or device read. Each one an include selects is
    skipped and named in the execution's record (``skipped`` in ``<execution id>.json``) and in the log.
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
            skipped: list[dict] = []
            try:
                self._copy_all(execution, copied, skipped)
            except BaseException as error:
                execution.error = execution.error or f"copy stopped: {error!r}"
                raise
            finally:  # whatever was copied is recorded, even when an unexpected error ends the execution
                execution.finished_at = time.time()
                execution.status = "ERROR" if execution.error else "SUCCESS"
                _write_json(state / "copied.json", copied)
                _write_json(state / f"{execution.execution_id}.json", {**asdict(execution), "skipped": skipped})
        return execution

    def _copy_all(self, execution: TransferExecution, copied: dict, skipped: list[dict]) -> None:
        root = Path(self.source_root)
        if not root.is_dir():
            execution.error = f"source root {root} is not a directory"
            return
        real_root = root.resolve()
        destination_root = Path(self.lake_root) / self.destination_prefix
        now = time.time()

        def skip(relative: str, reason: str) -> None:
            skipped.append({"path": relative, "reason": reason})
            message = f"transfer {execution.execution_id}: skipped {relative!r}: {reason}"
            _log.warning(message)
            _dagster_log(message)

        for folder, dirnames, filenames in os.walk(root):  # followlinks=False: linked folders are not entered
            dirnames.sort()
            here = Path(folder)
            relative_folder = here.relative_to(root)
            if here.resolve() != real_root / relative_folder:  # a folder swapped for a link during the walk
                dirnames.clear()
                skip("/" + relative_folder.as_posix(), _NOT_FOLLOWED)
                continue
            for name in dirnames:
                relative = "/" + (relative_folder / name).as_posix()
                if (here / name).is_symlink() and _selects_below(relative, execution.includes):
                    skip(relative, _NOT_FOLLOWED)
            for name in sorted(filenames):
                source = here / name
                relative = "/" + source.relative_to(root).as_posix()
                if not matches(relative, execution.includes):
                    continue
                try:
                    stat = os.lstat(source)  # the entry itself: a link is not followed
                except FileNotFoundError:  # deleted since the walk listed it
                    continue
                if stat_mode.S_ISLNK(stat.st_mode):
                    skip(relative, _NOT_FOLLOWED)
                    continue
                if not stat_mode.S_ISREG(stat.st_mode):
                    skip(relative, "not a regular file (FIFO, socket or device): not read")
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
        fd, tmp = tempfile.mkstemp(prefix=temp_file_prefix(), dir=target.parent)
        os.close(fd)
        try:
            source_digest = _copy_file(source, Path(tmp))
            with open(tmp, "rb") as copy:
                copy_digest = hashlib.file_digest(copy, "sha256").hexdigest()
            if copy_digest != source_digest:
                raise ValueError(f"sha256 after copy {copy_digest} differs from the source's {source_digest}; "
                                 "copy removed")
            after = os.lstat(source)  # the same regular file, unchanged, still where the walk found it
            if ((after.st_size, after.st_mtime_ns, after.st_ino, after.st_dev, stat_mode.S_IFMT(after.st_mode))
                    != (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev, stat_mode.S_IFMT(stat.st_mode))):
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


def _selects_below(relative: str, includes: list[str]) -> bool:
    """Could the includes take ``relative`` (a folder) or something under it?"""
    below = relative.rstrip("/") + "/"
    return matches(relative, includes) or any(
        below.startswith(p.split("*", 1)[0]) or p.split("*", 1)[0].startswith(below) for p in includes)


def _dagster_log(message: str) -> None:
    """The message in the Dagster run's log too (captured when called inside a run)."""
    try:
        dg.get_dagster_logger().warning(message)
    except Exception:  # noqa: S110 - logging must never stop a transfer
        pass


def _open_regular_file(source: Path):
    """``source`` opened for reading, refusing a symbolic link (O_NOFOLLOW) and anything not a regular file."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat_mode.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{source} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _copy_file(source: Path, target: Path) -> str:
    """Copy source over target; the sha256 of the bytes read from the source (never through a link)."""
    digest = hashlib.sha256()
    with _open_regular_file(source) as reader, open(target, "wb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _write_json(path: Path, data) -> None:
    fd, tmp = tempfile.mkstemp(prefix=temp_file_prefix(), dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
