"""Two cohort tables built by different engines are the same table: manifest, files, rows and their order."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from genolake_assets.lib.cohort.layout import COHORT_SCHEMA, ROW_GROUP_ROWS, SORT_KEYS, CohortState


def _parquet(store, key: str) -> pq.ParquetFile:
    return pq.ParquetFile(io.BytesIO(store.read_bytes(key)))


def assert_same_cohort(store_a, state_a: CohortState, store_b, state_b: CohortState) -> int:
    """Equal up to the random file names: manifest, each file's rows in order, row groups with statistics.
    Returns the rows compared."""
    assert (state_a.version, state_a.bin_size, state_a.samples) == (state_b.version, state_b.bin_size, state_b.samples)
    assert sorted(state_a.partitions) == sorted(state_b.partitions)
    assert sorted(state_a.retired) == sorted(state_b.retired)
    rows = 0
    for key, a in state_a.partitions.items():
        b = state_b.partitions[key]
        assert (a.contig, a.bin, a.gen, a.rows, len(a.files)) == (b.contig, b.bin, b.gen, b.rows, len(b.files)), key
        assert [name.split("-")[0] for name in a.files] == [name.split("-")[0] for name in b.files], key
        partition_rows = 0
        for key_a, key_b in zip(state_a.live_keys(a), state_b.live_keys(b), strict=True):
            file_a, file_b = _parquet(store_a, key_a), _parquet(store_b, key_b)
            table_a, table_b = file_a.read(), file_b.read()
            assert table_b.schema == COHORT_SCHEMA
            assert table_a.equals(table_b), f"{key_a} and {key_b} differ"
            assert table_b.sort_by(SORT_KEYS).equals(table_b), f"{key_b} is not in the cohort's row order"
            metadata = file_b.metadata
            assert metadata.num_row_groups == -(-table_b.num_rows // ROW_GROUP_ROWS)
            pos = COHORT_SCHEMA.get_field_index("pos")
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(pos).statistics
                assert stats is not None and stats.has_min_max, f"{key_b} row group {group} has no pos statistics"
            partition_rows += table_b.num_rows
        assert partition_rows == b.rows, key
        rows += partition_rows
    return rows
