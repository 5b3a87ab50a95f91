"""Driving a run that is to be killed: wait until it reached the moment of the kill."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_for_marker(child: subprocess.Popen, marker: Path, seconds: float = 300) -> None:
    """Wait until ``child`` wrote ``marker`` (it is then held at the moment to kill it); fail with its stderr if
    it ended first."""
    deadline = time.monotonic() + seconds
    while not marker.exists():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, f"{marker.name} never appeared"
        time.sleep(0.2)
