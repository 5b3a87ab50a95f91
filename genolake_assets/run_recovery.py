"""Runs whose process died (SIGKILL, out of memory, a lost machine) are marked failed and their pool slots freed.

A run worker that is killed cannot report its own end: Dagster keeps it STARTED and it keeps the
``genolake_conversion`` / ``cohort_writer`` slots it claimed, so every later run of those steps waits for ever.
Dagster's run monitoring cannot see this with the ``DefaultRunLauncher`` (it does not support run-worker
health checks), so genolake checks itself: every run records the pid of its worker in its event log
(``EngineEventData``'s ``pid``); a run none of whose processes is alive any more is dead. A pid reused by a
later process is told apart by its start time. Used by ``genolake demo`` before it runs anything and by the
``dead_run_sensor`` in deployments whose runs are processes on this machine.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

from genolake_assets.lib.lake.leftovers import (
    STAGING_DIR,
    TEMP_FILE_PREFIX,
    is_dead_writers,
    process_alive,
    remove_dead_staging,
    remove_dead_temporary_files,
)
from genolake_assets.lib.vcf.publish import CONVERT_SCRATCH_PREFIX

UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
STARTING_GRACE_SECONDS = 300.0
"""A run still STARTING with no worker pid after this long never got a worker."""


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    job_name: str
    pids: tuple[int, ...]
    freed_pools: tuple[str, ...]
    pools: tuple[str, ...] = ()
    """Every pool the run had a step in (held or not when it died)."""

    def describe(self) -> str:
        worker = f"its process{'es' if len(self.pids) > 1 else ''} ({', '.join(map(str, self.pids))})" \
            if self.pids else "no process"
        pools = f"; freed its slots in {', '.join(self.freed_pools)}" if self.freed_pools else ""
        return f"run {self.run_id[:8]} of {self.job_name}: {worker} gone, marked failed{pools}"


def runs_are_local_processes(instance: dg.DagsterInstance) -> bool:
    """Whether this instance's runs run as processes on this machine (pids mean something here)."""
    return isinstance(instance.run_launcher, DefaultRunLauncher)


def fail_dead_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[DeadRun]:
    """Mark failed every unfinished run whose processes are all gone, free its pool slots, return them."""
    now = time.time() if now is None else now
    dead = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        pids = _worker_pids(instance, run.run_id)
        if pids and any(process_alive(pid, since) for pid, since in pids.items()):
            continue
        if not pids and not _starting_for_too_long(instance, run, now):
            continue
        pools = tuple(sorted(_pools_held(instance, run.run_id)))
        instance.report_run_failed(run, message=(
            f"genolake: the run's process{'es' if len(pids) > 1 else ''} "
            f"({', '.join(map(str, pids)) or 'never started'}) ended without reporting: killed (SIGKILL, out "
            f"of memory) or the machine stopped. Marked failed so that its pool slots "
            f"({', '.join(pools) or 'none held'}) are freed; re-run it (docs/ui-and-runbook.md)."))
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        used = set(run.run_op_concurrency.all_pools or []) if run.run_op_concurrency else set()
        dead.append(DeadRun(run.run_id, run.job_name, tuple(pids), pools, tuple(sorted(used | set(pools)))))
    return dead


RUN_SCRATCH_FOLDERS = ("cohort", "reports")
"""Scratch folders whose sub-folders are named after the run that writes them."""


def remove_dead_runs_scratch(instance: dg.DagsterInstance, scratch: Path, lake_root: Path | None = None) -> list[Path]:
    """Remove what runs that are no longer alive left behind; a live run's files are never touched.

    ``scratch/cohort/<run_id>/`` and ``scratch/reports/<run_id>/`` belong to a run (removed once it is not
    unfinished); a conversion's ``scratch/convert-<pid>-*/``, the samples table's ``scratch/.tmp-<pid>-*``
    and, in a local lake (``lake_root``), every ``.tmp-<pid>-*`` file beside the file it was to replace
    and ``_staging/<pid>-*/`` to a process (removed once that process is gone)."""
    removed = []
    unfinished = None
    for name in RUN_SCRATCH_FOLDERS:
        folder = scratch / name
        if folder.is_dir():
            if unfinished is None:
                unfinished = {run.run_id for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))}
            removed += [path for path in folder.iterdir() if path.name not in unfinished]
    for path in scratch.glob(f"{CONVERT_SCRATCH_PREFIX}*") if scratch.is_dir() else ():
        pid = path.name[len(CONVERT_SCRATCH_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid), path.stat().st_mtime):
            removed.append(path)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for path in scratch.glob(f"{TEMP_FILE_PREFIX}*") if scratch.is_dir() else ():
        if path.is_file() and not path.is_symlink() and is_dead_writers(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    if lake_root is not None:
        removed += remove_dead_temporary_files(lake_root)
        removed += remove_dead_staging(lake_root / STAGING_DIR)
    return removed


def _worker_pids(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """pid → when the run first reported it, for every process the run's engine events name."""
    pids: dict[int, float] = {}
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {} if event else {}
        value = metadata.get("pid")
        text = getattr(value, "value", value)
        if text is not None and str(text).isdigit():
            pids.setdefault(int(text), record.event_log_entry.timestamp)
    return pids


def _starting_for_too_long(instance: dg.DagsterInstance, run: dg.DagsterRun, now: float) -> bool:
    if run.status != dg.DagsterRunStatus.STARTING:
        return False
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp.timestamp() if record else now
    return now - created > STARTING_GRACE_SECONDS


def _pools_held(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    storage = instance.event_log_storage
    held = set()
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        if any(slot.run_id == run_id for slot in info.claimed_slots) or \
                any(step.run_id == run_id for step in info.pending_steps):
            held.add(pool)
    return held


def job_pools(job_def) -> set[str]:
    """The concurrency pools the steps of ``job_def`` are in."""
    return {pool for node in job_def.graph.node_dict.values() if (pool := getattr(node.definition, "pool", None))}


def pool_holders(instance: dg.DagsterInstance, pools: set[str]) -> dict[str, dg.DagsterRun]:
    """pool → an unfinished run that holds it: a claimed slot (op granularity) or, under run granularity, a
    started run with a step in the pool."""
    holders: dict[str, dg.DagsterRun] = {}
    storage = instance.event_log_storage
    known = set(storage.get_concurrency_keys())
    for pool in sorted(pools & known):
        for slot in storage.get_concurrency_info(pool).claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            if run is not None and run.status in UNFINISHED:
                holders.setdefault(pool, run)
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        used = set(run.run_op_concurrency.all_pools or []) if run.run_op_concurrency else set()
        for pool in sorted(used & pools):
            holders.setdefault(pool, run)
    return holders


def wait_for_free_pools(instance: dg.DagsterInstance, pools: set[str], echo, *, poll_seconds: float = 1.0,
                        say_every_seconds: float = 30.0) -> float:
    """Return once no other unfinished run holds any of ``pools``; seconds waited.

    Dagster's in-process executor waits for a pool slot in a loop that never sleeps (a core at 100%) and
    cannot be stopped with SIGTERM, so ``genolake demo`` waits here first: asleep between looks, stoppable,
    saying which run holds the pool. A holder whose process died is marked failed on the way."""
    started = time.monotonic()
    said_at = None
    previous = _default_sigterm()
    try:
        while True:
            for dead in fail_dead_runs(instance):
                echo(f"recovered: {dead.describe()}")
            holders = pool_holders(instance, pools)
            if not holders:
                return time.monotonic() - started
            if said_at is None or time.monotonic() - said_at >= say_every_seconds:
                said_at = time.monotonic()
                echo("waiting for " + "; ".join(f"pool {pool}: held by run {run.run_id[:8]} of {run.job_name} "
                                               f"({run.status.value})" for pool, run in sorted(holders.items())))
            time.sleep(poll_seconds)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _default_sigterm():
    """Make SIGTERM end this process while it waits; returns the handler to put back (None off the main thread).

    Every ``execute_in_process`` leaves SIGTERM handled like SIGINT (Dagster's ``capture_interrupts`` maps one
    to the other on its way out), and a process started in the background has SIGINT ignored, so after its
    first run SIGTERM would be ignored too."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, signal.SIG_DFL)
