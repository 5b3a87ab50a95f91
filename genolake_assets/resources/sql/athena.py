"""The aws profile's SQL engine: Athena, through PyAthena.

Queries are sent as written (Trino dialect). Rows come back through PyAthena's default cursor,
which pages through GetQueryResults, and are typed into Arrow from the result's column types
(PyAthena's ArrowCursor reads the CSV result file from S3 instead, and S3-compatible test servers
do not write one). Athena's own result reuse answers a repeated query from the previous result
without scanning (or billing) the data again.
"""

import datetime
import json
import time
from decimal import Decimal

import pyarrow as pa
import pyathena
from pyathena.error import DatabaseError
from pyathena.model import AthenaQueryExecution
from pydantic import PrivateAttr

from genolake_assets.resources.sql.sql_engine import QueryEngine, QueryResult

_ARROW_TYPES = {
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "float": pa.float32(),
    "double": pa.float64(),
    "char": pa.string(),
    "varchar": pa.string(),
    "string": pa.string(),
    "varbinary": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
}
_NESTED_TYPES = ("array", "map", "row")
"""Athena names only the outer kind of a nested column; its Arrow type is inferred from the values."""


class QueryTimedOut(TimeoutError):
    """The query ran past the engine's timeout and was cancelled."""


def arrow_type_of(athena_type: str, precision: int | None = None, scale: int | None = None) -> pa.DataType | None:
    """The Arrow type of an Athena result column; None for nested kinds, whose type is inferred."""
    athena_type = athena_type.lower()
    if athena_type == "decimal":
        return pa.decimal128(precision or 38, scale or 0)
    if athena_type in _NESTED_TYPES:
        return None
    # Anything else Athena can return (json, uuid, ipaddress, intervals) arrives as text.
    return _ARROW_TYPES.get(athena_type, pa.string())


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default)


def _json_default(value):
    if isinstance(value, Decimal | datetime.date | datetime.time):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot represent {type(value).__name__} in JSON")


def _column(values: list, athena_type: str, precision: int | None, scale: int | None) -> pa.Array:
    arrow_type = arrow_type_of(athena_type, precision, scale)
    if arrow_type is not None:
        if pa.types.is_string(arrow_type):
            values = [_as_text(v) for v in values]
        return pa.array(values, type=arrow_type)
    try:
        # PyAthena parses most arrays, maps and rows into lists and dicts.
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # A mix it could not parse (e.g. a string for an array of rows): keep the text.
        return pa.array([_as_text(v) for v in values], type=pa.string())


def rows_to_arrow(description: list[tuple] | None, rows: list[tuple]) -> pa.Table:
    """An Arrow table from DB-API rows and a PyAthena cursor description."""
    if not description:
        return pa.table({})
    columns = [list(values) for values in zip(*rows)] if rows else [[] for _ in description]
    arrays = [_column(values, d[1], d[4], d[5]) for values, d in zip(columns, description)]
    return pa.Table.from_arrays(arrays, names=[d[0] for d in description])


class AthenaQueryEngine(QueryEngine):
    """Athena through PyAthena; results stay in ``output_location`` (or the workgroup's own location)."""

    database: str = "genolake"
    workgroup: str = "primary"
    output_location: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    result_reuse_minutes: int = 60
    timeout_seconds: float = 600.0
    poll_interval: float = 1.0
    _connection: object = PrivateAttr(default=None)

    def _connect(self):
        if self._connection is None:
            self._connection = pyathena.connect(
                # "" (not None) keeps PyAthena from falling back to AWS_ATHENA_S3_STAGING_DIR, so a
                # workgroup that enforces its own result location is not sent a conflicting one.
                s3_staging_dir=self.output_location or "",
                work_group=self.workgroup,
                schema_name=self.database,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                poll_interval=self.poll_interval,
                result_reuse_enable=self.result_reuse_minutes > 0,
                result_reuse_minutes=max(self.result_reuse_minutes, 1),
            )
        return self._connection

    def run(self, trino_sql: str) -> QueryResult:
        started = time.monotonic()
        deadline = started + self.timeout_seconds

        def stop_when_overdue(execution: AthenaQueryExecution) -> None:
            # PyAthena calls this on every status poll; raising here leaves its wait loop.
            if execution.state not in AthenaQueryExecution.TERMINAL_STATES and time.monotonic() > deadline:
                raise QueryTimedOut(execution.query_id)

        cursor = self._connect().cursor(on_poll=stop_when_overdue)
        try:
            try:
                cursor.execute(trino_sql)
            except QueryTimedOut as overdue:
                raise self._cancel_overdue(cursor, query_id=str(overdue)) from None
            except DatabaseError as error:
                raise RuntimeError(f"Athena query {cursor.query_id} failed: {error}\n{trino_sql}") from error
            rows = cursor.fetchall()
            table = rows_to_arrow(cursor.description, rows)
            return QueryResult(
                table=table, executed_sql=trino_sql, engine=f"athena ({self.workgroup})",
                seconds=time.monotonic() - started, bytes_scanned=cursor.data_scanned_in_bytes,
                query_id=cursor.query_id, reused_result=bool(cursor.reused_previous_result))
        finally:
            cursor.close()

    def _cancel_overdue(self, cursor, query_id: str) -> QueryTimedOut:
        """Stop the query (Athena bills it until it stops) and return the error to raise."""
        late = f"Athena query {query_id} ran longer than {self.timeout_seconds:g} s"
        try:
            cursor.cancel()
        except DatabaseError as error:
            return QueryTimedOut(f"{late} and could not be cancelled (it may still be running): {error}")
        return QueryTimedOut(f"{late} and was cancelled")
