"""What a killed process leaves in a local lake, and how to tell whether its writer is still alive.

Every temporary file or folder a writer makes inside the lake carries the writer's pid in its name
(``.tmp-<pid>-…`` beside the file it will replace, ``_staging/<pid>-…`` for a conversion), so the next
run can remove exactly the leftovers of processes that are gone and never a live writer's. A pid reused
by a later process is told apart by its start time (Linux /proc).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

TEMP_FILE_PREFIX = ".tmp-"
STAGING_DIR = "_staging"


def temp_file_prefix() -> str:
    """The prefix of this process's temporary files: ``.tmp-<pid>-``."""
    return f"{TEMP_FILE_PREFIX}{os.getpid()}-"


def staging_name(unique: str) -> str:
    """A staging folder's name for this process: ``<pid>-<unique>``."""
    return f"{os.getpid()}-{unique}"


def writer_pid(name: str) -> int | None:
    """The pid a leftover's name carries (``.tmp-<pid>-…`` or ``<pid>-…``), or None for older names."""
    rest = name.removeprefix(TEMP_FILE_PREFIX)
    pid = rest.split("-", 1)[0]
    return int(pid) if pid.isdigit() and "-" in rest else None


def process_alive(pid: int, since: float) -> bool:
    """Whether ``pid`` is a live process that was already running at ``since`` (seconds since the epoch)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    started = process_start_time(pid)
    # A process that started after the leftover was made is a later process that reuses the number.
    return started is None or started <= since + 1.0


def process_start_time(pid: int) -> float | None:
    """Seconds since the epoch at which ``pid`` started (Linux /proc), or None where that cannot be read."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - one short read
        with open("/proc/stat") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    ticks = int(stat[stat.rindex(")") + 2:].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def is_dead_writers(path: Path, stale_after: float | None = None) -> bool:
    """Whether ``path`` is a leftover whose writer is gone: its pid is dead (or reused), or, for a name
    without a pid, it is older than ``stale_after`` seconds (None: never judged)."""
    try:
        modified = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    pid = writer_pid(path.name)
    if pid is not None:
        return not process_alive(pid, modified)
    return stale_after is not None and time.time() - modified > stale_after


def remove_dead_temporary_files(root: Path, stale_after: float | None = None) -> list[Path]:
    """Remove every ``.tmp-*`` file under ``root`` whose writer is gone; links are never followed."""
    removed = []
    if not root.is_dir():
        return removed
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if name.startswith(TEMP_FILE_PREFIX) and not path.is_symlink() and is_dead_writers(path, stale_after):
                path.unlink(missing_ok=True)
                removed.append(path)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
    return removed


def remove_dead_staging(staging_root: Path, stale_after: float | None = None) -> list[Path]:
    """Remove the folders under ``staging_root`` whose writer is gone (never published, so safe to drop)."""
    removed = []
    if not staging_root.is_dir():
        return removed
    for folder in staging_root.iterdir():
        if folder.is_dir() and not folder.is_symlink() and is_dead_writers(folder, stale_after):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
