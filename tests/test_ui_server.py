"""`make ui`'s launcher: every way it is told to stop takes dagster dev's whole process group with it."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) for every live process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_to_the_launcher_stops_every_server_process(tmp_path, stop_signal):
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("GENOLAKE_", "DAGSTER_"))}
    launcher = subprocess.Popen([sys.executable, "-m", "genolake_assets.ui_server", "--home", str(tmp_path / "home"),
                                 "--port", str(port)], env={**environment, "GENOLAKE_SENSORS": "stopped"},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not serves(f"http://127.0.0.1:{port}"):
            assert launcher.poll() is None, launcher.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "dagster dev did not serve within 180 s"
            time.sleep(0.5)
        groups = {group for pid, (parent, group) in process_table().items() if parent == launcher.pid}
        assert len(groups) == 1, "the launcher starts dagster dev in a process group of its own"
        server_group = groups.pop()
        server_processes = [pid for pid, (_, group) in process_table().items() if group == server_group]
        assert len(server_processes) >= 3, "dagster dev, its webserver and its daemon at least"

        launcher.send_signal(stop_signal)

        assert launcher.wait(timeout=90) == 0
        left = [pid for pid, (_, group) in process_table().items() if group == server_group]
        assert left == [], f"left running after {stop_signal.name}: {left}"
        assert not serves(f"http://127.0.0.1:{port}")
    finally:
        if launcher.poll() is None:
            launcher.kill()
        launcher.wait()


def test_the_deployment_instance_queues_runs_behind_a_held_pool_and_watches_dead_ones(tmp_path):
    """`make ui`'s dagster.yaml is valid, and sets what the runbook relies on: pools of one, enforced per run
    (a run waits in the queue, not spinning in a worker), and run monitoring."""
    import dagster as dg
    from dagster._core.instance.config import PoolGranularity

    from genolake_assets.ui_server import DAGSTER_YAML

    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.pool_granularity == PoolGranularity.RUN and pools.default_pool_limit == 1
        assert instance.run_monitoring_enabled
