"""The lake on S3 or any S3-compatible endpoint (MinIO, Ceph, moto).

Every object is written with server-side encryption: SSE-KMS when a key id is configured,
SSE-S3 (AES256) otherwise. Writes are a single PUT or a multipart upload, which S3 makes
visible atomically, so readers never see a partial object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from genolake_assets.lib.lake.identifiers import require_safe_key
from genolake_assets.resources.lake.object_store import ObjectStore, StoredObject

RETRY_CONFIG = Config(retries={"max_attempts": 10, "mode": "adaptive"})

MAX_KEYS_PER_DELETE = 1000
"""S3's limit for one DeleteObjects request."""

_MISSING_OBJECT_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def aws_client(service_name: str, *, endpoint_url: str | None = None, region_name: str | None = None,
               config: Config = RETRY_CONFIG):
    """A boto3 client with the lake's retry policy (for S3, Glue, Athena...)."""
    # A session per client: boto3's default session is not thread-safe to build clients from.
    session = boto3.session.Session()
    return session.client(service_name, endpoint_url=endpoint_url, region_name=region_name, config=config)


def s3_client(endpoint_url: str | None = None, region_name: str | None = None):
    config = RETRY_CONFIG
    if endpoint_url:
        # S3-compatible servers are usually addressed by IP or a single host name, where
        # virtual-hosted buckets (bucket.host) do not resolve.
        config = config.merge(Config(s3={"addressing_style": "path"}))
    return aws_client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config)


def is_missing_object_error(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING_OBJECT_CODES


@contextmanager
def _missing_as_file_not_found(uri: str):
    """Raise FileNotFoundError for a missing object, as the local store does."""
    try:
        yield
    except ClientError as error:
        if is_missing_object_error(error):
            raise FileNotFoundError(f"no object at {uri}") from error
        raise


def _normalized_store_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return require_safe_key(prefix) if prefix else ""


def _has_hidden_segment(key: str) -> bool:
    return any(segment.startswith(".") for segment in key.split("/"))


def _stored_object(key: str, size: int, last_modified, etag: str) -> StoredObject:
    return StoredObject(key=key, size=size, last_modified=last_modified.timestamp(), etag=etag.strip('"'))


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class S3ObjectStore(ObjectStore):
    """A lake under ``s3://bucket/prefix``; keys given to methods are relative to the prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        sse_kms_key_id: str | None = None,
        client=None,
        page_size: int = 1000,
    ):
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        self.bucket = bucket
        self.prefix = _normalized_store_prefix(prefix)
        self.sse_kms_key_id = sse_kms_key_id
        self.page_size = page_size
        self.client = client if client is not None else s3_client(endpoint_url, region_name)

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    # -- keys -----------------------------------------------------------------------------

    def _s3_key(self, key: str) -> str:
        key = require_safe_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _s3_folder(self, prefix: str) -> str:
        """The S3 key prefix for a folder; '' is the whole store. Like the local store,
        ``"a"`` means the folder ``a/`` and never matches ``ab/...``."""
        folder = prefix.removesuffix("/")
        if not folder:
            return f"{self.prefix}/" if self.prefix else ""
        return self._s3_key(folder) + "/"

    def _relative_key(self, s3_key: str) -> str:
        return s3_key[len(self.prefix) + 1:] if self.prefix else s3_key

    def _encryption_args(self) -> dict[str, str]:
        if self.sse_kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.sse_kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    # -- reading --------------------------------------------------------------------------

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=self._s3_folder(prefix), PaginationConfig={"PageSize": self.page_size}
        )
        for page in pages:
            for entry in page.get("Contents", []):
                key = self._relative_key(entry["Key"])
                if _has_hidden_segment(key):
                    continue
                yield _stored_object(key, entry["Size"], entry["LastModified"], entry["ETag"])

    def head(self, key: str) -> StoredObject | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._s3_key(key))
        except ClientError as error:
            if is_missing_object_error(error):
                return None
            raise
        return _stored_object(key, response["ContentLength"], response["LastModified"], response["ETag"])

    def _head_existing(self, key: str) -> StoredObject:
        stored = self.head(key)
        if stored is None:
            # S3 is read-after-write consistent, so this means a concurrent delete.
            raise FileNotFoundError(f"{self.uri(key)} disappeared right after it was written")
        return stored

    def open_read(self, key: str) -> BinaryIO:
        with _missing_as_file_not_found(self.uri(key)):
            response = self.client.get_object(Bucket=self.bucket, Key=self._s3_key(key))
        # botocore's StreamingBody is an io.IOBase: read(), close() and a context manager.
        return response["Body"]

    def read_tail(self, key: str, length: int) -> bytes:
        with _missing_as_file_not_found(self.uri(key)):
            response = self.client.get_object(Bucket=self.bucket, Key=self._s3_key(key), Range=f"bytes=-{length}")
        return response["Body"].read()

    def download(self, key: str, dest: Path) -> Path:
        s3_key = self._s3_key(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # The transfer manager writes to a temporary file and renames it, so dest is never partial.
        with _missing_as_file_not_found(self.uri(key)):
            self.client.download_file(self.bucket, s3_key, str(dest))
        return dest

    # -- writing --------------------------------------------------------------------------

    def upload(self, src: Path, key: str, *, tags: dict[str, str] | None = None) -> StoredObject:
        extra_args = self._encryption_args()
        if tags:
            extra_args["Tagging"] = urlencode(tags)
        self.client.upload_file(str(src), self.bucket, self._s3_key(key), ExtraArgs=extra_args)
        return self._head_existing(key)

    def write_bytes(self, key: str, data: bytes) -> StoredObject:
        self.client.put_object(Bucket=self.bucket, Key=self._s3_key(key), Body=data, **self._encryption_args())
        return self._head_existing(key)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._s3_key(key))

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise ValueError("refusing to delete the whole lake: give a non-empty prefix")
        # Every listed key, as listed: tools such as pyarrow or EMRFS leave folder markers ('a/b/', 'b_$folder$')
        # that are not keys genolake would write, and must go too. The prefix itself was validated.
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._s3_folder(prefix), PaginationConfig={"PageSize": self.page_size})
        doomed = (entry["Key"] for page in pages for entry in page.get("Contents", []))
        deleted = 0
        for batch in _batches(doomed, MAX_KEYS_PER_DELETE):
            self._delete_batch(batch)
            deleted += len(batch)
        return deleted

    def _delete_batch(self, s3_keys: list[str]) -> None:
        response = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in s3_keys], "Quiet": True}
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise OSError(
                f"could not delete {len(errors)} objects from s3://{self.bucket}, "
                f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
            )

    def copy(self, src_key: str, dst_key: str) -> StoredObject:
        source = {"Bucket": self.bucket, "Key": self._s3_key(src_key)}
        destination = self._s3_key(dst_key)
        source_tags = self.get_tags(src_key)
        with _missing_as_file_not_found(self.uri(src_key)):
            # The managed copy switches to a multipart copy above 8 MiB, so objects over
            # CopyObject's 5 GB limit (whole-genome BAM/CRAM) copy too.
            self.client.copy(source, self.bucket, destination, ExtraArgs=self._encryption_args())
        if source_tags:
            # Multipart copies do not carry tags in every s3transfer release; set them explicitly.
            self.put_tags(dst_key, source_tags)
        return self._head_existing(dst_key)

    # -- tags -----------------------------------------------------------------------------

    def get_tags(self, key: str) -> dict[str, str]:
        with _missing_as_file_not_found(self.uri(key)):
            response = self.client.get_object_tagging(Bucket=self.bucket, Key=self._s3_key(key))
        return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}

    def put_tags(self, key: str, tags: dict[str, str]) -> None:
        tag_set = [{"Key": name, "Value": value} for name, value in tags.items()]
        with _missing_as_file_not_found(self.uri(key)):
            self.client.put_object_tagging(Bucket=self.bucket, Key=self._s3_key(key), Tagging={"TagSet": tag_set})
