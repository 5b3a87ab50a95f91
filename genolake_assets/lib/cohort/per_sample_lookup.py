"""Every sample at a few markers, read from the per-sample tables: the cohort lookup's answer for a
lake that has no cohort table yet (``genolake convert`` writes only the per-sample tables).

So that the answers are the cohort lookup's (lib/cohort/lookup.py), each sample's rows at the markers
become cohort rows with the same ``cohort_rows`` the cohort is built with (reference blocks cut at bin
boundaries), are ordered as a cohort file orders them, and go through the same ``result_table``.
The contig spelling of a marker (``22`` or ``chr22``) resolves against the contigs the samples hold, as
it does against the cohort's partitions.

Cost: every sample's two footers per lookup, which is why ``genolake cohort`` exists. The files are
sorted by (contig, pos) with row-group statistics, so only the row groups whose statistics allow a
row at a marker are read.
"""

from __future__ import annotations

import bisect
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from genolake_assets.lib.cohort.layout import BIN_SIZE, SORT_KEYS, SOURCE_COLUMNS, cohort_rows
from genolake_assets.lib.cohort.lookup import LookupResult, contig_spellings, resolve_contig
from genolake_assets.lib.cohort.markers import Marker
from genolake_assets.lib.cohort.result import result_table
from genolake_assets.lib.cohort.sample_tokens import PER_SAMPLE_TABLES, per_sample_tables
from genolake_assets.lib.lake.layout import REFERENCE_BLOCKS_TABLE, VARIANTS_TABLE

# Footers are read by a few threads at once: on S3 each is a HEAD and a GET, dominated by latency.
THREADS = 16


def find_per_sample_tables(filesystem: pafs.FileSystem, root: str) -> dict[str, dict[str, str]]:
    """sample_id → {table: path} of the lake's per-sample Parquet files (paths as ``filesystem`` names them)."""
    base = root.rstrip("/")
    keys = {}
    for table in PER_SAMPLE_TABLES:
        selector = pafs.FileSelector(f"{base}/{table}", recursive=True, allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type == pafs.FileType.File:
                keys[info.path[len(base) + 1:] if base else info.path] = info.path
    return {sample: {table: keys[key] for table, key in tables.items()}
            for sample, tables in per_sample_tables(keys).items()}


def lookup_per_sample(markers: list[Marker], tables: dict[str, dict[str, str]], filesystem: pafs.FileSystem,
                      bin_size: int = BIN_SIZE, use_threads: bool = True) -> LookupResult:
    """Every sample of ``tables`` (from :func:`find_per_sample_tables`) at each marker, as ``lookup`` gives it."""
    started = time.perf_counter()
    parquet = ds.ParquetFileFormat()
    files = [(sample, table, path) for sample, paths in tables.items() for table, path in paths.items()]

    def footer(item: tuple[str, str, str]) -> ds.ParquetFileFragment:
        fragment = parquet.make_fragment(item[2], filesystem=filesystem)
        fragment.ensure_complete_metadata()
        return fragment

    fragments = _map(footer, files, use_threads)
    spellings = list(dict.fromkeys(s for marker in markers for s in contig_spellings(marker.contig)))
    present = {s for s in spellings if any(_holds_contig(fragment, s) for fragment in fragments)}
    located = [(marker, resolve_contig(marker.contig, present)) for marker in markers]
    loci = _Loci(located)

    def read(item: tuple[tuple[str, str, str], ds.ParquetFileFragment]) -> tuple[pa.Table | None, int]:
        (_, table, _), fragment = item
        blocks = table == REFERENCE_BLOCKS_TABLE
        groups = loci.row_groups(fragment.metadata, blocks)
        if not groups:
            return None, 0
        names = set(fragment.physical_schema.names)
        rows = fragment.subset(row_group_ids=groups).to_table(columns=[c for c in SOURCE_COLUMNS if c in names])
        return rows.filter(loci.covered(rows, blocks)), len(groups)

    read_back = _map(read, list(zip(files, fragments)), use_threads)
    by_sample: dict[str, dict[str, pa.Table]] = {}
    for (sample, table, _), (rows, _) in zip(files, read_back):
        if rows is not None and rows.num_rows:
            by_sample.setdefault(sample, {})[table] = rows
    parts = [cohort_rows(found.get(VARIANTS_TABLE), found.get(REFERENCE_BLOCKS_TABLE), bin_size)
             for found in by_sample.values()]
    # A cohort file's order, (pos, sample_id): which of a sample's rows comes first decides ties.
    rows = pa.concat_tables(parts).sort_by(SORT_KEYS) if parts else None
    return LookupResult(table=result_table(located, pa.array(sorted(tables), pa.string()), rows),
                        files_opened=len(files), row_groups_read=sum(n for _, n in read_back),
                        row_groups_total=sum(f.num_row_groups for f in fragments),
                        seconds=time.perf_counter() - started)


class _Loci:
    """The markers' (contig, pos), to choose row groups by their statistics and rows by their values.

    A variant row answers for its own position only (lib/cohort/result.py), however long its ref; a
    reference block for every position from pos to end (pos + len(ref) - 1 when end is null, as in
    ``cohort_rows``)."""

    def __init__(self, located: list[tuple[Marker, str]]):
        positions: dict[str, set[int]] = {}
        for marker, contig in located:
            positions.setdefault(contig, set()).add(marker.pos)
        self.positions = {contig: sorted(found) for contig, found in sorted(positions.items())}
        self.contigs = pa.array(list(self.positions), pa.string())
        self.keys = np.array([_key(code, pos) for code, found in enumerate(self.positions.values()) for pos in found],
                             np.int64)  # sorted: contigs in code order, positions ascending

    def row_groups(self, metadata, blocks: bool) -> list[int]:
        """Row groups whose statistics allow a row at a marker (a statistic missing: no pruning by it)."""
        columns = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
        wanted = []
        for i in range(metadata.num_row_groups):
            group = metadata.row_group(i)
            contig, pos = _bounds(group, columns.get("contig")), _bounds(group, columns.get("pos"))
            upper = pos[1] if pos else None
            if blocks:  # a block reaches its end (or pos + len(ref) - 1 when end is null: no bound from end then)
                end = _bounds(group, columns.get("end"))
                upper = max(upper, end[1]) if upper is not None and end and not end[2] else None
            for name, positions in self.positions.items():
                if contig and not contig[0] <= name <= contig[1]:
                    continue
                first = bisect.bisect_left(positions, pos[0]) if pos else 0
                if first < len(positions) and (upper is None or positions[first] <= upper):
                    wanted.append(i)
                    break
        return wanted

    def covered(self, rows: pa.Table, blocks: bool) -> pa.Array:
        """Per row: does it cover a marker."""
        code = pc.fill_null(pc.index_in(rows["contig"], value_set=self.contigs), -1).to_numpy().astype(np.int64)
        pos = rows["pos"].to_numpy().astype(np.int64)
        start = _key(code, pos)
        if not blocks:
            return pa.array(np.isin(start, self.keys) & (code >= 0))
        implied = pos + pc.utf8_length(rows["ref"]).to_numpy(zero_copy_only=False).astype(np.int64) - 1
        end = rows["end"] if "end" in rows.column_names else pa.nulls(rows.num_rows, pa.int32())
        last = np.where(end.is_null().to_numpy(zero_copy_only=False), implied,
                        pc.fill_null(end, 0).to_numpy().astype(np.int64))
        hit = (np.searchsorted(self.keys, _key(code, np.maximum(last, pos)), side="right")
               > np.searchsorted(self.keys, start, side="left"))
        return pa.array(hit & (code >= 0))


def _key(contig_code, pos):
    """One sortable integer per (contig, pos), contigs by their code in ``_Loci.contigs``."""
    return contig_code * (1 << 32) + pos


def _bounds(group, column: int | None) -> tuple | None:
    """(min, max, has nulls) of a column in a row group, or None without statistics."""
    statistics = group.column(column).statistics if column is not None else None
    if statistics is None or not statistics.has_min_max:
        return None
    return statistics.min, statistics.max, statistics.null_count != 0


def _holds_contig(fragment: ds.ParquetFileFragment, contig: str) -> bool:
    """Whether the file has a row of ``contig``, mostly from the statistics: a row group's min and max
    are values it holds; only a contig sorting strictly between them needs that row group's column."""
    metadata = fragment.metadata
    columns = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
    unsure = []
    for i in range(metadata.num_row_groups):
        bounds = _bounds(metadata.row_group(i), columns.get("contig"))
        if bounds and contig in bounds[:2]:
            return True
        if bounds is None or bounds[0] < contig < bounds[1]:
            unsure.append(i)
    if not unsure:
        return False
    return fragment.subset(row_group_ids=unsure).to_table(columns=["contig"],
                                                          filter=pc.field("contig") == contig).num_rows > 0


def _map(function, items: list, use_threads: bool) -> list:
    if not use_threads or len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(THREADS, len(items))) as pool:
        return list(pool.map(function, items))
