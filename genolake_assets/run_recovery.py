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

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

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
        if pids and any(_alive(pid, since) for pid, since in pids.items()):
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
        dead.append(DeadRun(run.run_id, run.job_name, tuple(pids), pools))
    return dead


def remove_dead_runs_scratch(instance: dg.DagsterInstance, scratch: Path) -> list[Path]:
    """Remove the scratch folders of runs that are no longer alive; a live run's are never touched.

    ``scratch/cohort/<run_id>/`` belongs to a run (removed once it is not unfinished); a conversion's
    ``scratch/convert-<pid>-*/`` to a process (removed once that process is gone)."""
    removed = []
    cohort = scratch / "cohort"
    if cohort.is_dir():
        unfinished = {run.run_id for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))}
        removed += [path for path in cohort.iterdir() if path.name not in unfinished]
    for path in scratch.glob(f"{CONVERT_SCRATCH_PREFIX}*") if scratch.is_dir() else ():
        pid = path.name[len(CONVERT_SCRATCH_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid), path.stat().st_mtime):
            removed.append(path)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
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


def _alive(pid: int, reported_at: float) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    started = _process_start_time(pid)
    # A process that started after the run named its pid is a later process that reuses the number.
    return started is None or started <= reported_at + 1.0


def _process_start_time(pid: int) -> float | None:
    """Seconds since the epoch at which ``pid`` started (Linux /proc), or None where that cannot be read."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: PTH123, SIM115 - one short read
        with open("/proc/stat") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    ticks = int(stat[stat.rindex(")") + 2:].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


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
