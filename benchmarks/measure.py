"""Run one benchmark child process and record its wall time and peak RSS."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


@dataclass(frozen=True)
class ChildRun:
    wall_s: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str
    tree_peak_rss_mib: float | None = None
    """With ``sample_tree``: the largest sum of RSS over the child's whole process tree, sampled every 0.2 s."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure_reason(self) -> str:
        last_lines = [line for line in self.stderr.strip().splitlines() if line.strip()][-1:]
        return f"exit {self.returncode}: {last_lines[0] if last_lines else 'no stderr'}"


def peak_rss_method() -> str:
    if GNU_TIME:
        return f"{GNU_TIME} -f %M (wait4 ru_maxrss of the child, taken by a small launcher)"
    return "os.wait4 ru_maxrss (includes this script's own peak RSS as a floor: no /usr/bin/time)"


def tree_rss_bytes(root: int) -> int:
    """The summed RSS of ``root`` and its descendants now (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, pending, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while pending:
        pid = pending.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
        pending += children.get(pid, [])
    return total


class _TreeSampler(threading.Thread):
    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.done = root, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak = max(self.peak, tree_rss_bytes(self.root))


def run_child(argv: list[str], env: dict[str, str] | None = None, sample_tree: bool = False) -> ChildRun:
    """Run argv to completion; report wall time and ru_maxrss of the child.

    ru_maxrss is the peak RSS of the largest single process in the child's tree (the
    child or any descendant it waited for), not a sum over processes alive together.
    On Linux a child's ru_maxrss also counts the memory of the process that forked it,
    so the child is launched through GNU time, whose footprint is ~1 MiB, rather than
    directly from this Python process. Output goes to temp files, not pipes, so that
    nothing but wait4 reaps the child.
    """
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "maxrss_kib"
        launcher = [GNU_TIME, "-f", "%M", "-o", str(rss_file)] if GNU_TIME else []
        with open(Path(scratch) / "out", "w+b") as out, open(Path(scratch) / "err", "w+b") as err:
            start = time.perf_counter()
            child = subprocess.Popen(launcher + argv, stdout=out, stderr=err, env=env)
            sampler = _TreeSampler(child.pid) if sample_tree else None
            if sampler:
                sampler.start()
            _pid, status, usage = os.wait4(child.pid, 0)
            if sampler:
                sampler.done.set()
                sampler.join()
            wall_s = time.perf_counter() - start
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        maxrss_kib = int(rss_file.read_text().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return ChildRun(wall_s, maxrss_kib / 1024, child.returncode, stdout, stderr,
                    sampler.peak / 2**20 if sampler else None)
