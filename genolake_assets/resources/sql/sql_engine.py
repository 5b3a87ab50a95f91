"""The SQL engine: runs the project's queries (written once, in Athena's Trino dialect).

:class:`QueryEngine` is the capability and :class:`QueryResult` what every engine returns. The local
profile's ``DuckDbQueryEngine`` (``duckdb_engine.py``) transpiles each query to DuckDB with sqlglot and runs
it over the DuckDB catalog's views; the aws profile's ``AthenaQueryEngine`` (``athena.py``) sends it to
Athena through PyAthena as it is.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa


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
