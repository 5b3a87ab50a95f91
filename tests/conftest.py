"""Shared fixtures: a temporary lake home with the local profile's real resources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA_VCF = Path(__file__).resolve().parent / "data" / "vcf"


@pytest.fixture
def lake_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("GENOLAKE_PROFILE", "local")
    monkeypatch.setenv("GENOLAKE_HOME", str(home))
    return home


@pytest.fixture
def resources(lake_home):
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.settings import Settings

    return build_resources(Settings.from_env())


@pytest.fixture
def store(resources):
    return resources["lake"].store()


@pytest.fixture
def instance():
    import dagster as dg

    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def land(store, tmp_path):
    """Put a file into the landing zone (optionally under another name); returns its key."""

    def _land(path: Path, name: str | None = None) -> str:
        key = f"landing/{name or path.name}"
        store.upload(Path(path), key)
        return key

    return _land


@pytest.fixture
def data_vcf() -> Path:
    return DATA_VCF


def copy_to(tmp_path: Path, source: Path, name: str | None = None) -> Path:
    target = tmp_path / (name or source.name)
    shutil.copyfile(source, target)
    return target
