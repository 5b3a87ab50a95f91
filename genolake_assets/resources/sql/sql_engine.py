"""The SQL engine: runs the project's queries (written once, in Athena's Trino dialect).

:class:`QueryEngine` is the capability. The local profile's :class:`DuckDbQueryEngine` transpiles
each query to DuckDB with sqlglot and runs it over the DuckDB catalog's views; the aws profile's
``AthenaQueryEngine`` (``athena.py``) sends it to Athena through PyAthena as it is.
"""

from __future__ import annotations

import json
import tempfile
import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import sqlglot

from genolake_assets.resources.catalog.catalog import connect_duckdb


@dataclass
class QueryResult:
    table: pa.Table
    executed_sql: str
    """The statement the engine ran (after transpiling, for DuckDB)."""
    engine: str
    seconds: float
    bytes_scanned: int | None
    """Bytes the engine read from storage (Athena bills by this; DuckDB's profiler reports it)."""
    query_id: str | None = None
    reused_result: bool = False

    def metadata(self) -> dict:
        return {"engine": self.engine, "query_seconds": round(self.seconds, 4),
                "bytes_scanned": self.bytes_scanned if self.bytes_scanned is not None else -1,
                "query_id": self.query_id or "", "reused_result": self.reused_result}


class QueryEngine(dg.ConfigurableResource):
    """Runs a Trino-dialect SELECT (parameters already bound) and returns the rows as Arrow."""

    @abstractmethod
    def run(self, trino_sql: str) -> QueryResult: ...


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
