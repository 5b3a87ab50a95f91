"""An isolated venv for polars-bio, created on first use.

polars-bio 0.36 needs polars<2 and pyarrow<25; the project needs pyarrow>=26.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENV_DIR = Path(__file__).resolve().parent / ".venv-polarsbio"
VENV_PYTHON = VENV_DIR / "bin" / "python"


class PolarsBioUnavailable(Exception):
    pass


def _can_import() -> bool:
    probe = subprocess.run([str(VENV_PYTHON), "-c", "import polars_bio"], capture_output=True)
    return probe.returncode == 0


def _run_step(argv: list[str], what: str) -> None:
    step = subprocess.run(argv, capture_output=True, text=True)
    if step.returncode != 0:
        last_line = (step.stderr.strip().splitlines() or ["no output"])[-1]
        raise PolarsBioUnavailable(f"{what} failed: {last_line}")


def ensure_polars_bio_python(log=print) -> Path:
    """Return the venv's python, installing polars-bio first if needed."""
    if VENV_PYTHON.exists() and _can_import():
        return VENV_PYTHON
    log(f"creating {VENV_DIR.name} and installing polars-bio (one-off)...")
    _run_step([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)], "python -m venv")
    _run_step([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "polars-bio"], "pip install polars-bio")
    if not _can_import():
        raise PolarsBioUnavailable("polars_bio installed but does not import")
    return VENV_PYTHON
