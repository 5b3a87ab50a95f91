"""Per-sample Parquet writers: buffered row groups, sort-order tracking, a re-sort fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


ROW_GROUP_ROWS = 131_072
# In-memory Arrow bytes after which a writer's buffer is written even if short of ROW_GROUP_ROWS.
ROW_GROUP_MAX_BYTES = 32 << 20
# Delta encoding beats dictionaries for sorted integer positions (INFO END too: in a gVCF it is
# nearly unique per row, so its dictionary overflowed and fell back to plain values).
DELTA_COLUMNS = ("pos", "end", "info_end")
# Higher levels cost a third more writer CPU for under 1% smaller files on gVCF data.
ZSTD_LEVEL = 3
# Batches of tables waiting for the writer thread.
WRITE_QUEUE_BATCHES = 2


def partition_dir(root: Path, table: str, sample_id: str) -> Path:
    return root / table / f"sample_id={sample_id}"


def _leaf_path(field: pa.Field) -> str:
    """The Parquet column path of a field: a list's values live in '<name>.list.element'."""
    return f"{field.name}.list.element" if pa.types.is_list(field.type) else field.name


class SortedParquetWriter:
    """Writes one table's rows for one sample; remembers whether rows arrived sorted."""

    def __init__(self, path: Path, schema: pa.Schema, contig_rank: dict[str, int]):
        self.path = path
        self.schema = schema
        self.contig_rank = contig_rank
        self.rows = 0
        self.sorted = True
        self._last: int | None = None
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._buffered_bytes = 0
        self._writer: pq.ParquetWriter | None = None

    def _open(self) -> pq.ParquetWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        delta_columns = [f.name for f in self.schema if f.name in DELTA_COLUMNS and pa.types.is_integer(f.type)]
        dictionary_columns = [_leaf_path(f) for f in self.schema if f.name not in delta_columns]
        return pq.ParquetWriter(
            self.path, self.schema, compression="zstd", compression_level=ZSTD_LEVEL,
            use_dictionary=dictionary_columns,
            column_encoding={name: "DELTA_BINARY_PACKED" for name in delta_columns},
            write_statistics=True, write_page_index=True,
        )

    def _in_order(self, table: pa.Table) -> pa.Table:
        """Sort a batch in place if needed; note when batches themselves arrive out of order."""
        if table.num_rows == 0:
            return table
        contigs = pc.unique(table["contig"])
        ranks = np.array([self.contig_rank.get(c, len(self.contig_rank)) for c in contigs.to_pylist()], np.int64)
        key_rank = ranks[pc.index_in(table["contig"], contigs).to_numpy()]
        composite = key_rank * (1 << 32) + table["pos"].to_numpy().astype(np.int64)
        if np.any(composite[1:] < composite[:-1]):
            order = np.argsort(composite, kind="stable")
            table, composite = table.take(pa.array(order)), composite[order]
        if self._last is not None and composite[0] < self._last:
            self.sorted = False
        self._last = max(int(composite[-1]), self._last or 0)
        return table

    def append(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = self._in_order(table)
        self._buffer.append(table)
        self._buffered += table.num_rows
        self._buffered_bytes += table.get_total_buffer_size()
        self.rows += table.num_rows
        if self._buffered >= ROW_GROUP_ROWS:
            self._write_full_row_groups()
        elif self._buffered_bytes >= ROW_GROUP_MAX_BYTES:
            # A sparse table (a gVCF's variants) would otherwise hold most of its rows until close.
            self.flush()

    def _write_full_row_groups(self) -> None:
        """Write whole ROW_GROUP_ROWS groups; the remainder stays buffered for the next one."""
        buffered = pa.concat_tables(self._buffer)
        full = buffered.num_rows - buffered.num_rows % ROW_GROUP_ROWS
        self._write(buffered.slice(0, full))
        rest = buffered.slice(full)
        self._buffer = [rest] if rest.num_rows else []
        self._buffered = rest.num_rows
        self._buffered_bytes = rest.get_total_buffer_size()

    def flush(self) -> None:
        if self._buffer:
            self._write(pa.concat_tables(self._buffer))
        self._buffer, self._buffered, self._buffered_bytes = [], 0, 0

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = self._open()
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes

    def close(self) -> None:
        self.flush()
        if self._writer is None:
            self._writer = self._open()  # an empty partition still gets a file with the schema
        self._writer.close()
        if not self.sorted:
            resort_parquet(self.path, self.contig_rank)
            self._restore_schema()

    def _restore_schema(self) -> None:
        """DuckDB writes its own schema (nullability, list field names): stream its sorted file back through
        this writer's schema and settings, so a re-sorted file is indistinguishable from a sorted one."""
        sorted_path = self.path.with_name(".sorted-" + self.path.name)
        self.path.rename(sorted_path)
        writer = self._open()
        try:
            for batch in pq.ParquetFile(sorted_path).iter_batches(batch_size=ROW_GROUP_ROWS):
                table = pa.Table.from_batches([batch])
                writer.write_table(pa.Table.from_arrays([pc.cast(table[f.name], f.type) for f in self.schema],
                                                        schema=self.schema), row_group_size=ROW_GROUP_ROWS)
        finally:
            writer.close()
            sorted_path.unlink()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.path.unlink(missing_ok=True)


def resort_parquet(path: Path, contig_rank: dict[str, int]) -> None:
    """Sort an unsorted file by (header contig order, pos) with DuckDB.

    DuckDB holds at most ``GENOLAKE_DUCKDB_MEMORY_LIMIT_MIB`` and spills the rest to a temporary folder beside
    the output (the same disk as the file it sorts, not the worker's working folder), removed afterwards."""
    import shutil
    import tempfile

    import duckdb

    from genolake_assets.lib.limits import input_limits

    unsorted = path.with_name(".unsorted-" + path.name)
    path.rename(unsorted)
    spill = Path(tempfile.mkdtemp(prefix=".resort-spill-", dir=path.parent))
    config = {"memory_limit": f"{input_limits().duckdb_memory_limit_mib}MiB", "temp_directory": str(spill)}
    try:
        with duckdb.connect(config=config) as con:
            con.execute("SET preserve_insertion_order = false")
            con.execute("CREATE TEMP TABLE contig_rank(contig VARCHAR, rank INTEGER)")
            con.executemany("INSERT INTO contig_rank VALUES (?, ?)", list(contig_rank.items()))
            con.execute(
                "COPY (SELECT t.* FROM read_parquet(?) t LEFT JOIN contig_rank r USING (contig) "  # noqa: S608 - only a quoted (''-escaped) path and an int constant are spliced in
                "ORDER BY coalesce(r.rank, 2147483647), t.contig, t.pos) TO '" + str(path).replace("'", "''")
                + "' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE " + str(ROW_GROUP_ROWS) + ")",
                [str(unsorted)],
            )
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    unsorted.unlink()


class WriterPool:
    """Owns the writers of one conversion and feeds them from a background thread.

    Parquet encoding and zstd release the GIL, so writing overlaps with decoding the next batch.
    """

    def __init__(self, writers: dict, max_buffered_bytes: int):
        import queue
        import threading

        self.writers = writers
        self._max_buffered = max_buffered_bytes
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE_BATCHES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                for key, table in item:
                    self.writers[key].append(table)
                if sum(w.buffered_bytes for w in self.writers.values()) > self._max_buffered:
                    for writer in self.writers.values():
                        writer.flush()
            except BaseException as exc:  # re-raised in the submitting thread
                self._error = exc

    def submit(self, tables: list[tuple[object, pa.Table]]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(tables)

    def _drain(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        self._drain()
        if self._error is not None:
            raise self._error
        for writer in self.writers.values():
            writer.close()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._drain()
        for writer in self.writers.values():
            writer.abort()
