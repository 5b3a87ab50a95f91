"""Fixtures for the converter's oracle tests (tests/lib/vcf/test_convert_oracle.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _load_oracle():
    name = "genolake_tests_oracle"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "oracle.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def oracle():
    return _load_oracle()


@pytest.fixture(scope="session")
def convert_vcf():
    """The converter under test (imported lazily so the oracle's own tests run without it)."""
    from genolake_assets.lib.vcf.convert import convert_vcf as fn
    return fn


@pytest.fixture(scope="session")
def converted(convert_vcf, tmp_path_factory):
    """Convert a file once per session: converted(path, samples=None) -> (out_dir, report)."""
    cache: dict = {}

    def run(path: Path, samples: list[str] | None = None):
        key = (str(path), tuple(samples) if samples is not None else None)
        if key not in cache:
            out = tmp_path_factory.mktemp("lake")
            report = convert_vcf(str(path), str(out), samples=samples)
            cache[key] = (out, report)
        return cache[key]

    return run


@pytest.fixture(scope="session")
def expected(oracle):
    """The oracle's expectation for a file, cached: expected(path, samples=None)."""
    from genolake_assets.lib.lake.identifiers import sample_id_for
    cache: dict = {}

    def run(path: Path, samples: list[str] | None = None):
        key = (str(path), tuple(samples) if samples is not None else None)
        if key not in cache:
            cache[key] = oracle.expected_for(str(path), sample_id_for, samples)
        return cache[key]

    return run
