"""The lake's object store: the interface every profile's storage implements.

:class:`ObjectStore` is the capability; the local profile's ``LocalObjectStore`` (``local_store.py``)
keeps the lake in a directory, the aws profile's ``S3ObjectStore`` (``s3_store.py``) in an S3 bucket.

Keys are relative to the lake root and always validated (no ``..``, no absolute paths).
Writes are atomic per object: a reader sees the previous object or the new one, never a
partial one (local: write to a temp file in the same directory then ``os.replace``; S3: a
single PUT/multipart upload, which S3 makes visible atomically).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from genolake_assets.lib.lake.identifiers import require_safe_key


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: float
    """Seconds since the epoch."""
    etag: str
    """Changes whenever the content changes (S3 ETag; locally size + mtime in ns)."""


class ObjectStore(ABC):
    """What the assets, sensors and catalog need from the lake's storage."""

    @property
    @abstractmethod
    def root_uri(self) -> str: ...

    def uri(self, key: str) -> str:
        return f"{self.root_uri.rstrip('/')}/{require_safe_key(key)}"

    @abstractmethod
    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Objects under the folder ``prefix`` ('a' and 'a/' both mean the folder a/), in key order."""

    @abstractmethod
    def head(self, key: str) -> StoredObject | None: ...

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A streaming, binary, file-like reader; the caller closes it."""

    @abstractmethod
    def download(self, key: str, dest: Path) -> Path: ...

    @abstractmethod
    def read_tail(self, key: str, length: int) -> bytes:
        """The last ``length`` bytes of the object (one ranged read; a BAM's end-of-file check)."""

    @abstractmethod
    def upload(self, src: Path, key: str, *, tags: dict[str, str] | None = None) -> StoredObject:
        """Atomically publish a local file at ``key`` (replacing any previous object)."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> StoredObject: ...

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as handle:
            return handle.read()

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise ValueError("refusing to delete the whole lake (empty prefix)")
        doomed = [obj.key for obj in self.list_objects(prefix)]
        for key in doomed:
            self.delete(key)
        return len(doomed)

    @abstractmethod
    def copy(self, src_key: str, dst_key: str) -> StoredObject: ...

    @abstractmethod
    def get_tags(self, key: str) -> dict[str, str]: ...

    @abstractmethod
    def put_tags(self, key: str, tags: dict[str, str]) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """A path that local readers (DuckDB, pyarrow) can open directly, or None if remote."""
        return None
