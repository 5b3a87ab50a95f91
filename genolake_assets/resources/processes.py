"""Child programs run by resources: stopped as a whole, with everything they started."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def default_stop_signals() -> None:
    """``preexec_fn`` of a child program: its stop signals back to their defaults, and SIGTERM when its
    parent dies.

    An ignored signal survives exec, and a Dagster worker can hold SIGTERM ignored (Dagster maps SIGTERM onto
    SIGINT's handler, and SIGINT is ignored in a background job): the child would then outlive
    ``kill_process_group``'s SIGTERM and every stop its program relies on. A child in a session of its own
    also outlives a SIGKILLed run worker (out of memory) unless the kernel tells it (Linux PR_SET_PDEATHSIG):
    a compression would then publish a CRAM no run records."""
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


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


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run on this machine (a missing install, not a bad input)."""


# Spark and Hail chatter that says nothing about the work.
_QUIET_PREFIXES = ("[Stage", "WARN", "Setting default log level", "To adjust logging level", "  warnings.warn")


def run_logged(command: list[str], log: Callable[[str], None], timeout_seconds: int,
               what: str = "the Hail job") -> tuple[int, list[str]]:
    """Run ``command`` in its own process group, forwarding its meaningful output to ``log``; a timeout or
    an interrupted Dagster run (KeyboardInterrupt / DagsterExecutionInterruptedError) kills the group."""
    tail: deque[str] = deque(maxlen=40)
    process = subprocess.Popen(  # noqa: S603 - our own job script, an argv list, no shell
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True, preexec_fn=default_stop_signals)

    def pump() -> None:
        for line in process.stdout:
            line = line.rstrip()
            if line and not line.startswith(_QUIET_PREFIXES) and " WARN " not in line:
                tail.append(line)
                log(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        kill_process_group(process, grace_seconds=10.0)
        raise RuntimeError(f"{what} ran longer than {timeout_seconds} s and was stopped") from None
    except BaseException:
        kill_process_group(process, grace_seconds=10.0)
        raise
    reader.join(timeout=5)
    return process.returncode, list(tail)


