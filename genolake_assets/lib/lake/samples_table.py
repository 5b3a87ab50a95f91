"""The samples table, refreshed in proportion to what changed (issue 17, item 4).

The table is built from one registry object per sample (``registry/samples/<id>.json``). Reading them all on
every refresh costs one GET per sample: 100,000 GETs a run at 100,000 samples. Instead the refresh lists the
registry (one LIST call per 1,000 keys), compares each object's ETag with the index written beside the last
table (``registry/samples_table_index.parquet``: key, ETag), reads only the new or changed records, keeps the
other rows from the last table and drops the rows whose record is gone.

Order of writes: the table, then the index. An index older than its table only makes the next refresh read
more records; an index never claims a record the table does not hold. Without an index, or with one that does
not match the table, the refresh reads every record (a full rebuild), as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from genolake_assets.lib.lake.layout import SAMPLE_REGISTRY_PREFIX
from genolake_assets.lib.lake.registry import SAMPLES_SCHEMA, SampleRecord, samples_arrow_table

INDEX_SCHEMA = pa.schema([("key", pa.string()), ("etag", pa.string())])


@dataclass
class SamplesRefresh:
    table: pa.Table
    index: pa.Table
    records_read: int
    rows_kept: int
    rows_removed: int
    full_rebuild: bool


def _sample_id_of(key: str) -> str:
    return key[len(SAMPLE_REGISTRY_PREFIX):].removesuffix(".json")


def refresh_samples_table(listing: Iterable[tuple[str, str]], read_record: Callable[[str], bytes],
                          previous_table: Path | None, previous_index: Path | None) -> SamplesRefresh:
    """The new samples table from the registry ``listing`` ((key, etag) of every ``registry/samples/*.json``),
    reading with ``read_record(key)`` only the records the previous index does not hold at that ETag."""
    current = {key: etag for key, etag in listing if key.startswith(SAMPLE_REGISTRY_PREFIX) and key.endswith(".json")}
    known, kept_rows = _previous(previous_table, previous_index)
    full_rebuild = kept_rows is None
    unchanged = {key for key, etag in current.items() if not full_rebuild and known.get(key) == etag}
    records = [SampleRecord.from_json(read_record(key)) for key in sorted(set(current) - unchanged)]
    fresh = samples_arrow_table(records)
    if full_rebuild:
        table, kept, removed = fresh, 0, 0
    else:
        keep = pa.array(sorted(_sample_id_of(key) for key in unchanged), pa.string())
        kept_table = kept_rows.filter(pc.is_in(kept_rows["sample_id"], value_set=keep))
        kept = kept_table.num_rows
        removed = len(set(kept_rows["sample_id"].to_pylist()) - {_sample_id_of(key) for key in current})
        table = pa.concat_tables([kept_table, fresh]).sort_by("sample_id")
    index = pa.table({"key": pa.array(sorted(current), pa.string()),
                      "etag": pa.array([current[key] for key in sorted(current)], pa.string())}, schema=INDEX_SCHEMA)
    return SamplesRefresh(table=table, index=index, records_read=len(records), rows_kept=kept,
                          rows_removed=removed, full_rebuild=full_rebuild)


def _previous(table_path: Path | None, index_path: Path | None) -> tuple[dict[str, str], pa.Table | None]:
    """(key → ETag of the last refresh, the last table), or ({}, None) when they cannot be used together."""
    if table_path is None or index_path is None:
        return {}, None
    try:
        table = pq.read_table(table_path)
        index = pq.read_table(index_path)
    except (OSError, pa.ArrowInvalid):
        return {}, None
    if not table.schema.equals(SAMPLES_SCHEMA) or not index.schema.equals(INDEX_SCHEMA):
        return {}, None  # written by another version of the table: rebuild
    known = dict(zip(index["key"].to_pylist(), index["etag"].to_pylist(), strict=True))
    indexed_ids = {_sample_id_of(key) for key in known}
    if set(table["sample_id"].to_pylist()) - indexed_ids:
        return {}, None  # a row the index does not account for
    return known, table
