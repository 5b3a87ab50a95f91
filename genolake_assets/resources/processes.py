"""Child programs run by resources: stopped as a whole, with everything they started."""

from __future__ import annotations

import os
import signal
import subprocess


def kill_process_group(process: subprocess.Popen, grace_seconds: float = 5.0) -> None:
    """SIGTERM the program's process group (started with ``start_new_session=True``), then SIGKILL what is
    left: a JVM or a worker a program started goes too."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_seconds if sig == signal.SIGTERM else None)
        except subprocess.TimeoutExpired:
            pass
