"""The local profile's catalog: views in one DuckDB file over the lake directory (and its shared connect_duckdb)."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pyarrow as pa

from genolake_assets.lib.lake.identifiers import require_safe_key
from genolake_assets.resources.catalog.catalog import Catalog, TableRegistration, _safe_table_name


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def connect_duckdb(database: str, read_only: bool = False, attempts: int = 50) -> duckdb.DuckDBPyConnection:
    """Open the catalog database, waiting while another run holds its write lock."""
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            return duckdb.connect(database, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise RuntimeError("unreachable")


class DuckDbCatalog(Catalog):
    """Views in a DuckDB file over the Parquet files of a local lake directory."""

    database: str
    lake_root: str

    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        return connect_duckdb(self.database, read_only=read_only)

    def _glob(self, prefix: str) -> str:
        folder = require_safe_key(prefix.strip("/"))
        return str(Path(self.lake_root) / folder / "*" / "*.parquet")

    def register_table(self, name: str, prefix: str) -> TableRegistration:
        """Create or replace the view ``name`` over every Parquet file under ``prefix``."""
        name = _safe_table_name(name)
        pattern = self._glob(prefix)
        files = sorted(Path(self.lake_root).glob(str(Path(prefix.strip("/")) / "*" / "*.parquet")))
        if not files:
            with self._connect() as con:
                con.execute(f"DROP VIEW IF EXISTS {name}")
            return TableRegistration(name, pattern, 0, 0, [])
        return self._replace_view(name, pattern, len(files))

    def register_file_table(self, name: str, key: str) -> TableRegistration:
        name = _safe_table_name(name)
        return self._replace_view(name, str(Path(self.lake_root) / require_safe_key(key)), 1)

    def _replace_view(self, name: str, pattern: str, files: int) -> TableRegistration:
        """One CREATE OR REPLACE VIEW: readers see the previous definition or this one, never a mix."""
        with self._connect() as con:
            con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({_sql_literal(pattern)}, "  # noqa: S608 - name passed _safe_table_name
                "union_by_name = true, hive_partitioning = false)"
            )
            rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608 - name passed _safe_table_name
            columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        return TableRegistration(name, pattern, files, rows, columns)

    def register_snapshot(self, name: str, snapshot_prefix: str, partition_keys: list[str]) -> TableRegistration:
        name = _safe_table_name(name)
        folder = require_safe_key(snapshot_prefix.strip("/"))
        depth = "/".join("*" for _ in partition_keys)
        files = sorted(Path(self.lake_root).glob(f"{folder}/{depth}/*.parquet"))
        if not files:
            raise FileNotFoundError(f"snapshot {folder} has no Parquet files; refusing to point {name} at it")
        return self._replace_view(name, str(Path(self.lake_root) / folder / depth / "*.parquet"), len(files))

    def register_file_set(self, name: str, schema: pa.Schema, partition_keys: list[str],
                          partitions: dict[tuple[str, ...], list[str]]) -> TableRegistration:
        name = _safe_table_name(name)
        files = [str(Path(self.lake_root) / require_safe_key(key)) for keys in partitions.values() for key in keys]
        if not files:
            with self._connect() as con:
                con.execute(f"DROP VIEW IF EXISTS {name}")
            return TableRegistration(name, "", 0, 0, [])
        listing = "[" + ", ".join(_sql_literal(f) for f in files) + "]"
        with self._connect() as con:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({listing}, "  # noqa: S608 - name passed _safe_table_name, paths quoted by _sql_literal
                        "union_by_name = true, hive_partitioning = false)")
            rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608 - name passed _safe_table_name
            columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        return TableRegistration(name, f"{len(partitions)} partitions", len(files), rows, columns)

    def table_columns(self, name: str) -> dict[str, str] | None:
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
