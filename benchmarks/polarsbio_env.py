"""An isolated venv for polars-bio, created on first use.

polars-bio 0.36 needs polars<2 and pyarrow<25; the project needs pyarrow>=26. Its set is locked with hashes in
requirements/polars-bio.txt (moved by `make lock`) and installed by the project's pinned uv.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_DIR = REPO / "benchmarks" / ".venv-polarsbio"
LOCKED_REQUIREMENTS = REPO / "requirements" / "polars-bio.txt"
UV = REPO / ".venv-tools" / "bin" / "uv"
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
    if not UV.exists():
        raise PolarsBioUnavailable(f"{UV} is missing: `make install` installs the project's pinned uv")
    _run_step([sys.executable, "-m", "venv", "--clear", "--without-pip", str(VENV_DIR)], "python -m venv")
    _run_step([str(UV), "pip", "sync", "--quiet", "--require-hashes", "--compile-bytecode", "--python", str(VENV_PYTHON),
               str(LOCKED_REQUIREMENTS)], f"uv pip sync {LOCKED_REQUIREMENTS.name}")
    if not _can_import():
        raise PolarsBioUnavailable("polars_bio installed but does not import")
    return VENV_PYTHON
