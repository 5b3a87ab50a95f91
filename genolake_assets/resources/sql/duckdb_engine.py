"""The local profile's SQL engine: each Trino-dialect query transpiled to DuckDB and run over the catalog's views."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import duckdb
import sqlglot

from genolake_assets.resources.catalog.duckdb_catalog import connect_duckdb
from genolake_assets.resources.sql.sql_engine import QueryEngine, QueryResult


def trino_to_duckdb(trino_sql: str) -> str:
    return sqlglot.transpile(trino_sql, read="trino", write="duckdb")[0]


class DuckDbQueryEngine(QueryEngine):
    """DuckDB over the local catalog's views, read-only."""

    database: str

    def run(self, trino_sql: str) -> QueryResult:
        duckdb_sql = trino_to_duckdb(trino_sql)
        with tempfile.TemporaryDirectory(prefix="genolake-profile-") as scratch:
            profile_path = Path(scratch) / "profile.json"
            with connect_duckdb(self.database, read_only=True) as con:
                con.execute("PRAGMA enable_profiling = 'json'")
                con.execute(f"PRAGMA profiling_output = '{profile_path}'")
                started = time.perf_counter()
                try:
                    table = con.sql(duckdb_sql).to_arrow_table()
                except duckdb.Error as error:
                    raise RuntimeError(f"DuckDB rejected the query: {error}\n{duckdb_sql}") from error
                seconds = time.perf_counter() - started
            bytes_read = _bytes_read(profile_path)
        return QueryResult(table=table, executed_sql=duckdb_sql, engine=f"duckdb {duckdb.__version__}",
                           seconds=seconds, bytes_scanned=bytes_read)


def _bytes_read(profile_path: Path) -> int | None:
    try:
        profile = json.loads(profile_path.read_text())
    except (OSError, ValueError):
        return None
    return profile.get("io", {}).get("total_bytes_read")
