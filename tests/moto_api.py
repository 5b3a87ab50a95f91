"""Driving a moto server's own API from tests: seeding Athena results (moto runs no SQL)."""

from __future__ import annotations

import json
import urllib.request


def moto_api(endpoint: str, path: str, payload: dict) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201)


def seed_result(endpoint: str, columns: list[tuple[str, str, int, int]], rows: list[list[str | None]]) -> None:
    """Queue one result: columns are (name, Athena type, precision, scale); None is SQL NULL."""
    column_info = [{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
                    "Type": athena_type, "Precision": precision, "Scale": scale, "Nullable": "UNKNOWN",
                    "CaseSensitive": athena_type == "varchar"} for name, athena_type, precision, scale in columns]
    # Athena's first result row of a SELECT is the header.
    header = {"Data": [{"VarCharValue": name} for name, *_ in columns]}
    data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
    result = {"rows": [header, *data], "column_info": column_info}
    moto_api(endpoint, "static/athena/query-results", {"results": [result]})
