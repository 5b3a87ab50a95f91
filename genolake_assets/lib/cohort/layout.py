"""The locus-ordered cohort table: rows, files and updates (docs/cohort-layout.md).

``update_cohort`` is pure: it reads local per-sample and cohort files and writes new local files
plus a new manifest; uploading, publishing the manifest and deleting retired folders is the
caller's job. Memory: new samples are read forward one partition at a time (lib/cohort/sweep.py: per
sample a batch of rows, per run one partition's rows), and a partition is compacted holding that
partition's rows; neither grows with the size of the samples.

Two consequences of the agreed design worth knowing:
* a reference block cut at a bin boundary keeps ``ref`` only on its first piece; the later pieces
  have a null ``ref`` because the reference base at the cut is not in the per-sample tables;
* variants are not split, so a deletion that crosses a bin boundary is only in its start bin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from genolake_assets.lib.cohort import sweep
from genolake_assets.lib.cohort.state import (
    BIN_SIZE,
    COHORT_PREFIX,
    STATE_KEY,
    CohortState,
    PartitionState,
    contig_folder_name,
    parse_folder,
    partition_folder,
    partition_key,
)
from genolake_assets.lib.cohort.sweep import PartitionStream, SortedFile, merged_passes, partitions_in_order, spill
from genolake_assets.lib.lake.identifiers import require_safe_sample_id
from genolake_assets.lib.lake.parquet_output import DELTA_COLUMNS, ZSTD_LEVEL
from genolake_assets.lib.lake.registry import SAMPLE_COLUMNS

__all__ = [
    "BIN_SIZE", "COHORT_PREFIX", "COHORT_SCHEMA", "ROW_GROUP_ROWS", "STATE_KEY", "CohortRun", "CohortState",
    "CohortUpdate", "PartitionState", "SampleInput", "cohort_rows", "fold_partition", "partition_folder",
    "partition_key", "split_by_partition", "to_cohort_rows", "update_cohort", "write_cohort_file",
]

# Small enough that a marker lookup decodes little more than the rows near its position.
ROW_GROUP_ROWS = 16_384

# Named as Parquet names list elements, so the schema read back from a file equals COHORT_SCHEMA.
GENOTYPE = pa.list_(pa.field("element", pa.int16()))
COHORT_SCHEMA = pa.schema([
    pa.field("contig", pa.string(), nullable=False),
    pa.field("bin", pa.int32(), nullable=False),
    pa.field("pos", pa.int32(), nullable=False),
    pa.field("end", pa.int32(), nullable=False),
    pa.field("ref", pa.string()),
    pa.field("alt", pa.string()),
    pa.field("variant_id", pa.string()),
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("gt", GENOTYPE),
    pa.field("gt_phased", pa.bool_()),
    pa.field("gq", pa.int32()),
    pa.field("dp", pa.int32()),
])

COHORT_COLUMNS = {  # docs/cohort-layout.md
    "contig": "As in the VCF; partition key",
    "bin": "pos // 1,000,000; partition key",
    "pos": "1-based start",
    "end": "Last position covered",
    "ref": "Reference allele",
    "alt": "ALT allele, null for reference blocks",
    "variant_id": "contig:pos:ref:alt, null for reference blocks",
    "sample_id": SAMPLE_COLUMNS["sample_id"],
    "kind": "variant or reference_block",
    "gt": "Split genotype (null elements are no-call alleles)",
    "gt_phased": "The GT is phased",
    "gq": "FORMAT GQ when the sample has it",
    "dp": "FORMAT DP when the sample has it",
}
"""The UI's one line per column (Dagster column schema)."""

VARIANT = "variant"
REFERENCE_BLOCK = "reference_block"
# The per-sample columns the cohort is built from; read only these.
SOURCE_COLUMNS = ("sample_id", "contig", "pos", "end", "ref", "alt", "variant_id", "gt", "gt_phased",
                  "fmt_gq", "fmt_dp")
SORT_KEYS = [("pos", "ascending"), ("sample_id", "ascending"), ("kind", "descending"), ("alt", "ascending"),
             ("end", "ascending")]
"""A cohort file's row order: by position, then sample; a sample's variants before its reference blocks and
split alleles by ALT, so that every engine writes the same order (lib/cohort/distributed.py)."""
DEFAULT_MAX_FILES_PER_PARTITION = 8
"""Compact a locus partition once it holds more files than this (each update adds a delta file)."""
DEFAULT_MAX_SAMPLES_PER_RUN = 500
"""New samples one cohort update folds in; the rest follow in the next run."""


def _column_or_null(table: pa.Table, name: str, type_: pa.DataType) -> pa.Array | pa.ChunkedArray:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type_)
    column = table[name]
    if column.type == type_:
        return column
    if pa.types.is_integer(type_) and not pa.types.is_integer(column.type):
        return pa.nulls(table.num_rows, type_)  # e.g. a GQ declared Float in some caller's header
    return column.cast(type_)


def _rows_of(table: pa.Table, kind: str) -> pa.Table:
    """Unsplit cohort rows (bin still 0) of one per-sample table."""
    n = table.num_rows
    pos = table["pos"].cast(pa.int32())
    ref = table["ref"].cast(pa.string())
    implied_end = pc.subtract(pc.add(pos, pc.utf8_length(ref).cast(pa.int32())), 1)
    end = pc.coalesce(_column_or_null(table, "end", pa.int32()), implied_end)
    if kind == VARIANT:
        alt = _column_or_null(table, "alt", pa.string())
        variant_id = table["variant_id"] if "variant_id" in table.column_names else pc.binary_join_element_wise(
            table["contig"], pos.cast(pa.string()), ref, alt, ":")
    else:
        alt = variant_id = pa.nulls(n, pa.string())
    return pa.table({
        "contig": table["contig"].cast(pa.string()),
        "bin": pa.nulls(n, pa.int32()),
        "pos": pos,
        "end": end,
        "ref": ref,
        "alt": alt,
        "variant_id": variant_id.cast(pa.string()),
        "sample_id": table["sample_id"].cast(pa.string()),
        "kind": pa.repeat(pa.scalar(kind), n),
        "gt": _column_or_null(table, "gt", GENOTYPE),
        "gt_phased": _column_or_null(table, "gt_phased", pa.bool_()),
        "gq": _column_or_null(table, "fmt_gq", pa.int32()),
        "dp": _column_or_null(table, "fmt_dp", pa.int32()),
    })


def _with_bins(rows: pa.Table, bin_size: int, split: bool) -> pa.Table:
    """Set ``bin``; with ``split``, cut rows crossing bin boundaries into one clipped row per bin."""
    pos = rows["pos"].to_numpy().astype(np.int64)
    end = np.maximum(rows["end"].to_numpy().astype(np.int64), pos)
    first_bin = pos // bin_size
    pieces = end // bin_size - first_bin + 1 if split else np.ones(len(pos), np.int64)
    if np.all(pieces == 1):
        return rows.set_column(1, "bin", pa.array(first_bin, pa.int32()))
    source = np.repeat(np.arange(len(pos)), pieces)
    piece = np.arange(len(source)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    bins = first_bin[source] + piece
    new_pos = np.maximum(pos[source], bins * bin_size)
    new_end = np.minimum(end[source], (bins + 1) * bin_size - 1)
    rows = rows.take(pa.array(source))
    first_piece = pa.array(piece == 0)
    rows = rows.set_column(1, "bin", pa.array(bins, pa.int32()))
    rows = rows.set_column(2, "pos", pa.array(new_pos, pa.int32()))
    rows = rows.set_column(3, "end", pa.array(new_end, pa.int32()))
    return rows.set_column(4, "ref", pc.if_else(first_piece, rows["ref"], pa.scalar(None, pa.string())))


def cohort_rows(variants: pa.Table | None, reference_blocks: pa.Table | None,
                bin_size: int = BIN_SIZE) -> pa.Table:
    """One sample's per-sample tables as COHORT_SCHEMA rows, reference blocks cut at bin boundaries."""
    parts = []
    if variants is not None and variants.num_rows:
        parts.append(_with_bins(_rows_of(variants, VARIANT), bin_size, split=False))
    if reference_blocks is not None and reference_blocks.num_rows:
        parts.append(_with_bins(_rows_of(reference_blocks, REFERENCE_BLOCK), bin_size, split=True))
    if not parts:
        return COHORT_SCHEMA.empty_table()
    return pa.concat_tables([p.cast(COHORT_SCHEMA) for p in parts])


def split_by_partition(rows: pa.Table) -> dict[tuple[str, int], pa.Table]:
    """Rows grouped by (contig, bin); each group is a slice of one reordered copy of ``rows``."""
    if rows.num_rows == 0:
        return {}
    contigs = pc.unique(rows["contig"])
    codes = pc.index_in(rows["contig"], contigs).to_numpy().astype(np.int64)
    bins = rows["bin"].to_numpy().astype(np.int64)
    group = codes * (int(bins.max()) + 1) + bins
    order = np.argsort(group, kind="stable")
    ordered = rows.take(pa.array(order))
    group = group[order]
    starts = np.concatenate([[0], np.flatnonzero(group[1:] != group[:-1]) + 1])
    lengths = np.diff(np.append(starts, len(group)))
    names = contigs.to_pylist()
    return {(names[codes[order[s]]], int(bins[order[s]])): ordered.slice(s, n) for s, n in zip(starts, lengths)}


def write_cohort_file(table: pa.Table, path: Path) -> int:
    """Write rows sorted by (pos, sample_id) with the cohort's Parquet settings; returns the file's bytes."""
    table = table.select(COHORT_SCHEMA.names).cast(COHORT_SCHEMA).sort_by(SORT_KEYS)
    delta_columns = [name for name in COHORT_SCHEMA.names if name in DELTA_COLUMNS]
    dictionary_columns = [f"{f.name}.list.element" if pa.types.is_list(f.type) else f.name
                          for f in COHORT_SCHEMA if f.name not in delta_columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, COHORT_SCHEMA, compression="zstd", compression_level=ZSTD_LEVEL,
                          use_dictionary=dictionary_columns,
                          column_encoding={name: "DELTA_BINARY_PACKED" for name in delta_columns},
                          write_statistics=True, write_page_index=True) as writer:
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    return path.stat().st_size


@dataclass
class SampleInput:
    sample_id: str
    token: str
    variants_path: Path | None
    reference_blocks_path: Path | None


@dataclass
class CohortUpdate:
    state: CohortState
    uploads: dict[str, Path] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    appended_partitions: list[str] = field(default_factory=list)
    compacted_partitions: list[str] = field(default_factory=list)
    # Partitions left without rows by drops: gone from the manifest, their folder retired.
    removed_partitions: list[str] = field(default_factory=list)
    rows_added: int = 0
    rows_removed: int = 0
    bytes_written: int = 0


def to_cohort_rows(sample_id: str, kind: str, bin_size: int) -> Callable[[pa.Table], pa.Table]:
    """Per-sample rows of one table → COHORT_SCHEMA rows with bins (blocks cut at bin boundaries)."""

    def convert(table: pa.Table) -> pa.Table:
        rows = _with_bins(_rows_of(table, kind), bin_size, split=kind == REFERENCE_BLOCK).cast(COHORT_SCHEMA)
        if not pc.all(pc.equal(rows["sample_id"], sample_id)).as_py():
            raise ValueError(f"the per-sample files of {sample_id!r} hold rows of another sample_id")
        return rows

    return convert


def _new_partitions(samples: list[SampleInput], bin_size: int, scratch: Path) -> Iterator[tuple[str, int, pa.Table]]:
    """The new samples' rows, one (contig, bin) partition at a time in sorted order (lib/cohort/sweep.py):
    read together when they are few, else in passes of ``SAMPLES_PER_PASS`` spilled to ``scratch``."""
    files = [(sample, kind, SortedFile(path, SOURCE_COLUMNS)) for sample in samples
             for kind, path in ((VARIANT, sample.variants_path), (REFERENCE_BLOCK, sample.reference_blocks_path))
             if path is not None]
    contigs = sorted({contig for _, _, file in files for contig in file.groups_of})
    for contig in contigs:
        partition_folder(contig, 0, 1)  # refuse unusable contigs before anything is written

    def one_pass(chosen: set[str]) -> Iterator[tuple[str, int, pa.Table]]:
        def streams_of(contig: str) -> list[PartitionStream]:
            return [PartitionStream(file, contig, to_cohort_rows(sample.sample_id, kind, bin_size), bin_size)
                    for sample, kind, file in files if contig in file.groups_of and sample.sample_id in chosen]

        return partitions_in_order(streams_of, contigs, bin_size)

    ids = [sample.sample_id for sample in samples]
    if len(ids) <= sweep.SAMPLES_PER_PASS:
        return one_pass(set(ids))
    passes = [set(ids[start:start + sweep.SAMPLES_PER_PASS]) for start in range(0, len(ids), sweep.SAMPLES_PER_PASS)]
    spilled = []
    for number, chosen in enumerate(passes):
        path = scratch / f"pass-{number:05d}.arrow"
        spilled.append((path, spill(one_pass(chosen), path)))
    return merged_passes(spilled)


def _merged(existing: list[tuple[str, int]], new: Iterator[tuple[str, int, pa.Table]]
            ) -> Iterator[tuple[str, int, pa.Table | None]]:
    """Every partition, existing or new, in (contig, bin) order, with its new rows (None if it has none)."""
    pending = next(new, None)
    for key in existing:
        while pending is not None and pending[:2] < key:
            yield pending
            pending = next(new, None)
        if pending is not None and pending[:2] == key:
            yield pending
            pending = next(new, None)
        else:
            yield *key, None
    while pending is not None:
        yield pending
        pending = next(new, None)


def _check_samples(state: CohortState, new_samples: list[SampleInput], drop: set[str], max_files: int) -> None:
    if max_files < 1:
        raise ValueError(f"max_files must be at least 1, got {max_files}")
    seen: set[str] = set()
    for sample in new_samples:
        require_safe_sample_id(sample.sample_id)
        if sample.sample_id in seen:
            raise ValueError(f"sample {sample.sample_id!r} is given twice")
        if sample.sample_id in state.samples and sample.sample_id not in drop:
            raise ValueError(f"sample {sample.sample_id!r} is already in the cohort; drop it to replace it")
        seen.add(sample.sample_id)


def _first_gen(state: CohortState, contig: str, bin: int) -> int:
    """1, unless that would reuse a folder the previous version retired (it is about to be deleted)."""
    retired = [gen for c, b, gen in map(parse_folder, state.retired) if (c, b) == (contig_folder_name(contig), bin)]
    return max(retired, default=0) + 1


def _holds_any(path: Path, sample_ids: pa.Array) -> bool:
    column = pq.read_table(path, columns=["sample_id"])["sample_id"]
    return pc.any(pc.is_in(column, value_set=sample_ids)).as_py() or False


class CohortRun:
    """One update's bookkeeping: the next state, new files, retired folders, counters."""

    def __init__(self, previous: CohortState, next_state: CohortState, out_dir: Path, dropped: pa.Array):
        self.previous = previous
        self.update = CohortUpdate(state=next_state)
        self.out_dir = out_dir
        self.dropped = dropped

    def _write(self, table: pa.Table, folder: str, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}.parquet"
        local = self.out_dir / folder / name
        self.update.bytes_written += write_cohort_file(table, local)
        self.update.uploads[folder + name] = local
        return name

    def _set(self, partition: PartitionState) -> None:
        self.update.state.partitions[partition.key] = partition

    def append(self, current: PartitionState | None, contig: str, bin: int, rows: pa.Table) -> None:
        if current is None:
            current = PartitionState(contig, bin, _first_gen(self.previous, contig, bin), 0, [])
        name = self._write(rows, current.folder, "delta")
        self._set(PartitionState(contig, bin, current.gen, current.rows + rows.num_rows, current.files + [name]))
        self.update.appended_partitions.append(current.key)

    def compact(self, current: PartitionState, local_files: list[Path], appended: pa.Table | None) -> None:
        """Merge a partition's live files (minus dropped samples) and its new rows into gen + 1."""
        parts = []
        for path in local_files:
            table = pq.read_table(path, schema=COHORT_SCHEMA)
            if len(self.dropped):
                kept = table.filter(pc.invert(pc.is_in(table["sample_id"], value_set=self.dropped)))
                self.update.rows_removed += table.num_rows - kept.num_rows
                table = kept
            parts.append(table)
        merged = pa.concat_tables(parts + ([appended] if appended is not None else []))
        self.update.retired.append(current.folder)
        if merged.num_rows == 0:
            self.update.removed_partitions.append(current.key)
            return
        gen = current.gen + 1
        name = self._write(merged, partition_folder(current.contig, current.bin, gen), "compact")
        self._set(PartitionState(current.contig, current.bin, gen, merged.num_rows, [name]))
        self.update.compacted_partitions.append(current.key)

    def keep(self, current: PartitionState) -> None:
        self._set(PartitionState(current.contig, current.bin, current.gen, current.rows, list(current.files)))


def unlisted_keys(state: CohortState, keys: Iterable[str]) -> list[str]:
    """The cohort objects among ``keys`` that ``state`` neither lists nor keeps for readers of the previous
    version (its retired folders): what a writer that died mid-upload left. Folder readers (Glue, Athena)
    would count their rows; the writer removes them before it writes."""
    listed = {key for partition in state.partitions.values() for key in state.live_keys(partition)}
    kept = tuple(state.retired)
    return sorted(key for key in keys if key.startswith(COHORT_PREFIX) and key not in listed
                  and not (kept and key.startswith(kept)))


def update_cohort(state: CohortState, new_samples: list[SampleInput], drop: set[str],
                  fetch: Callable[[str], Path], out_dir: Path,
                  max_files: int = DEFAULT_MAX_FILES_PER_PARTITION) -> CohortUpdate:
    """Append new samples as one delta file per touched partition; compact where needed (see module doc).

    With drops, every partition's files are fetched to find the dropped samples' rows: the manifest
    does not say which samples a partition holds.
    """
    _check_samples(state, new_samples, drop, max_files)
    new_partitions = _new_partitions(new_samples, state.bin_size, Path(out_dir) / "_passes")
    dropped = pa.array(sorted(set(drop) & set(state.samples)), pa.string())
    samples = {k: v for k, v in state.samples.items() if k not in drop}
    samples.update({s.sample_id: s.token for s in new_samples})
    run = CohortRun(state, CohortState(version=state.version + 1, bin_size=state.bin_size, samples=samples),
               Path(out_dir), dropped)

    existing = sorted((p.contig, p.bin) for p in state.partitions.values())
    for contig, bin, appended in _merged(existing, new_partitions):
        fold_partition(run, contig, bin, appended, fetch, max_files)
    run.update.state.retired = list(run.update.retired)
    return run.update


def fold_partition(run: CohortRun, contig: str, bin: int, appended: pa.Table | None,
                   fetch: Callable[[str], Path], max_files: int) -> None:
    """One partition's step of an update: append ``appended`` (its new rows, or None), compact it, or keep it.

    The in-process update calls it for every partition in order; the distributed build
    (lib/cohort/distributed.py) calls it in the task that holds the partition's rows."""
    run.update.rows_added += appended.num_rows if appended is not None else 0
    current = run.previous.partitions.get(partition_key(contig, bin))
    if current is None:
        if appended is not None:
            run.append(None, contig, bin, appended)
        return
    dropped = run.dropped
    local_files = [fetch(key) for key in run.previous.live_keys(current)] if len(dropped) else []
    holds_dropped = any(_holds_any(path, dropped) for path in local_files)
    if holds_dropped or len(current.files) + (appended is not None) > max_files:
        run.compact(current, local_files or [fetch(key) for key in run.previous.live_keys(current)], appended)
    elif appended is not None:
        run.append(current, contig, bin, appended)
    else:
        run.keep(current)
