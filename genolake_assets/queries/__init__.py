"""The project's SQL, written once in Athena's (Trino) dialect, with ``:name`` parameters.

Parameters are bound as SQL literals by sqlglot (it quotes and escapes them), so a sample pattern a
user types into the Dagster UI can never change the statement's shape.
"""

from __future__ import annotations

from importlib.resources import files

import sqlglot
from sqlglot import exp


def query_text(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"invalid query name {name!r}")
    return (files(__package__) / f"{name}.sql").read_text()


def bind(trino_sql: str, **parameters: str | int | float) -> str:
    """``trino_sql`` with every ``:name`` placeholder replaced by its literal; all must be given."""
    tree = sqlglot.parse_one(trino_sql, read="trino")
    wanted = {p.name for p in tree.find_all(exp.Placeholder)}
    missing = wanted - parameters.keys()
    unknown = parameters.keys() - wanted
    if missing or unknown:
        raise ValueError(f"query parameters: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return exp.replace_placeholders(tree, **parameters).sql(dialect="trino", pretty=True)


def render(name: str, **parameters: str | int | float) -> str:
    return bind(query_text(name), **parameters)
