"""New samples' cohort rows, one locus partition at a time, streamed from their sorted per-sample files.

A per-sample file is sorted by (contig, pos) in row groups that carry statistics, so the rows of one
(contig, bin) partition are found by reading each sample's file forward, a batch at a time, and a bin is
complete once every sample has read past its last position. Memory: per sample and table, one batch and
the rows read beyond the current partition; per run, one partition's rows of the run's samples. It does
not grow with the samples' sizes, and per sample it is a few MB (``BATCH_ROWS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH_ROWS = 16_384
"""Rows read from a per-sample file at a time (the per-sample files' row groups hold 131,072)."""


def contigs_of_row_groups(file: pq.ParquetFile) -> list[set[str]]:
    """The contigs in each row group: from the statistics when a row group holds one contig (min == max),
    else read from its ``contig`` column (a row group where one contig ends and the next begins)."""
    metadata = file.metadata
    index = file.schema_arrow.get_field_index("contig")
    found = []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is not None and stats.has_min_max and stats.min == stats.max:
            found.append({stats.min})
        else:
            column = file.read_row_group(group, columns=["contig"]).column(0)
            found.append(set(pc.unique(column).to_pylist()))
    return found


class SortedFile:
    """One per-sample Parquet file, read contig by contig. Only the row groups of each contig are kept
    between reads; the file itself is opened while a contig is read (an open file's metadata is ~1 MB)."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self.path = path
        opened = pq.ParquetFile(path)
        present = set(opened.schema_arrow.names)
        self.columns = [name for name in columns if name in present]
        self.groups_of: dict[str, list[int]] = {}
        in_groups = contigs_of_row_groups(opened)
        for group, contigs in enumerate(in_groups):
            for contig in contigs:
                self.groups_of.setdefault(contig, []).append(group)
        self.shared_groups = {group for group, contigs in enumerate(in_groups) if len(contigs) > 1}

    def batches(self, contig: str) -> Iterator[pa.Table]:
        """The file's rows of ``contig``, in file order, at most ``BATCH_ROWS`` at a time."""
        groups = self.groups_of.get(contig, [])
        shared = any(group in self.shared_groups for group in groups)
        opened = pq.ParquetFile(self.path)
        for batch in opened.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, columns=self.columns):
            table = pa.Table.from_batches([batch])
            if shared:  # a row group where one contig ends and the next begins
                table = table.filter(pc.equal(table["contig"], contig))
            if table.num_rows:
                yield table


class PartitionStream:
    """One sample table's cohort rows of one contig, bin by bin, read forward as far as needed."""

    def __init__(self, source: SortedFile, contig: str, to_rows: Callable[[pa.Table], pa.Table], bin_size: int):
        self.source = source
        self.contig = contig
        self.batches = source.batches(contig)
        self.to_rows = to_rows
        self.bin_size = bin_size
        self.pending: dict[int, list[pa.Table]] = {}
        self.frontier = -1
        """The last position read: every row still to come starts at or after it."""
        self.exhausted = False

    def read_past(self, position: int) -> None:
        """Read until a row starting after ``position`` was seen (or the contig ends)."""
        while not self.exhausted and self.frontier <= position:
            table = next(self.batches, None)
            if table is None:
                self.exhausted = True
                return
            starts = table["pos"].to_numpy()
            if starts[0] < self.frontier or np.any(np.diff(starts) < 0):
                raise ValueError(f"{self.source.path}: rows of {self.contig} are not in position order; "
                                 "re-convert the sample (its tables are written sorted)")
            self.frontier = int(starts[-1])
            self._hold(self.to_rows(table))

    def _hold(self, rows: pa.Table) -> None:
        bins = rows["bin"].to_numpy()
        order = np.argsort(bins, kind="stable")  # a split reference block's later pieces sit among later rows
        if np.any(order != np.arange(len(order))):
            rows, bins = rows.take(pa.array(order)), bins[order]
        starts = np.concatenate([[0], np.flatnonzero(bins[1:] != bins[:-1]) + 1])
        for start, length in zip(starts, np.diff(np.append(starts, len(bins))), strict=True):
            self.pending.setdefault(int(bins[start]), []).append(rows.slice(start, length))

    def take(self, bin: int) -> list[pa.Table]:
        """The rows of ``bin`` (complete once ``read_past`` passed the bin's last position)."""
        return self.pending.pop(bin, [])

    def next_bin(self) -> int | None:
        """The lowest bin this stream may still have rows for, or None when it has none left."""
        candidates = list(self.pending)
        if not self.exhausted:
            candidates.append(max(self.frontier, 0) // self.bin_size)
        return min(candidates, default=None)


def partitions_in_order(streams_of: Callable[[str], list[PartitionStream]], contigs: list[str],
                        bin_size: int) -> Iterator[tuple[str, int, pa.Table]]:
    """(contig, bin, rows) for every partition the streams have rows in, contigs in the given order and bins
    ascending. Rows keep stream order (the caller lists streams sample by sample, variants before blocks)."""
    for contig in contigs:
        streams = streams_of(contig)
        for stream in streams:
            stream.read_past(-1)
        bin = min((b for s in streams if (b := s.next_bin()) is not None), default=None)
        while bin is not None:
            last_position = (bin + 1) * bin_size - 1
            parts = []
            for stream in streams:
                stream.read_past(last_position)
                parts += stream.take(bin)
            if parts:
                yield contig, bin, pa.concat_tables(parts)
            bin = min((b for s in streams if (b := s.next_bin()) is not None), default=None)


SAMPLES_PER_PASS = 8
"""Samples read together. Each open sample costs ~25 MB of reader buffers, so a run of more samples
reads them in passes of this many, spills each pass's partitions to a local file (Arrow IPC, lz4) and
merges the passes partition by partition: memory stays that of one pass whatever the run's size."""


def spill(partitions: Iterator[tuple[str, int, pa.Table]], path: Path) -> list[tuple[str, int]]:
    """Write ``partitions`` to ``path``, one or more record batches each; the (contig, bin) of every batch."""
    keys: list[tuple[str, int]] = []
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    writer = None
    try:
        for contig, bin, rows in partitions:
            if writer is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pa.ipc.new_file(str(path), rows.schema, options=options)
            for batch in rows.combine_chunks().to_batches():  # one batch: a partition is a slice per stream
                writer.write_batch(batch)
                keys.append((contig, bin))
    finally:
        if writer is not None:
            writer.close()
    return keys


def merged_passes(spilled: list[tuple[Path, list[tuple[str, int]]]],
                  contig_order: Callable[[str], object] = str) -> Iterator[tuple[str, int, pa.Table]]:
    """The spilled passes' partitions in (contig, bin) order, each partition's rows in pass order."""
    readers = [(pa.ipc.open_file(pa.OSFile(str(path))), keys) for path, keys in spilled if keys]
    batches_of: list[dict[tuple[str, int], list[int]]] = []
    for _, keys in readers:
        index: dict[tuple[str, int], list[int]] = {}
        for position, key in enumerate(keys):
            index.setdefault(key, []).append(position)
        batches_of.append(index)
    every_key = sorted({key for index in batches_of for key in index}, key=lambda k: (contig_order(k[0]), k[1]))
    try:
        for contig, bin in every_key:
            batches = [reader.get_batch(position) for (reader, _), index in zip(readers, batches_of, strict=True)
                       for position in index.get((contig, bin), [])]
            yield contig, bin, pa.Table.from_batches(batches)
    finally:
        for path, _ in spilled:
            path.unlink(missing_ok=True)
