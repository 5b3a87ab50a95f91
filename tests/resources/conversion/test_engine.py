"""The converter resource's child-process handling (the Hail engine runs Spark in a child process group)."""

import sys
import time

import pytest

from genolake_assets.resources.conversion.engine import ConverterResource, run_logged


def _gone(pid: int, seconds: float = 10.0) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts as gone)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_a_job_that_outlives_its_timeout_is_stopped_with_everything_it_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
              "print('started', flush=True)\n"
              "time.sleep(60)\n")
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="longer than 3 s"):
        run_logged([sys.executable, "-c", script], lines.append, timeout_seconds=3)
    assert lines == ["started"]
    assert _gone(int(pid_file.read_text()))


def test_output_is_forwarded_without_spark_noise_and_the_exit_code_returned():
    script = "print('WARN  Utils: noise'); print('[Stage 1:>   (0 + 1) / 1]'); print('converted 1 of 1 VCFs')"
    lines: list[str] = []
    code, tail = run_logged([sys.executable, "-c", script + "; raise SystemExit(3)"], lines.append, 30)
    assert (code, lines, tail) == (3, ["converted 1 of 1 VCFs"], ["converted 1 of 1 VCFs"])


def test_an_unknown_engine_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown conversion engine 'spark'"):
        ConverterResource(engine="spark").convert_batch(None, None, None, print)
