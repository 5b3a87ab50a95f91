"""The lake resource: picks the object store for the profile."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from genolake_assets.lib.lake.identifiers import DEFAULT_POLICY, SampleIdPolicy
from genolake_assets.resources.lake.local_store import LocalObjectStore
from genolake_assets.resources.lake.object_store import ObjectStore


class LakeResource(dg.ConfigurableResource):
    """Where the lake lives. ``profile=local``: a directory; ``profile=aws``: an S3 bucket/prefix."""

    profile: str = "local"
    home: str = ".genolake"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    kms_key_id: str | None = None
    pseudonymise: bool = False
    """Sample ids are keyed hashes of the names, and copies of landed files lose the uploader's file
    name (docs/phi.md). The key is not config: see :meth:`sample_id_policy`."""
    pseudonym_key_file: str | None = None
    pseudonym_key_parameter: str | None = None
    """ARN or name of the Secrets Manager secret holding the key (aws)."""
    _store: ObjectStore | None = PrivateAttr(default=None)
    _policy: SampleIdPolicy | None = PrivateAttr(default=None)

    @property
    def home_path(self) -> Path:
        return Path(self.home).resolve()

    @property
    def scratch(self) -> Path:
        path = self.home_path / "scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def local_root(self) -> Path | None:
        """The lake's directory in the local profile (None on S3, where writes are atomic objects)."""
        return self.home_path / "lake" if self.profile == "local" else None

    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = self._build_store()
        return self._store

    def _build_store(self) -> ObjectStore:
        if self.profile == "local":
            return LocalObjectStore(self.local_root)
        if not self.s3_bucket:
            raise ValueError("the aws profile needs GENOLAKE_S3_BUCKET (the lake bucket)")
        from genolake_assets.resources.lake.s3_store import S3ObjectStore

        return S3ObjectStore(self.s3_bucket, self.s3_prefix, endpoint_url=self.endpoint_url,
                             region_name=self.region, sse_kms_key_id=self.kms_key_id)

    def sample_id_policy(self) -> SampleIdPolicy:
        """How the landing sensors mint sample and alignment ids: names as they are (when safe), or, when
        pseudonymising, HMACs under the key read from ``GENOLAKE_PSEUDONYM_KEY``, the key file or the
        Secrets Manager secret. Read once per resource instance; never logged."""
        if not self.pseudonymise:
            return DEFAULT_POLICY
        if self._policy is None:
            from genolake_assets.resources.lake.pseudonym_key import load_pseudonym_key

            self._policy = SampleIdPolicy(key=load_pseudonym_key(
                key_file=self.pseudonym_key_file, parameter=self.pseudonym_key_parameter, region=self.region,
                endpoint_url=self.endpoint_url))
        return self._policy

    def local_copy(self, key: str) -> Path:
        """A local path for ``key``: the file itself locally, a cached download on S3."""
        store = self.store()
        direct = store.local_path(key)
        if direct is not None:
            return direct
        target = self.scratch / "downloads" / key
        head = store.head(key)
        if head is None:
            raise FileNotFoundError(store.uri(key))
        # The cached copy is this version only if its ETag matches: a rewritten object (the samples table)
        # may keep its size.
        etag_file = target.with_name(target.name + ".etag")
        cached = target.exists() and etag_file.exists() and etag_file.read_text() == head.etag
        if not cached or target.stat().st_size != head.size:
            etag_file.unlink(missing_ok=True)
            store.download(key, target)
            etag_file.write_text(head.etag)
        return target

    def lifecycle_applier(self):
        """Writes the lake bucket's lifecycle rules (aws profile only: a local lake has no tiers)."""
        if self.profile != "aws" or not self.s3_bucket:
            raise ValueError("lifecycle rules apply to an S3 lake (GENOLAKE_PROFILE=aws with GENOLAKE_S3_BUCKET)")
        from genolake_assets.resources.lake.lifecycle_store import S3LifecycleApplier

        return S3LifecycleApplier(self.s3_bucket, endpoint_url=self.endpoint_url, region=self.region)
