"""The samples table refreshed in proportion to what changed (lib/lake/samples_table.py): only new or changed
registry records are read, the other rows come from the last table, removed records drop out, and the result
always equals a full rebuild."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.lake.layout import SAMPLE_REGISTRY_PREFIX, sample_registry_key
from genolake_assets.lib.lake.registry import SampleRecord
from genolake_assets.lib.lake.samples_table import refresh_samples_table
from genolake_assets.resources.lake.local_store import LocalObjectStore


def record(index: int, status: str = "converted") -> SampleRecord:
    return SampleRecord(sample_id=f"S{index:05d}", sample_name=f"NA{index:05d}", source_uri=f"landing/{index}.vcf.gz",
                        source_key=f"landing/{index}.vcf.gz", sha256=f"{index:064x}", size_bytes=1000 + index,
                        status=status, variant_rows=index, reference_block_rows=2 * index)


class CountingStore(LocalObjectStore):
    def __init__(self, root):
        super().__init__(root)
        self.reads = 0

    def read_bytes(self, key: str) -> bytes:
        self.reads += 1
        return super().read_bytes(key)


@pytest.fixture
def store(tmp_path) -> CountingStore:
    store = CountingStore(tmp_path / "lake")
    for index in range(50):
        store.write_bytes(sample_registry_key(f"S{index:05d}"), record(index).to_json())
    return store


def refresh(store, tmp_path: Path):
    listing = [(o.key, o.etag) for o in store.list_objects(SAMPLE_REGISTRY_PREFIX)]
    table_path, index_path = tmp_path / "samples.parquet", tmp_path / "index.parquet"
    store.reads = 0
    result = refresh_samples_table(listing, store.read_bytes, table_path if table_path.exists() else None,
                                   index_path if index_path.exists() else None)
    pq.write_table(result.table, table_path)
    pq.write_table(result.index, index_path)
    return result


def test_only_changed_records_are_read_and_the_table_equals_a_rebuild(store, tmp_path):
    first = refresh(store, tmp_path)
    assert first.full_rebuild and first.records_read == store.reads == 50 and first.table.num_rows == 50

    again = refresh(store, tmp_path)
    assert (again.full_rebuild, again.records_read, store.reads, again.rows_kept) == (False, 0, 0, 50)
    assert again.table.equals(first.table)

    for index in (3, 17):  # re-converted: the record is rewritten
        store.write_bytes(sample_registry_key(f"S{index:05d}"), replace(record(index), status="quarantined",
                                                                          reason="bad").to_json())
    store.delete(sample_registry_key("S00040"))
    for index in (50, 51, 52):
        store.write_bytes(sample_registry_key(f"S{index:05d}"), record(index).to_json())
    changed = refresh(store, tmp_path)
    assert (changed.records_read, store.reads, changed.rows_kept, changed.rows_removed) == (5, 5, 47, 1)

    listing = [(o.key, o.etag) for o in store.list_objects(SAMPLE_REGISTRY_PREFIX)]
    rebuilt = refresh_samples_table(listing, store.read_bytes, None, None)
    assert rebuilt.full_rebuild and rebuilt.records_read == 52
    assert changed.table.equals(rebuilt.table)
    statuses = dict(zip(changed.table["sample_id"].to_pylist(), changed.table["status"].to_pylist(), strict=True))
    assert statuses["S00003"] == statuses["S00017"] == "quarantined" and "S00040" not in statuses


def test_a_table_the_index_does_not_account_for_is_rebuilt(store, tmp_path):
    refresh(store, tmp_path)
    index = pq.read_table(tmp_path / "index.parquet")
    pq.write_table(index.slice(1), tmp_path / "index.parquet")  # the index lost a row the table holds
    result = refresh(store, tmp_path)
    assert result.full_rebuild and result.records_read == 50

    (tmp_path / "index.parquet").write_bytes(b"not parquet")
    assert refresh(store, tmp_path).full_rebuild
