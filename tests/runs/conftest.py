"""A Dagster instance on disk for runs in child processes, pools limited to 1 as `genolake demo` sets them."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def pooled_dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home
