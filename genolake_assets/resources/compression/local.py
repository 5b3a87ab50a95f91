"""The local profile's compression runner: the program as a subprocess in its own process group."""

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

from genolake_assets.resources.compression.runner import (
    ENTRYPOINT_MODULE,
    LOG_TAIL_LINES,
    CompressionRunner,
    RunnerOutcome,
)
from genolake_assets.resources.processes import default_stop_signals, kill_process_group

# Module-level so tests can drive the clock.
_monotonic = time.monotonic


class LocalCompressionRunner(CompressionRunner):
    """The program as a subprocess of this Python, in its own process group."""

    python: str = sys.executable
    timeout_seconds: int = 3600

    def run(self, work_order, work_order_uri, read_result, log) -> RunnerOutcome:
        command = [self.python, "-m", ENTRYPOINT_MODULE, "--work-order", work_order_uri]
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        with tempfile.TemporaryDirectory(prefix="genolake-compress-") as scratch:
            # Only the lake's reference may be used: never let htslib fetch one from the network.
            refs = os.path.join(scratch, "ref-cache", "%2s", "%2s", "%s")
            env = {**os.environ, "REF_PATH": refs, "REF_CACHE": refs, "PYTHONUNBUFFERED": "1"}
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # noqa: S603 - argv list (this Python, a fixed module, one URI), no shell
                                       errors="replace", env=env, cwd=scratch, start_new_session=True,
                                       preexec_fn=default_stop_signals)
            job_id = f"local-{process.pid}"
            try:
                timed_out = self._follow(process, tail, log)
            except BaseException:
                kill_process_group(process)
                raise
        if timed_out:
            return RunnerOutcome(job_id, None, "FAILED", None, list(tail),
                                 f"{job_id} timed out after {self.timeout_seconds} s; process group killed")
        code = process.returncode
        result = read_result(work_order["result_uri"])
        if code == 0:
            return RunnerOutcome(job_id, 0, "SUCCEEDED", result, list(tail))
        if code < 0:
            signame = {s.value: s.name for s in signal.Signals}.get(-code, f"signal {-code}")
            status = "FAILED" if signame == "SIGKILL" else "CANCELLED"
            return RunnerOutcome(job_id, None, status, result, list(tail), f"{job_id} killed by {signame}")
        return RunnerOutcome(job_id, code, "FAILED", result, list(tail), f"{job_id} exited with status {code}")

    def _follow(self, process: subprocess.Popen, tail: deque, log) -> bool:
        """Pass the output on until the process ends; True when it ran out of time (and was killed)."""
        lines: queue.Queue[str | None] = queue.Queue()

        def pump():
            with process.stdout:
                for line in process.stdout:
                    lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True, name="compress-log").start()
        deadline = _monotonic() + self.timeout_seconds
        while True:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                kill_process_group(process)
                return True
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if process.poll() is not None:
                    kill_process_group(process)  # exited, but a leftover child still holds the output open
                continue
            if line is None:
                break
            tail.append(line)
            log(line)
        try:
            process.wait(timeout=max(deadline - _monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            kill_process_group(process)
            return True
        return False
