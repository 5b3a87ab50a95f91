"""The catalog: tables over the lake's Parquet, queried with SQL.

The local profile keeps one DuckDB database file with one view per table; the aws profile's
Glue/Athena implementation plugs in behind the same methods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from genolake_assets.lib.identifiers import require_safe_key

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


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DuckDbCatalog(dg.ConfigurableResource):
    """Views in a DuckDB file over the Parquet files of a local lake directory."""

    database: str
    lake_root: str

    def _connect(self, read_only: bool = False, attempts: int = 50) -> duckdb.DuckDBPyConnection:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            try:
                return duckdb.connect(self.database, read_only=read_only)
            except duckdb.IOException as exc:  # another run holds the write lock; wait our turn
                if "lock" not in str(exc).lower() or attempt == attempts - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise RuntimeError("unreachable")

    def _glob(self, prefix: str) -> str:
        folder = require_safe_key(prefix.strip("/"))
        return str(Path(self.lake_root) / folder / "*" / "*.parquet")

    def register_table(self, name: str, prefix: str) -> TableRegistration:
        """Create or replace the view ``name`` over every Parquet file under ``prefix``."""
        name = _safe_table_name(name)
        pattern = self._glob(prefix)
        files = sorted(Path(self.lake_root).glob(str(Path(prefix.strip("/")) / "*" / "*.parquet")))
        with self._connect() as con:
            if not files:
                con.execute(f"DROP VIEW IF EXISTS {name}")
                return TableRegistration(name, pattern, 0, 0, [])
            con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({_sql_literal(pattern)}, "
                "union_by_name = true, hive_partitioning = false)"
            )
            rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        return TableRegistration(name, pattern, len(files), rows, columns)

    def register_file_table(self, name: str, key: str) -> TableRegistration:
        name = _safe_table_name(name)
        path = str(Path(self.lake_root) / require_safe_key(key))
        with self._connect() as con:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({_sql_literal(path)})")
            rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        return TableRegistration(name, path, 1, rows, columns)

    def table_columns(self, name: str) -> dict[str, str] | None:
        """Column → SQL type of a registered table, or None if it is not registered."""
        name = _safe_table_name(name)
        if not Path(self.database).exists():
            return None
        with self._connect(read_only=True) as con:
            exists = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()[0]
            if not exists:
                return None
            try:
                return {r[0]: r[1] for r in con.execute(f"DESCRIBE {name}").fetchall()}
            except duckdb.Error:
                return None

    def query(self, sql: str, parameters: list | None = None) -> pa.Table:
        with self._connect(read_only=True) as con:
            return con.sql(sql, params=parameters or None).to_arrow_table()

    def sql_type_of(self, arrow_schema: pa.Schema) -> dict[str, str]:
        """The SQL types DuckDB gives an Arrow schema (to compare a new file with the catalog)."""
        with duckdb.connect() as con:
            con.register("empty_schema", arrow_schema.empty_table())
            return {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM empty_schema").fetchall()}
