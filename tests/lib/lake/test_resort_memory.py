"""The DuckDB re-sort of a converted table that arrived out of order (issue 21, item 5) runs under a memory limit
(GENOLAKE_DUCKDB_MEMORY_LIMIT_MIB) and spills to a temporary folder beside the output, removed afterwards."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.lake import parquet_output
from genolake_assets.lib.lake.parquet_output import SortedParquetWriter, resort_parquet

SCHEMA = pa.schema([pa.field("contig", pa.string(), nullable=False), pa.field("pos", pa.int32(), nullable=False),
                    pa.field("payload", pa.string())])
CONTIGS = {"chr1": 0, "chr2": 1, "chrX": 2}


class SettingsSeen:
    """Wraps duckdb.connect: before each COPY, records the connection's effective settings."""

    def __init__(self, monkeypatch):
        self.seen: list[dict] = []
        real_connect = duckdb.connect
        recorder = self

        class Connection:
            def __init__(self, con):
                self._con = con

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._con.close()

            def execute(self, sql, *args):
                if sql.lstrip().upper().startswith("COPY"):
                    recorder.seen.append(dict(zip(
                        ("memory_limit", "temp_directory", "threads"),
                        self._con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
                                          "current_setting('threads')").fetchone())))
                return self._con.execute(sql, *args)

            def __getattr__(self, name):
                return getattr(self._con, name)

        monkeypatch.setattr(duckdb, "connect", lambda *a, **k: Connection(real_connect(*a, **k)))


def unsorted_rows(rows: int) -> pa.Table:
    rng = np.random.default_rng(3)
    contigs = rng.choice(list(CONTIGS), rows)
    positions = rng.integers(1, 10_000_000, rows).astype(np.int32)
    return pa.table({"contig": contigs, "pos": positions, "payload": [f"r{i}" for i in range(rows)]}, schema=SCHEMA)


def assert_sorted(path) -> None:
    table = pq.read_table(path)
    keys = list(zip([CONTIGS[c] for c in table["contig"].to_pylist()], table["pos"].to_pylist()))
    assert keys == sorted(keys)


def test_the_resort_runs_under_the_default_memory_limit_with_a_spill_folder_beside_the_output(
        tmp_path, monkeypatch, limits):
    limits()
    settings = SettingsSeen(monkeypatch)
    path = tmp_path / "variants" / "sample_id=s1" / "part-00000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(unsorted_rows(50_000), path)
    before = set(path.parent.iterdir())
    resort_parquet(path, CONTIGS)
    assert_sorted(path)
    assert pq.read_metadata(path).num_rows == 50_000
    (seen,) = settings.seen
    assert seen["memory_limit"] in ("2.0 GiB", "2048.0 MiB")  # GENOLAKE_DUCKDB_MEMORY_LIMIT_MIB=2048
    spill = seen["temp_directory"]
    assert spill.startswith(str(path.parent) + "/")  # on the output's disk, not the worker's working folder
    assert set(path.parent.iterdir()) == before  # the spill folder and the unsorted copy are gone


def test_the_memory_limit_follows_the_operator_and_a_writer_resorts_under_it(tmp_path, monkeypatch, limits):
    limits(duckdb_memory_limit_mib=300)
    settings = SettingsSeen(monkeypatch)
    path = tmp_path / "out" / "part-00000.parquet"
    writer = SortedParquetWriter(path, SCHEMA, CONTIGS)
    table = unsorted_rows(200_000)
    for start in range(0, table.num_rows, 10_000):  # batches out of order with each other
        writer.append(table.slice(start, 10_000))
    writer.close()
    assert not writer.sorted
    assert_sorted(path)
    assert pq.read_schema(path).equals(SCHEMA)
    (seen,) = settings.seen
    assert seen["memory_limit"] in ("300.0 MiB", "300 MiB")
    assert sorted(p.name for p in path.parent.iterdir()) == ["part-00000.parquet"]


def test_a_failed_resort_leaves_no_spill_folder(tmp_path, monkeypatch, limits):
    limits()
    path = tmp_path / "out" / "part-00000.parquet"
    path.parent.mkdir()
    pq.write_table(unsorted_rows(1000), path)
    monkeypatch.setattr(parquet_output, "ROW_GROUP_ROWS", "x")  # makes the COPY statement invalid
    with pytest.raises(duckdb.Error):
        resort_parquet(path, CONTIGS)
    assert not [p for p in path.parent.iterdir() if p.is_dir()]
