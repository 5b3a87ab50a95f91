"""A real (in-process, HTTP) moto S3 server and object stores to test against it."""

from __future__ import annotations

import uuid

import pytest
from moto.server import ThreadedMotoServer

from genolake_assets.resources.object_store import LocalObjectStore
from genolake_assets.resources.s3_store import S3ObjectStore, s3_client

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
def make_s3_store(moto_endpoint, bucket):
    def make(prefix: str = "", **options) -> S3ObjectStore:
        return S3ObjectStore(bucket, prefix, endpoint_url=moto_endpoint, **options)

    return make


@pytest.fixture(params=["local", "s3", "s3-with-prefix"])
def store(request, tmp_path):
    """Each implementation of the ObjectStore contract, freshly empty."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "lake")
    make_s3_store = request.getfixturevalue("make_s3_store")
    return make_s3_store("lake/v1" if request.param == "s3-with-prefix" else "")


@pytest.fixture
def count_calls():
    """count_calls(client, "ListObjectsV2") -> a list that grows by one per API call made."""

    def register(client, operation: str) -> list:
        calls: list = []
        client.meta.events.register(f"before-call.s3.{operation}", lambda **_: calls.append(operation))
        return calls

    return register
