"""Shared fixtures: a temporary lake home with the local profile's real resources."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from genolake_assets.resources.lake.s3_store import s3_client

DATA_VCF = Path(__file__).resolve().parent / "data" / "vcf"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def clinvar_files_from_the_test_data(tmp_path_factory):
    """Tests read ClinVar from the repo's data and their own temporary folders: the operator's allow-list
    (GENOLAKE_CLINVAR_LOCAL_DIRS) names those folders, as a deployment names its mirror. Session-wide, so
    module-scoped fixtures that refresh ClinVar see it too."""
    folders = [REPO / "tests" / "data", REPO / "data", tmp_path_factory.getbasetemp()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOLAKE_CLINVAR_LOCAL_DIRS", os.pathsep.join(str(folder) for folder in folders))
        yield


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


@pytest.fixture(scope="session")
def data_vcf() -> Path:
    return DATA_VCF


def copy_to(tmp_path: Path, source: Path, name: str | None = None) -> Path:
    target = tmp_path / (name or source.name)
    shutil.copyfile(source, target)
    return target


FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Keep a developer's own ~/.aws files and profile out of the tests.
    "AWS_CONFIG_FILE": "/nonexistent/genolake-test-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/genolake-test-aws-credentials",
}


@pytest.fixture(scope="session")
def moto_endpoint():
    """The URL of a moto server on a free local port, with fake credentials in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS_ENVIRONMENT.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="session")
def raw_s3(moto_endpoint):
    """A plain client for looking at the bucket behind a store's back."""
    return s3_client(endpoint_url=moto_endpoint)


@pytest.fixture
def bucket(raw_s3):
    """A fresh, empty bucket for each test."""
    name = f"genolake-test-{uuid.uuid4().hex[:12]}"
    raw_s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def aws_resources(monkeypatch, tmp_path, moto_endpoint, bucket):
    """The aws profile's real resources on the moto server: S3 lake under ``lake/``, a fresh Glue database."""
    monkeypatch.setenv("GENOLAKE_PROFILE", "aws")
    monkeypatch.setenv("GENOLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GENOLAKE_S3_BUCKET", bucket)
    monkeypatch.setenv("GENOLAKE_S3_PREFIX", "lake")
    monkeypatch.setenv("GENOLAKE_GLUE_DATABASE", f"genolake_{bucket[-12:]}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    from genolake_assets.resources.profile import build_resources

    resources = build_resources()
    resources["sql"] = resources["sql"].model_copy(update={"poll_interval": 0.05})
    return resources


@pytest.fixture
def limits(monkeypatch):
    """Sets input limits (``limits(max_allele_bytes=1000)`` → ``GENOLAKE_MAX_ALLELE_BYTES``) for one test."""
    from genolake_assets.lib.limits import input_limits

    def set_limits(**values: int) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"GENOLAKE_{name.upper()}", str(value))
        input_limits.cache_clear()

    input_limits.cache_clear()
    yield set_limits
    monkeypatch.undo()
    input_limits.cache_clear()


def require_spark(what: str) -> None:
    """Skip without pyspark (the hail extra), except in CI (GENOLAKE_REQUIRE_HAIL=1), where that is a failure."""
    import importlib.util
    import os

    if importlib.util.find_spec("pyspark") is None:
        if os.environ.get("GENOLAKE_REQUIRE_HAIL") == "1":
            pytest.fail(f"GENOLAKE_REQUIRE_HAIL=1 but pyspark is not installed: {what} (make install installs it)",
                        pytrace=False)
        pytest.skip(f"pyspark is not installed: {what} (pip install -e '.[hail]')", allow_module_level=True)
