"""Start and stop `dagster dev` (webserver + daemon) so that it can always be stopped.

A `dagster dev` started in the background from a non-interactive shell inherits an ignored SIGINT
and then cannot be shut down gracefully (LIBRARY-NOTES). Here it runs in its own process group with
SIGINT restored, is waited for until it serves, and is stopped with SIGINT, then SIGTERM, then
SIGKILL for anything left in its group. Used by the browser test and by `make ui`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DAGSTER_YAML = ("telemetry:\n  enabled: false\n"
                # granularity run: a run waits in the queue (no process) until every pool it needs is free.
                # Under op granularity a started run waits for a slot inside its worker, in executor loops
                # that never sleep (a core at 100% for as long as the pool is held).
                "concurrency:\n  pools:\n    default_limit: 1\n    granularity: run\n"
                # A run marked failed (by dead_run_sensor, or cancelled) gives its pool slots back within a minute.
                "run_monitoring:\n  enabled: true\n  free_slots_after_run_end_seconds: 60\n")
WORKSPACE_YAML = ("load_from:\n  - python_module:\n      module_name: genolake_assets.definitions\n"
                  "      location_name: genolake\n")


def _restore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DagsterDev:
    """``dagster dev`` for the genolake code location on 127.0.0.1, against the lake in ``home``."""

    def __init__(self, home: Path, port: int, *, log_path: Path | None = None, extra_env: dict | None = None):
        self.home = Path(home).resolve()
        self.port = port
        self.dagster_home = self.home / "dagster_home"
        self.log_path = log_path or self.home / "dagster-dev.log"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> DagsterDev:
        if self._serves():
            raise RuntimeError(f"something already serves {self.url}: stop it or pick another port")
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        settings = self.dagster_home / "dagster.yaml"
        if not settings.exists():
            settings.write_text(DAGSTER_YAML)
        env = {**os.environ, "GENOLAKE_PROFILE": os.environ.get("GENOLAKE_PROFILE", "local"),
               "GENOLAKE_HOME": str(self.home), "DAGSTER_HOME": str(self.dagster_home), **self.extra_env}
        workspace = self.dagster_home / "workspace.yaml"
        workspace.write_text(WORKSPACE_YAML)  # the code location is "genolake", as in the repo's workspace.yaml
        command = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(self.port),
                   "-w", str(workspace)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,  # noqa: S603 - fixed argv (this Python's dagster dev), no shell
                                        cwd=self.home,
                                        start_new_session=True, preexec_fn=_restore_sigint)
        self._log = log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.process.returncode}; see {self.log_path}")
            if self._serves():
                return self
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"dagster dev did not serve {self.url} within {timeout:.0f} s; see {self.log_path}")

    def _serves(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:  # noqa: S310 - a http://127.0.0.1 URL built here
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, grace: float = 30.0) -> None:
        if self.process is None:
            return
        group = self.process.pid
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; its children (webserver, daemon, code server, runs) may not be.
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
        self._log.close()
        self.process = None

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class StopRequested(Exception):
    """SIGTERM or SIGHUP reached the launcher: stop the server group as Ctrl-C does."""


def _request_stop(signum, _frame) -> None:
    raise StopRequested(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run dagster dev on 127.0.0.1 for a genolake home until Ctrl-C, "
                                                 "SIGTERM or SIGHUP, then stop its whole process group.")
    parser.add_argument("--home", default=".genolake")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    server = DagsterDev(Path(args.home), args.port, log_path=None)
    # systemd, `docker stop` and CI runners send SIGTERM; a closed terminal sends SIGHUP. Left to their
    # default, the launcher would exit alone and orphan dagster dev, its webserver, daemon and code server.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _request_stop)
    try:
        server.start()
        print(f"Dagster UI: {server.url} (log: {server.log_path}); Ctrl-C to stop", flush=True)
        while server.process and server.process.poll() is None:
            time.sleep(1)
    except (KeyboardInterrupt, StopRequested):
        pass
    finally:
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(stop_signal, signal.SIG_IGN)  # a second signal must not cut the stop short
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
