"""The aws profile's catalog: AWS Glue Data Catalog tables over the lake's Parquet files on S3.

Tables and partitions are written through the Glue API from what is really in the lake (the
Parquet footers), never by a crawler. Only the footer of each file is read, with one ranged GET.

- Per-sample tables get one Glue partition per ``sample_id=<id>/`` folder. Each partition records
  its row count and the ETags of its files as partition parameters, so a later registration reads
  only the footers of partitions that are new or were rewritten, and the table's row total is the
  sum of those parameters: a re-materialised sample replaces its own count instead of adding to it,
  and two concurrent registrations never race on a shared counter.
- Snapshot tables (ClinVar) use Athena partition projection: the table's parameters name the
  snapshot's folder and partition values, so pointing the table at a new snapshot is one
  ``UpdateTable`` call, which readers see all at once.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from genolake_assets.lib.lake.identifiers import require_safe_key
from genolake_assets.resources.catalog.catalog import Catalog, TableRegistration, _safe_table_name
from genolake_assets.resources.lake.object_store import StoredObject
from genolake_assets.resources.lake.s3_store import S3ObjectStore, aws_client

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

SAMPLE_KEY = "sample_id"
ROWS_PARAMETER = "genolake.rows"
FILES_PARAMETER = "genolake.files"
"""Partition parameter: ``<file name>:<etag>`` of each file, to notice a rewritten partition."""
SOURCE_PARAMETER = "genolake.source"

GLUE_MAX_PARTITIONS_PER_BATCH = 100
"""BatchCreatePartition and BatchUpdatePartition take at most 100 partitions per call."""
FOOTER_TAIL_BYTES = 64 << 10
"""Read this much of a file's end at once: the footer of a variant file is well under it."""
FOOTER_READ_THREADS = 8
"""Below botocore's default pool of 10 connections per client, which the footer reads share."""
HIVE_MAX_DECIMAL_PRECISION = 38
_PROJECTION_PARAMETER_PREFIXES = ("projection.", "storage.location.template")


def glue_type(arrow_type: pa.DataType) -> str:
    """The Hive type string Glue and Athena use for an Arrow type."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return glue_type(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return _integer_type(t)
    if pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_decimal(t) and t.precision <= HIVE_MAX_DECIMAL_PRECISION:
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{glue_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{glue_type(f.type)}" for f in t) + ">"
    if pa.types.is_map(t):
        return f"map<{glue_type(t.key_type)},{glue_type(t.item_type)}>"
    raise ValueError(f"no Glue/Hive type for the Arrow type {t}")


def _integer_type(t: pa.DataType) -> str:
    signed = {8: "tinyint", 16: "smallint", 32: "int", 64: "bigint"}
    if pa.types.is_signed_integer(t):
        return signed[t.bit_width]
    if t.bit_width == 64:
        raise ValueError("no Glue/Hive type holds every uint64 value; write the column as int64 or decimal")
    # An unsigned value needs the next larger signed type to keep its top bit.
    return signed[t.bit_width * 2]


@dataclass(frozen=True)
class _Footer:
    rows: int
    columns: list[tuple[str, str]]
    """(name, Glue type) in file order."""


@dataclass
class _Partition:
    values: tuple[str, ...]
    folder: str
    objects: list[StoredObject]

    @property
    def files_marker(self) -> str:
        return ";".join(f"{o.key.rsplit('/', 1)[-1]}:{o.etag}" for o in self.objects)


@dataclass(frozen=True)
class _Conflict:
    column: str
    catalog_type: str
    file_type: str
    partition: str


def _hive_partitions(objects: Iterable[StoredObject], folder: str, keys: list[str]) -> list[_Partition]:
    """Group the Parquet files under ``folder`` by their ``k1=v1/k2=v2/`` path; other objects are skipped."""
    grouped: dict[tuple[str, ...], _Partition] = {}
    for obj in objects:
        segments = obj.key[len(folder) + 1:].split("/")
        if len(segments) != len(keys) + 1 or not segments[-1].endswith(".parquet"):
            continue
        pairs = [segment.partition("=") for segment in segments[:-1]]
        if any(name != key or not sep or not value for (name, sep, value), key in zip(pairs, keys)):
            continue
        values = tuple(value for _, _, value in pairs)
        partition_folder = f"{folder}/" + "/".join(segments[:-1])
        grouped.setdefault(values, _Partition(values, partition_folder, [])).objects.append(obj)
    return [grouped[values] for values in sorted(grouped)]


def _merge_columns(columns: dict[str, str], footer: _Footer, partition: str,
                   skip: Iterable[str] = ()) -> list[_Conflict]:
    """Append the footer's new columns to ``columns`` unless one of its types conflicts (then change nothing)."""
    skipped = set(skip)
    incoming = [(name, sql_type) for name, sql_type in footer.columns if name not in skipped]
    conflicts = [_Conflict(name, columns[name], sql_type, partition) for name, sql_type in incoming
                 if name in columns and columns[name] != sql_type]
    if not conflicts:
        for name, sql_type in incoming:
            columns.setdefault(name, sql_type)
    return conflicts


def _conflict_message(table: str, conflicts: list[_Conflict]) -> str:
    details = "; ".join(f"column {c.column} is {c.catalog_type} in the catalog but {c.file_type} in "
                        f"{c.partition}" for c in conflicts)
    return f"table {table}: type conflict, the partitions were not registered ({details})"


def _batches(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _storage_descriptor(location: str, columns: Iterable[tuple[str, str]]) -> dict:
    return {
        "Columns": [{"Name": name, "Type": sql_type} for name, sql_type in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": False,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
    }


def _table_columns(table: dict) -> dict[str, str]:
    return {c["Name"]: c["Type"] for c in table.get("StorageDescriptor", {}).get("Columns", [])}


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "EntityNotFoundException"


class GlueCatalog(Catalog):
    """Glue Data Catalog tables (queried with Athena) over Parquet in ``s3://s3_bucket/s3_prefix``."""

    database: str = "genolake"
    s3_bucket: str
    s3_prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    partition_batch_size: int = GLUE_MAX_PARTITIONS_PER_BATCH
    _glue_client: object = PrivateAttr(default=None)
    _lake_store: S3ObjectStore | None = PrivateAttr(default=None)
    _database_ready: bool = PrivateAttr(default=False)

    # -- clients --------------------------------------------------------------------------

    def _glue(self):
        if self._glue_client is None:
            self._glue_client = aws_client("glue", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._glue_client

    def _lake(self) -> S3ObjectStore:
        if self._lake_store is None:
            self._lake_store = S3ObjectStore(self.s3_bucket, self.s3_prefix, endpoint_url=self.endpoint_url,
                                             region_name=self.region)
        return self._lake_store

    def _folder_uri(self, folder: str) -> str:
        return self._lake().uri(folder) + "/"

    # -- Parquet footers ------------------------------------------------------------------

    def _read_footer(self, obj: StoredObject) -> _Footer:
        """Schema and row count of one Parquet file from a ranged read of its end."""
        lake = self._lake()
        if obj.size < 12:
            raise ValueError(f"{lake.uri(obj.key)} is too small to be a Parquet file")
        s3_key = lake.uri(obj.key).removeprefix(f"s3://{lake.bucket}/")

        def tail(length: int) -> bytes:
            start = max(0, obj.size - length)
            response = lake.client.get_object(Bucket=lake.bucket, Key=s3_key, Range=f"bytes={start}-{obj.size - 1}")
            return response["Body"].read()

        data = tail(FOOTER_TAIL_BYTES)
        if data[-4:] != b"PAR1":
            raise ValueError(f"{lake.uri(obj.key)} is not a Parquet file")
        footer_length = struct.unpack("<I", data[-8:-4])[0] + 8
        if footer_length > len(data):
            data = tail(footer_length)
        metadata = pq.read_metadata(pa.BufferReader(data))
        schema = metadata.schema.to_arrow_schema()
        return _Footer(metadata.num_rows, [(f.name, glue_type(f.type)) for f in schema])

    def _partition_footer(self, partition: _Partition) -> tuple[_Footer, list[_Conflict]]:
        """One partition's files as one footer: rows summed, columns unioned."""
        footers = [self._read_footer(obj) for obj in partition.objects]
        columns: dict[str, str] = {}
        conflicts = [c for footer in footers for c in _merge_columns(columns, footer, partition.folder)]
        return _Footer(sum(f.rows for f in footers), list(columns.items())), conflicts

    def _partition_footers(self, partitions: list[_Partition]) -> list[tuple[_Footer, list[_Conflict]]]:
        if not partitions:
            return []
        with ThreadPoolExecutor(max_workers=min(FOOTER_READ_THREADS, len(partitions))) as pool:
            return list(pool.map(self._partition_footer, partitions))

    # -- Glue -----------------------------------------------------------------------------

    def _ensure_database(self) -> None:
        if self._database_ready:
            return
        try:
            self._glue().create_database(DatabaseInput={
                "Name": self.database, "Description": "genolake: tables over the lake's Parquet files"})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                raise
        self._database_ready = True

    def _get_table(self, name: str) -> dict | None:
        try:
            return self._glue().get_table(DatabaseName=self.database, Name=name)["Table"]
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise

    def _put_table(self, existing: dict | None, table_input: dict) -> None:
        """Create the table, or replace its definition in one UpdateTable call."""
        if existing is None:
            self._glue().create_table(DatabaseName=self.database, TableInput=table_input)
        else:
            self._glue().update_table(DatabaseName=self.database, TableInput=table_input)

    def _table_input(self, name: str, location: str, columns: Iterable[tuple[str, str]], partition_keys: list[str],
                     parameters: dict[str, str], existing: dict | None) -> dict:
        # Parameters someone else set on the table (owners, Lake Formation) are kept.
        kept = {k: v for k, v in (existing or {}).get("Parameters", {}).items()
                if not k.startswith(_PROJECTION_PARAMETER_PREFIXES)}
        return {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {**kept, "EXTERNAL": "TRUE", "classification": "parquet", **parameters},
            "PartitionKeys": [{"Name": key, "Type": "string"} for key in partition_keys],
            "StorageDescriptor": _storage_descriptor(location, columns),
        }

    def _registered_partitions(self, name: str) -> dict[tuple[str, ...], dict[str, str]]:
        """Values → parameters of every partition the table has."""
        pages = self._glue().get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=name, ExcludeColumnSchema=True)
        return {tuple(p["Values"]): p.get("Parameters", {}) for page in pages for p in page.get("Partitions", [])}

    def _partition_input(self, partition: _Partition, footer: _Footer, columns: Iterable[tuple[str, str]]) -> dict:
        return {
            "Values": list(partition.values),
            "StorageDescriptor": _storage_descriptor(self._folder_uri(partition.folder), columns),
            "Parameters": {"classification": "parquet", ROWS_PARAMETER: str(footer.rows),
                           FILES_PARAMETER: partition.files_marker},
        }

    def _create_partitions(self, name: str, inputs: list[dict]) -> None:
        for batch in _batches(inputs, self._batch_size()):
            response = self._glue().batch_create_partition(
                DatabaseName=self.database, TableName=name, PartitionInputList=batch)
            # A concurrent registration may have added the same partition: that is the state we want.
            errors = [e for e in response.get("Errors", [])
                      if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
            self._raise_partition_errors(name, "create", errors, "PartitionValues")

    def _update_partitions(self, name: str, inputs: list[dict]) -> None:
        for batch in _batches(inputs, self._batch_size()):
            response = self._glue().batch_update_partition(
                DatabaseName=self.database, TableName=name,
                Entries=[{"PartitionValueList": p["Values"], "PartitionInput": p} for p in batch])
            self._raise_partition_errors(name, "update", response.get("Errors", []), "PartitionValueList")

    @staticmethod
    def _raise_partition_errors(name: str, action: str, errors: list[dict], values_field: str) -> None:
        if errors:
            details = "; ".join(f"{e.get(values_field)}: {e.get('ErrorDetail', {}).get('ErrorCode')} "
                                f"{e.get('ErrorDetail', {}).get('ErrorMessage')}" for e in errors[:5])
            raise RuntimeError(f"Glue could not {action} {len(errors)} partition(s) of {name}: {details}")

    def _batch_size(self) -> int:
        if not 1 <= self.partition_batch_size <= GLUE_MAX_PARTITIONS_PER_BATCH:
            raise ValueError(f"partition_batch_size must be 1..{GLUE_MAX_PARTITIONS_PER_BATCH}, "
                             f"not {self.partition_batch_size}")
        return self.partition_batch_size

    # -- Catalog --------------------------------------------------------------------------

    def register_table(self, name: str, prefix: str) -> TableRegistration:
        name = _safe_table_name(name)
        folder = require_safe_key(prefix.strip("/"))
        location = self._folder_uri(folder)
        partitions = _hive_partitions(self._lake().list_objects(folder), folder, [SAMPLE_KEY])
        self._ensure_database()
        existing = self._get_table(name)
        if existing is None and not partitions:
            return TableRegistration(name, location, 0, 0, [])
        if existing is not None and [k["Name"] for k in existing.get("PartitionKeys", [])] != [SAMPLE_KEY]:
            raise ValueError(f"Glue table {self.database}.{name} is not partitioned by {SAMPLE_KEY} alone")

        registered = self._registered_partitions(name) if existing is not None else {}
        # Partitions Glue knows with the same files keep their recorded row counts; only the rest are read.
        stale = [p for p in partitions
                 if registered.get(p.values, {}).get(FILES_PARAMETER) != p.files_marker
                 or ROWS_PARAMETER not in registered[p.values]]
        columns = _table_columns(existing) if existing is not None else {}
        columns_before = dict(columns)
        accepted: list[tuple[_Partition, _Footer]] = []
        conflicts: list[_Conflict] = []
        for partition, (footer, own_conflicts) in zip(stale, self._partition_footers(stale)):
            problems = own_conflicts or _merge_columns(columns, footer, partition.folder, skip=[SAMPLE_KEY])
            if problems:
                conflicts.extend(problems)
            else:
                accepted.append((partition, footer))

        if accepted and (existing is None or columns != columns_before):
            # Columns first, then partitions: a partition is never visible before its columns are.
            self._put_table(existing, self._table_input(name, location, columns.items(), [SAMPLE_KEY],
                                                        {}, existing))
        new = [self._partition_input(p, f, columns.items()) for p, f in accepted if p.values not in registered]
        rewritten = [self._partition_input(p, f, columns.items()) for p, f in accepted if p.values in registered]
        self._create_partitions(name, new)
        self._update_partitions(name, rewritten)
        if conflicts:
            raise ValueError(_conflict_message(name, conflicts))

        read_rows = {p.values: f.rows for p, f in accepted}
        stale_values = {p.values for p in stale}
        rows = sum(read_rows[p.values] if p.values in stale_values else int(registered[p.values][ROWS_PARAMETER])
                   for p in partitions)
        return TableRegistration(name, location, len(partitions), rows,
                                 list(columns.items()) + [(SAMPLE_KEY, "string")])

    def register_file_table(self, name: str, key: str) -> TableRegistration:
        name = _safe_table_name(name)
        key = require_safe_key(key)
        folder, _, _ = key.rpartition("/")
        if not folder:
            raise ValueError(f"{key} is not in a folder: a Glue table's location is the folder of its file")
        stored = self._lake().head(key)
        if stored is None:
            raise FileNotFoundError(self._lake().uri(key))
        footer = self._read_footer(stored)
        self._ensure_database()
        existing = self._get_table(name)
        location = self._folder_uri(folder)
        parameters = {ROWS_PARAMETER: str(footer.rows), SOURCE_PARAMETER: key}
        self._put_table(existing, self._table_input(name, location, footer.columns, [], parameters, existing))
        return TableRegistration(name, location, 1, footer.rows, footer.columns)

    def register_snapshot(self, name: str, snapshot_prefix: str, partition_keys: list[str]) -> TableRegistration:
        name = _safe_table_name(name)
        keys = [_safe_table_name(k) for k in partition_keys]
        if not keys:
            raise ValueError("a snapshot table needs at least one partition key")
        folder = require_safe_key(snapshot_prefix.strip("/"))
        partitions = _hive_partitions(self._lake().list_objects(folder), folder, keys)
        if not partitions:
            raise FileNotFoundError(f"snapshot {folder} has no Parquet files under "
                                    f"{'/'.join(f'{k}=...' for k in keys)}/; refusing to point {name} at it")
        columns: dict[str, str] = {}
        conflicts: list[_Conflict] = []
        rows = 0
        for partition, (footer, own_conflicts) in zip(partitions, self._partition_footers(partitions)):
            conflicts += own_conflicts or _merge_columns(columns, footer, partition.folder, skip=keys)
            rows += footer.rows
        if conflicts:
            raise ValueError(_conflict_message(name, conflicts))
        location = self._folder_uri(folder)
        template = location + "/".join(f"{k}=${{{k}}}" for k in keys) + "/"
        parameters = {"projection.enabled": "true", "storage.location.template": template,
                      SOURCE_PARAMETER: folder, ROWS_PARAMETER: str(rows)}
        for position, key in enumerate(keys):
            values = sorted({p.values[position] for p in partitions})
            parameters[f"projection.{key}.type"] = "enum"
            parameters[f"projection.{key}.values"] = ",".join(values)
        self._ensure_database()
        existing = self._get_table(name)
        table_input = self._table_input(name, location, columns.items(), keys, parameters, existing)
        # The whole flip (location, template, values, columns) is this one call.
        self._put_table(existing, table_input)
        return TableRegistration(name, location, sum(len(p.objects) for p in partitions), rows,
                                 list(columns.items()) + [(k, "string") for k in keys])

    def register_file_set(self, name: str, schema: pa.Schema, partition_keys: list[str],
                          partitions: dict[tuple[str, ...], list[str]]) -> TableRegistration:
        name = _safe_table_name(name)
        keys = [_safe_table_name(k) for k in partition_keys]
        key_types = [glue_type(schema.field(k).type) for k in keys]
        columns = [(f.name, glue_type(f.type)) for f in schema if f.name not in keys]
        folders = {}
        for values, files in partitions.items():
            parents = {require_safe_key(f).rsplit("/", 1)[0] for f in files}
            if len(parents) != 1:
                raise ValueError(f"{name} partition {values}: its files are not in one folder: {sorted(parents)}")
            folders[tuple(str(v) for v in values)] = parents.pop()
        table_folder = os.path.commonpath(list(folders.values())) if folders else require_safe_key(name)
        self._ensure_database()
        existing = self._get_table(name)
        table_input = self._table_input(name, self._folder_uri(table_folder), columns, keys, {}, existing)
        for key, key_type in zip(table_input["PartitionKeys"], key_types):
            key["Type"] = key_type
        self._put_table(existing, table_input)
        registered = {} if existing is None else {
            tuple(p["Values"]): p["StorageDescriptor"]["Location"] for page in
            self._glue().get_paginator("get_partitions").paginate(DatabaseName=self.database, TableName=name)
            for p in page.get("Partitions", [])}

        def partition_input(values: tuple[str, ...]) -> dict:
            return {"Values": list(values), "Parameters": {"classification": "parquet"},
                    "StorageDescriptor": _storage_descriptor(self._folder_uri(folders[values]), columns)}

        self._create_partitions(name, [partition_input(v) for v in folders if v not in registered])
        # A compaction moved the partition to a new generation folder: one location update flips it.
        self._update_partitions(name, [partition_input(v) for v in folders
                                       if v in registered and registered[v] != self._folder_uri(folders[v])])
        gone = [list(v) for v in registered if v not in folders]
        for batch in _batches(gone, self._batch_size()):
            response = self._glue().batch_delete_partition(
                DatabaseName=self.database, TableName=name, PartitionsToDelete=[{"Values": v} for v in batch])
            self._raise_partition_errors(name, "delete", response.get("Errors", []), "PartitionValues")
        files = sum(len(f) for f in partitions.values())
        return TableRegistration(name, self._folder_uri(table_folder), files, -1,
                                 columns + list(zip(keys, key_types)))

    def table_columns(self, name: str) -> dict[str, str] | None:
        name = _safe_table_name(name)
        table = self._get_table(name)
        if table is None:
            return None
        return {**_table_columns(table), **{k["Name"]: k["Type"] for k in table.get("PartitionKeys", [])}}

    def sql_type_of(self, arrow_schema: pa.Schema) -> dict[str, str]:
        return {f.name: glue_type(f.type) for f in arrow_schema}
