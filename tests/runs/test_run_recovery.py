"""Issue 22: a run killed while it holds a pool slot is found, marked failed, and its slot freed.

Real runs in child processes against one instance on disk (pools limited to 1, as `genolake demo` and
`make ui` configure them), killed with SIGKILL as the out-of-memory killer would.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from genolake_assets.run_recovery import fail_dead_runs, runs_are_local_processes

POOL = "cohort_writer"
CHILD = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import dagster as dg

    started, seconds = Path(sys.argv[1]), float(sys.argv[2])
    pool = sys.argv[3] if len(sys.argv) > 3 else "{pool}"

    @dg.asset(pool=pool)
    def cohort_like() -> None:
        started.write_text("holding the slot")
        time.sleep(seconds)

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([cohort_like], instance=instance)
        sys.exit(0 if result.success else 1)
''').format(pool=POOL)


@pytest.fixture
def dagster_home(pooled_dagster_home, tmp_path):
    (tmp_path / "child.py").write_text(CHILD)
    return pooled_dagster_home


def start_run(tmp_path: Path, name: str, seconds: float, pool: str = POOL) -> tuple[subprocess.Popen, Path]:
    started = tmp_path / f"{name}.started"
    child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(started), str(seconds), pool],
                             env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not started.exists():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the run never started its step"
        time.sleep(0.2)
    return child, started


def claimed_by(instance: dg.DagsterInstance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def test_a_killed_run_is_failed_and_its_slot_freed_so_the_next_run_completes(dagster_home, tmp_path):
    child, _ = start_run(tmp_path, "killed", seconds=600)
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        assert claimed_by(instance) == {run.run_id}
        assert runs_are_local_processes(instance)

        child.send_signal(signal.SIGKILL)
        child.wait()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # what Dagster leaves

        dead = fail_dead_runs(instance)

        assert [d.run_id for d in dead] == [run.run_id] and dead[0].freed_pools == (POOL,)
        assert child.pid in dead[0].pids and "marked failed" in dead[0].describe()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert claimed_by(instance) == set()
        failure = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
        assert "killed" in failure.event_log_entry.dagster_event.message

    rerun = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "rerun.started"), "0"],
                           env=os.environ.copy(), capture_output=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]


def test_a_live_run_and_finished_runs_are_left_alone(dagster_home, tmp_path):
    done = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "done.started"), "0"],
                          env=os.environ.copy(), capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    child, _ = start_run(tmp_path, "live", seconds=600)
    try:
        with dg.DagsterInstance.get() as instance:
            live = next(r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED)

            assert fail_dead_runs(instance) == []

            assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
            assert claimed_by(instance) == {live.run_id}
    finally:
        child.kill()
        child.wait()


def test_the_sensor_frees_a_killed_runs_slot_and_scratch_in_a_deployment(dagster_home, tmp_path, lake_home):
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.sensors.runs import dead_run_sensor

    lake = build_resources()["lake"]
    dead_scratch = lake.scratch / "convert-999999999-abc"  # no such pid
    own_scratch = lake.scratch / f"convert-{os.getpid()}-def"
    for folder in (dead_scratch, own_scratch):
        (folder / "variants").mkdir(parents=True)
        (folder / "variants" / "part-00000.parquet").write_bytes(b"left behind")
    lake_dir = lake.local_root
    dead_temporary = [lake_dir / "registry" / "samples" / ".tmp-999999999-x1",  # a killed atomic write
                      lake_dir / "_staging" / "999999999-abc" / "part-00000.parquet",  # a killed genolake convert
                      lake.scratch / ".tmp-999999999-samples-x.parquet"]  # a killed samples-table write
    live_temporary = [lake_dir / "registry" / "samples" / f".tmp-{os.getpid()}-x2",
                      lake_dir / "_staging" / f"{os.getpid()}-def" / "part-00000.parquet"]
    for path in dead_temporary + live_temporary:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")

    child, _ = start_run(tmp_path, "killed", seconds=600, pool="genolake_conversion")
    child.send_signal(signal.SIGKILL)
    child.wait()
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        (lake.scratch / "cohort" / run.run_id).mkdir(parents=True)  # the killed cohort update's work folder
        (lake.scratch / "reports" / run.run_id).mkdir(parents=True)  # and its report's

        result = dead_run_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))

        assert run.run_id[:8] in result.skip_message and "marked failed" in result.skip_message
        assert "removed 6 scratch and temporary file(s) that killed runs left" in result.skip_message
        assert not dead_scratch.exists() and not (lake.scratch / "cohort" / run.run_id).exists()
        assert not (lake.scratch / "reports" / run.run_id).exists()
        assert not any(path.exists() for path in dead_temporary)
        assert not (lake_dir / "_staging" / "999999999-abc").exists()
        assert own_scratch.exists() and all(path.exists() for path in live_temporary)  # a live process's
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert claimed_by(instance) == set()
        assert dead_run_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake})
                               ).skip_message == "no dead runs"


def test_a_killed_cohort_writer_is_followed_by_a_cohort_run_that_finishes_its_update(dagster_home, tmp_path,
                                                                                     lake_home):
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.sensors.runs import dead_run_sensor

    lake = build_resources()["lake"]
    child, _ = start_run(tmp_path, "killed", seconds=600)  # a step in the cohort_writer pool
    child.send_signal(signal.SIGKILL)
    child.wait()
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()

        result = dead_run_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))

        [request] = result.run_requests
        assert request.job_name == "refresh_cohort" and request.tags["genolake/recovers_run"] == run.run_id
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert claimed_by(instance) == set()


def holding_run(demo: subprocess.Popen, dagster_home: Path, deadline: float) -> str | None:
    """The id of the first run seen holding a pool slot, polled every few milliseconds.

    The instance is opened once, as soon as the demo has created its storage: opening it on every poll
    took longer than a small sample's conversion holds its slot, so the claim could be missed entirely.
    """
    instance = None
    try:
        while demo.poll() is None and time.monotonic() < deadline:
            if instance is None:
                instance = open_when_ready(dagster_home)
            else:
                storage = instance.event_log_storage
                claims = [slot.run_id for pool in storage.get_concurrency_keys()
                          for slot in storage.get_concurrency_info(pool).claimed_slots]
                if claims:
                    return claims[0]
            time.sleep(0.005)
        return None
    finally:
        if instance is not None:
            instance.dispose()


def open_when_ready(dagster_home: Path) -> dg.DagsterInstance | None:
    """The demo's instance once the demo has created its storage and started a run, else None.

    Opening it earlier races the demo's own creation of the SQLite storage: both would stamp the schema
    version, and the next demo would then refuse the database ("more than one head present")."""
    runs = dagster_home / "history" / "runs.db"
    if not runs.exists():
        return None
    try:
        with sqlite3.connect(f"file:{runs}?mode=ro", uri=True) as connection:
            if not connection.execute("SELECT count(*) FROM runs").fetchone()[0]:
                return None
    except sqlite3.Error:  # the demo is still creating the tables
        return None
    try:
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        instance.event_log_storage.get_concurrency_keys()
        return instance
    except Exception:  # noqa: BLE001 - the demo is still creating its event log storage; look again
        return None


@pytest.mark.slow
def test_a_demo_killed_while_a_run_holds_a_slot_recovers_on_the_next_demo(tmp_path):
    """The case of the issue: `genolake demo` SIGKILLed mid-run, then run again, goes through unaided."""
    data = tmp_path / "vcfs"
    data.mkdir()
    gvcfs = Path(__file__).resolve().parents[1] / "data" / "vcf"
    for name in ("HG00187", "HG00190", "HG01377", "NA12249", "NA20317"):
        (data / f"{name}.vcf.gz").write_bytes((gvcfs / f"{name}.hg38.g.vcf.gz").read_bytes())
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENOLAKE_", "DAGSTER_"))}
    command = [sys.executable, "-m", "genolake_assets.cli", "demo", "--home", str(home), "--data", str(data)]
    demo = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    holder = holding_run(demo, home / "dagster_home", deadline=time.monotonic() + 300)
    if demo.poll() is None:
        os.killpg(demo.pid, signal.SIGKILL)
    demo.wait()
    assert holder, "the demo ended before a run held a pool slot"

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)

    assert again.returncode == 0, again.stderr[-3000:]
    assert f"recovered: run {holder[:8]}" in again.stdout
    assert "samples:           5 (5 converted, 0 quarantined)" in again.stdout

    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)  # the BAMs land again

    assert third.returncode == 0, third.stderr[-3000:]
    lake = home / "lake"
    versions = {bam.name: sorted(p.name for p in bam.iterdir()) for bam in (lake / "raw" / "bam").iterdir()}
    crams = {bam.name: sorted(p.name for p in bam.iterdir()) for bam in (lake / "alignments" / "cram").iterdir()}
    assert versions and all(len(v) == 1 for v in versions.values()), versions  # recognised, not copied again
    assert crams == versions


WAITER = textwrap.dedent('''
    import sys
    import dagster as dg
    from genolake_assets.run_recovery import wait_for_free_pools

    with dg.DagsterInstance.get() as instance:
        waited = wait_for_free_pools(instance, {"POOL"}, lambda line: print(line, flush=True), poll_seconds=0.5)
        print(f"free after {waited:.1f} s", flush=True)
''').replace("POOL", POOL)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_demo_waiting_for_a_live_runs_slot_sleeps_says_who_holds_it_and_stops_on_sigterm(dagster_home, tmp_path):
    holder, _ = start_run(tmp_path, "holder", seconds=600)
    (tmp_path / "waiter.py").write_text(WAITER)
    try:
        waiter = subprocess.Popen([sys.executable, str(tmp_path / "waiter.py")], env=os.environ.copy(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = waiter.stdout.readline()
        with dg.DagsterInstance.get() as instance:
            [held] = [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]
        assert f"waiting for pool {POOL}: held by run {held[:8]}" in first
        before = cpu_seconds(waiter.pid)
        time.sleep(3)
        assert cpu_seconds(waiter.pid) - before < 1.0  # asleep between looks, not spinning
        waiter.send_signal(signal.SIGTERM)
        assert waiter.wait(timeout=10) == -signal.SIGTERM
    finally:
        holder.kill()
        holder.wait()


def test_a_demo_goes_on_once_the_slot_holder_finishes(dagster_home, tmp_path):
    holder, _ = start_run(tmp_path, "holder", seconds=12)  # longer than the waiter takes to start
    (tmp_path / "waiter.py").write_text(WAITER)
    waited = subprocess.run([sys.executable, str(tmp_path / "waiter.py")], env=os.environ.copy(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert holder.wait(timeout=60) == 0
    assert waited.returncode == 0, waited.stderr[-2000:]
    assert f"waiting for pool {POOL}: held by run" in waited.stdout and "free after" in waited.stdout


def dead_run_of(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str]) -> str:
    """A run recorded as started by a worker that has since died (its pid reported, then gone)."""
    from dagster._core.events import EngineEventData

    worker = subprocess.Popen([sys.executable, "-c", "pass"])
    worker.wait()
    run = instance.add_run(dg.DagsterRun(job_name=job_name, tags=tags, status=dg.DagsterRunStatus.STARTED))
    instance.report_engine_event("worker started", run, EngineEventData(metadata={"pid": str(worker.pid)}))
    return run.run_id


def test_a_killed_partition_run_is_requested_again_once_and_a_killed_recovery_is_not(dagster_home, lake_home):
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.sensors.runs import RECOVERS_RUN_TAG, dead_run_sensor

    lake = build_resources()["lake"]
    with dg.DagsterInstance.get() as instance:
        killed = dead_run_of(instance, "compress_alignments", {"dagster/partition": "ce1000"})
        killed_range = dead_run_of(instance, "ingest_samples", {"dagster/asset_partition_range_start": "A",
                                                                "dagster/asset_partition_range_end": "B"})

        result = dead_run_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))

        [request] = result.run_requests
        assert (request.job_name, request.partition_key) == ("compress_alignments", "ce1000")
        assert request.tags[RECOVERS_RUN_TAG] == killed and request.run_key == f"recovers-{killed}"
        assert {instance.get_run_by_id(r).status for r in (killed, killed_range)} == {dg.DagsterRunStatus.FAILURE}

        dead_run_of(instance, "compress_alignments", {"dagster/partition": "ce1000", RECOVERS_RUN_TAG: killed})
        again = dead_run_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))
        assert "was itself a recovery run: not requested again" in again.skip_message
