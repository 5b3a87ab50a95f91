"""The alignment file catalog: one entry per BAM/CRAM/FASTA file in the lake, keyed by its URI.

:class:`FileCatalog` is the capability; the local profile's ``SqliteFileCatalog`` (``sqlite.py``) keeps a
SQLite file, the aws profile's ``DynamoDbFileCatalog`` (``dynamodb.py``) a DynamoDB table. This module also
holds what both share: :class:`FileCatalogEntry` (with its DynamoDB item form) and :class:`FileCatalogConflict`.

Every write is conditional on the file's sha256, so a retried run can re-register the file it
already registered (a no-op) but can never overwrite the entry of a *different* file that
happens to have the same URI: that is a :class:`FileCatalogConflict`.
"""

import dataclasses
import json
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

FILE_TYPES = frozenset({"cram", "bam", "fasta"})


@dataclass(frozen=True)
class FileCatalogEntry:
    file_uri: str
    file_name: str
    file_type: str
    size: int
    sha256: str
    md5: str
    created: str
    bucket: str | None
    key: str
    status: str  # "verified", "archive-ready", ...
    reference_uri: str | None = None
    reference_md5: str | None = None
    source_uri: str | None = None
    source_sha256: str | None = None
    content_checksum: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.file_type not in FILE_TYPES:
            raise ValueError(f"{self.file_uri}: file_type {self.file_type!r} is not one of {sorted(FILE_TYPES)}")
        if not self.sha256:
            raise ValueError(f"{self.file_uri}: a sha256 is required (every write is conditional on it)")

    def to_item(self) -> dict[str, dict[str, str]]:
        """A DynamoDB item (attribute-value form). None attributes are left out; ``details`` is a
        JSON string because DynamoDB items cannot hold floats (the ratio, the timings)."""
        item: dict[str, dict[str, str]] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            elif f.name == "size":
                item[f.name] = {"N": str(int(value))}
            elif f.name == "details":
                item[f.name] = {"S": json.dumps(value, sort_keys=True)}
            else:
                item[f.name] = {"S": value}
        return item

    @classmethod
    def from_item(cls, item: dict[str, dict[str, str]]) -> "FileCatalogEntry":
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            (kind, raw), = item.get(f.name, {"NULL": None}).items()  # to_item leaves None attributes out
            values[f.name] = int(raw) if kind == "N" else raw
        values["details"] = json.loads(values.get("details") or "{}")
        return cls(**values)


class FileCatalogConflict(Exception):
    """The URI is catalogued with different content (another sha256) than the caller expected."""

    def __init__(self, file_uri: str, existing_sha256: str, new_sha256: str):
        self.file_uri, self.existing_sha256, self.new_sha256 = file_uri, existing_sha256, new_sha256
        super().__init__(
            f"{file_uri} is already catalogued with sha256 {existing_sha256}, not {new_sha256}: "
            "refusing to overwrite another file's entry"
        )


class FileCatalog(dg.ConfigurableResource):
    """The catalog of alignment and reference files (one per profile; see the module docstring)."""

    @abstractmethod
    def put(self, entry: FileCatalogEntry) -> bool:
        """Add ``entry``. True if written; False if the URI is already catalogued with the same
        sha256 (a retry: the stored entry is left as it is); FileCatalogConflict if with another."""

    @abstractmethod
    def get(self, file_uri: str) -> FileCatalogEntry | None:
        """The entry for ``file_uri``, or None."""

    @abstractmethod
    def entries(self, file_type: str | None = None) -> list[FileCatalogEntry]:
        """All entries (of ``file_type`` if given), sorted by file_uri."""

    @abstractmethod
    def set_status(self, file_uri: str, status: str, expected_sha256: str) -> None:
        """Set the status if the entry still describes the file with ``expected_sha256``.
        KeyError if there is no entry; FileCatalogConflict if its sha256 differs."""

    @abstractmethod
    def describe(self) -> str:
        """Where the catalog lives, for logs and metadata."""
