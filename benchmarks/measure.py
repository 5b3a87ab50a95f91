"""Run one benchmark child process and record its wall time and peak RSS."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ChildRun:
    wall_s: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure_reason(self) -> str:
        last_lines = [line for line in self.stderr.strip().splitlines() if line.strip()][-1:]
        return f"exit {self.returncode}: {last_lines[0] if last_lines else 'no stderr'}"


def run_child(argv: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run argv to completion and report ru_maxrss from os.wait4.

    ru_maxrss of a reaped child is the peak RSS of the largest single process in its
    tree (the child itself or any descendant it waited for), not a sum over processes
    alive at the same time. Output goes to temp files rather than pipes because
    Popen.communicate() would reap the child and lose its rusage.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(child.pid, 0)
        wall_s = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            wall_s=wall_s,
            peak_rss_mib=usage.ru_maxrss / 1024,  # Linux reports KiB
            returncode=child.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )
