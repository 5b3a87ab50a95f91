"""Which samples a lake holds, and a version token for each one.

The cohort table's manifest keeps every sample's token (``samples`` in ``registry/cohort/state.json``).
A cohort update folds in exactly the samples whose token is new or different, so a token must change
whenever a sample's tables are re-written, and must stay the same otherwise.

* The ``cohort_variants`` asset takes the tokens from the samples table (:func:`samples_table_tokens`).
* ``genolake cohort`` works on a lake that ``genolake convert`` made, which has only the per-sample
  Parquet files. It uses :func:`lake_sample_tokens`: the samples table's token when the table lists the
  sample (so the CLI and the asset agree on a lake they share), else a token made from the files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow.parquet as pq

from genolake_assets.lib.lake.identifiers import is_safe_sample_id
from genolake_assets.lib.lake.layout import PART_NAME, REFERENCE_BLOCKS_TABLE, SAMPLES_TABLE_KEY, VARIANTS_TABLE

PER_SAMPLE_TABLES = (VARIANTS_TABLE, REFERENCE_BLOCKS_TABLE)
_PER_SAMPLE_KEY = re.compile(rf"^({VARIANTS_TABLE}|{REFERENCE_BLOCKS_TABLE})/sample_id=([^/]+)/{re.escape(PART_NAME)}\Z")


def per_sample_tables(keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """sample_id → {table: key} of the per-sample Parquet files among ``keys`` (other keys are ignored);
    a sample may have only one of its two files."""
    found: dict[str, dict[str, str]] = {}
    for key in keys:
        match = _PER_SAMPLE_KEY.match(key)
        if match and is_safe_sample_id(match.group(2)):
            found.setdefault(match.group(2), {})[match.group(1)] = key
    return dict(sorted(found.items()))


def samples_table_tokens(store, fetch: Callable[[str], Path]) -> dict[str, str]:
    """sample_id → token of every converted sample the samples table lists (empty without a samples table)."""
    if not store.exists(SAMPLES_TABLE_KEY):
        return {}
    rows = pq.read_table(fetch(SAMPLES_TABLE_KEY),
                         columns=["sample_id", "converted_at", "sha256", "engine_version"]).to_pylist()
    # A quarantined re-upload keeps describing the version still served, so its token does not move.
    # converted_at has one-second resolution: a re-conversion of the same file by the same engine in
    # the same second produced the same rows, so missing it changes nothing.
    return {r["sample_id"]: f"{r['converted_at']}|{r['sha256']}|{r['engine_version']}"
            for r in rows if r["converted_at"]}


def file_token(objects: dict[str, object]) -> str:
    """A token from a sample's stored files (``StoredObject``s by table): their etags, i.e. size and
    modification time in a local lake. ``genolake convert`` replaces both files on every conversion,
    so a re-converted sample gets a new token; copying the lake without keeping times makes every
    sample look re-converted (the cohort is then rebuilt, which is slow but correct)."""
    return "files|" + "|".join(f"{table}={objects[table].etag}" if table in objects else f"{table}=none"
                               for table in PER_SAMPLE_TABLES)


def lake_sample_tokens(store, fetch: Callable[[str], Path]) -> dict[str, str]:
    """sample_id → token of every sample with per-sample tables in the lake (see the module docstring)."""
    stored = {obj.key: obj for table in PER_SAMPLE_TABLES for obj in store.list_objects(f"{table}/")}
    listed = samples_table_tokens(store, fetch)
    tokens = {}
    for sample_id, keys in per_sample_tables(stored).items():
        tokens[sample_id] = listed.get(sample_id) or file_token({table: stored[key] for table, key in keys.items()})
    return tokens
