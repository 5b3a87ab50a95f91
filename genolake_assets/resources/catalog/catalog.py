"""The catalog: tables over the lake's Parquet, queried with SQL.

:class:`Catalog` is the capability; the local profile's ``DuckDbCatalog`` (``duckdb_catalog.py``) keeps
one DuckDB database file with one view per table, the aws profile's ``GlueCatalog`` (``glue_catalog.py``)
writes Glue Data Catalog tables and partitions through the API. This module also holds what both share:
:class:`TableRegistration` and the table-name check.

Three kinds of table:

- per-sample tables (``<prefix>/sample_id=<id>/part-00000.parquet``), grown one partition at a time;
- single-file tables (the samples table);
- snapshot tables (ClinVar): each refresh writes a complete new snapshot
  (``<prefix>/snapshot=<id>/<k1>=<v1>/<k2>=<v2>/part-00000.parquet``) and the table is pointed at it in
  one atomic step, so a reader sees the old release or the new one, never a mix.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

_TABLE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz_0123456789")


@dataclass
class TableRegistration:
    name: str
    location: str
    files: int
    rows: int
    columns: list[tuple[str, str]]


def _safe_table_name(name: str) -> str:
    if not name or not set(name) <= _TABLE_NAME_CHARS or name[0].isdigit():
        raise ValueError(f"invalid table name {name!r}")
    return name


class Catalog(dg.ConfigurableResource):
    """Tables over the lake's Parquet files (one per profile; see the module docstring)."""

    @abstractmethod
    def register_table(self, name: str, prefix: str) -> TableRegistration:
        """Create or update the per-sample table ``name`` over ``<prefix>/sample_id=<id>/*.parquet``.

        Idempotent. New samples become visible; columns first seen in a new sample are added as
        nullable columns; nothing already registered is dropped or retyped.
        """

    @abstractmethod
    def register_file_table(self, name: str, key: str) -> TableRegistration:
        """Create or replace the table ``name`` over the single Parquet file ``key``."""

    @abstractmethod
    def register_snapshot(self, name: str, snapshot_prefix: str, partition_keys: list[str]) -> TableRegistration:
        """Point the table ``name`` at the complete snapshot under ``snapshot_prefix`` in one atomic step.

        The snapshot's files are ``<snapshot_prefix>/<k1>=<v1>/.../part-*.parquet`` for
        ``partition_keys`` [k1, ...]; the files also carry those columns.
        """

    @abstractmethod
    def register_file_set(self, name: str, schema: pa.Schema, partition_keys: list[str],
                          partitions: dict[tuple[str, ...], list[str]]) -> TableRegistration:
        """Point the table ``name`` at exactly these files (a manifest's live set; the cohort table).

        ``partitions`` maps partition values (in ``partition_keys`` order) to the keys of that
        partition's live files, which all sit in one folder. Partitions not listed are removed.
        """

    @abstractmethod
    def table_columns(self, name: str) -> dict[str, str] | None:
        """Column → SQL type of a registered table (partition keys included), or None if absent."""

    @abstractmethod
    def sql_type_of(self, arrow_schema: pa.Schema) -> dict[str, str]:
        """The SQL types this catalog gives an Arrow schema (to compare a new file with the catalog)."""
