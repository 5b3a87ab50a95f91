"""The alignment file catalog: one entry per BAM/CRAM/FASTA file in the lake, keyed by its URI.

:class:`FileCatalog` is the capability; the local profile's :class:`SqliteFileCatalog` keeps a
SQLite file, the aws profile's :class:`DynamoDbFileCatalog` a DynamoDB table.

Every write is conditional on the file's sha256, so a retried run can re-register the file it
already registered (a no-op) but can never overwrite the entry of a *different* file that
happens to have the same URI: that is a :class:`FileCatalogConflict`.
"""

import dataclasses
import json
import sqlite3
from abc import abstractmethod
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from genolake_assets.resources.lake.s3_store import aws_client

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


_COLUMNS = [f.name for f in dataclasses.fields(FileCatalogEntry)]


class SqliteFileCatalog(FileCatalog):
    """A SQLite file; concurrent runs on one machine share it (WAL, busy timeout)."""

    path: str

    def _connect(self) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken
        # before the read-back and nothing can slip in between insert and compare.
        # timeout sets SQLite's busy_timeout: a concurrent run's write makes us wait, not fail.
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        columns = ", ".join(f"{name} {'INTEGER' if name == 'size' else 'TEXT'}" for name in _COLUMNS[1:])
        connection.execute(f"CREATE TABLE IF NOT EXISTS alignment_files (file_uri TEXT PRIMARY KEY, {columns})")
        return connection

    @contextmanager
    def _write_transaction(self):
        """BEGIN IMMEDIATE takes the write lock up front, so a write and its read-back are one step."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _entry(row: sqlite3.Row) -> FileCatalogEntry:
        values = dict(row)
        values["details"] = json.loads(values["details"] or "{}")
        return FileCatalogEntry(**values)

    def put(self, entry: FileCatalogEntry) -> bool:
        row = dataclasses.asdict(entry)
        row["details"] = json.dumps(entry.details, sort_keys=True)
        with self._write_transaction() as db:
            inserted = db.execute(
                f"INSERT INTO alignment_files ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "  # noqa: S608 - the column names are the constant _COLUMNS; values are bound
                "ON CONFLICT (file_uri) DO NOTHING",
                [row[name] for name in _COLUMNS],
            ).rowcount
            existing = db.execute("SELECT sha256 FROM alignment_files WHERE file_uri = ?",
                                  [entry.file_uri]).fetchone()[0]
        if inserted:
            return True
        if existing != entry.sha256:
            raise FileCatalogConflict(entry.file_uri, existing, entry.sha256)
        return False

    def get(self, file_uri: str) -> FileCatalogEntry | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM alignment_files WHERE file_uri = ?", [file_uri]).fetchone()
        return self._entry(row) if row else None

    def entries(self, file_type: str | None = None) -> list[FileCatalogEntry]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM alignment_files WHERE ? IS NULL OR file_type = ? ORDER BY file_uri",
                              [file_type, file_type]).fetchall()
        return [self._entry(row) for row in rows]

    def set_status(self, file_uri: str, status: str, expected_sha256: str) -> None:
        with self._write_transaction() as db:
            updated = db.execute("UPDATE alignment_files SET status = ? WHERE file_uri = ? AND sha256 = ?",
                                 [status, file_uri, expected_sha256]).rowcount
            existing = db.execute("SELECT sha256 FROM alignment_files WHERE file_uri = ?", [file_uri]).fetchone()
        if not updated:
            if existing is None:
                raise KeyError(file_uri)
            raise FileCatalogConflict(file_uri, existing[0], expected_sha256)

    def describe(self) -> str:
        return f"sqlite:///{Path(self.path).resolve()}"


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDbFileCatalog(FileCatalog):
    """A DynamoDB table with partition key ``file_uri``; conditional writes make retries safe."""

    table_name: str
    region: str | None = None
    endpoint_url: str | None = None

    _client: Any = PrivateAttr(default=None)

    def _dynamodb(self):
        if self._client is None:
            self._client = aws_client("dynamodb", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._client

    def _stored_sha256(self, error: ClientError, file_uri: str) -> str | None:
        """The sha256 of the item that failed the condition: from ALL_OLD, else a consistent read."""
        old = error.response.get("Item")
        if old is not None:
            return old.get("sha256", {}).get("S")
        stored = self.get(file_uri)
        return stored.sha256 if stored else None

    def put(self, entry: FileCatalogEntry) -> bool:
        try:
            # One call decides: no read-then-write race between two runs cataloguing the same URI.
            self._dynamodb().put_item(
                TableName=self.table_name, Item=entry.to_item(),
                ConditionExpression="attribute_not_exists(file_uri)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            existing = self._stored_sha256(error, entry.file_uri)
        if existing != entry.sha256:
            raise FileCatalogConflict(entry.file_uri, str(existing), entry.sha256)
        return False

    def get(self, file_uri: str) -> FileCatalogEntry | None:
        response = self._dynamodb().get_item(
            TableName=self.table_name, Key={"file_uri": {"S": file_uri}}, ConsistentRead=True)
        item = response.get("Item")
        return FileCatalogEntry.from_item(item) if item else None

    def entries(self, file_type: str | None = None) -> list[FileCatalogEntry]:
        # A full Scan is fine for thousands of files; at scale the next step is a GSI on file_type
        # (queried instead of scanned).
        arguments: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        if file_type is not None:
            arguments.update(FilterExpression="file_type = :file_type",
                             ExpressionAttributeValues={":file_type": {"S": file_type}})
        pages = self._dynamodb().get_paginator("scan").paginate(**arguments)
        found = [FileCatalogEntry.from_item(item) for page in pages for item in page.get("Items", [])]
        return sorted(found, key=lambda entry: entry.file_uri)

    def set_status(self, file_uri: str, status: str, expected_sha256: str) -> None:
        try:
            self._dynamodb().update_item(
                TableName=self.table_name, Key={"file_uri": {"S": file_uri}},
                UpdateExpression="SET #status = :status",
                # The condition also fails for a missing item, so set_status never creates one.
                ConditionExpression="sha256 = :expected",
                ExpressionAttributeNames={"#status": "status"},  # a DynamoDB reserved word
                ExpressionAttributeValues={":status": {"S": status}, ":expected": {"S": expected_sha256}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            existing = self._stored_sha256(error, file_uri)
            if existing is None:
                raise KeyError(file_uri) from None
            raise FileCatalogConflict(file_uri, existing, expected_sha256) from None

    def create_table_if_missing(self) -> None:
        """For local development and tests only: production tables come from infrastructure as code."""
        client = self._dynamodb()
        try:
            client.create_table(
                TableName=self.table_name,
                AttributeDefinitions=[{"AttributeName": "file_uri", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "file_uri", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                SSESpecification={"Enabled": True},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        client.get_waiter("table_exists").wait(TableName=self.table_name, WaiterConfig={"Delay": 1})

    def describe(self) -> str:
        return f"dynamodb://{self.table_name}"
