"""A real (in-process, HTTP) moto S3 server and object stores to test against it."""

from __future__ import annotations

import pytest

from genolake_assets.resources.lake.local_store import LocalObjectStore
from genolake_assets.resources.lake.s3_store import S3ObjectStore

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
