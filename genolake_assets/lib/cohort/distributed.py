"""The cohort update cut into tasks for a distributed engine (spark/cohort_update.py on EMR or local Spark).

The in-process update (layout.update_cohort) streams every partition through one process. Here the same
steps are spread over tasks, with the same code for each step:

1. *read*: one task per per-sample file turns its rows into cohort rows (``read_cohort_rows``, the same
   conversion as the in-process sweep);
2. the engine shuffles the rows by (contig, bin) and sorts each task's share by ``TASK_ORDER``, so a task
   sees each partition's rows together (the engine's sort spills to disk: memory is one batch);
3. *fold*: a task folds each of its partitions with ``layout.fold_partition`` (append a delta file, or
   compact, or keep), writes the new files straight into the lake and returns what it did
   (``fold_sorted_rows``);
4. the driver assembles the tasks' outcomes into the ``CohortUpdate`` the in-process update would have
   returned (``assemble_update``). Publishing it (manifest switch, retiring folders) is left to
   lib/cohort/build.py, as for the in-process update.

With drops, every existing partition must be looked at (the manifest does not say which samples a
partition holds): one marker row per existing partition takes each of them to a fold task.

No Spark and no Dagster here: tasks get Arrow batches and plain values.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from genolake_assets.lib.cohort.layout import (
    COHORT_SCHEMA,
    REFERENCE_BLOCK,
    SORT_KEYS,
    SOURCE_COLUMNS,
    VARIANT,
    CohortRun,
    CohortState,
    CohortUpdate,
    PartitionState,
    fold_partition,
    partition_key,
    to_cohort_rows,
)
from genolake_assets.lib.cohort.sweep import BATCH_ROWS
from genolake_assets.lib.lake.identifiers import require_safe_key, require_safe_sample_id
from genolake_assets.lib.lake.staged_tables import filesystem_for

EXISTING_PARTITION = "existing_partition"
"""``kind`` of the marker row that brings an existing partition to a fold task when samples are dropped."""
TASK_ORDER = [("contig", "ascending"), ("bin", "ascending"), *SORT_KEYS]
"""How the engine sorts each task's rows: partitions together, then the cohort file's own order."""
OUTCOME_SCHEMA = pa.schema([pa.field("outcome", pa.string())])


@dataclass
class SampleFiles:
    sample_id: str
    token: str
    variants_key: str | None
    reference_blocks_key: str | None


@dataclass
class CohortJob:
    """What the distributed update is asked to do; the job's only input (JSON next to its result)."""

    lake_root: str
    """The lake's root: ``s3://bucket/prefix`` or a local folder."""
    previous: CohortState
    samples: list[SampleFiles]
    drop: list[str]
    max_files: int
    result_key: str

    def to_json(self) -> str:
        return json.dumps({"lake_root": self.lake_root, "previous": json.loads(self.previous.to_json()),
                           "samples": [vars(sample) for sample in self.samples], "drop": self.drop,
                           "max_files": self.max_files, "result_key": self.result_key})

    @classmethod
    def from_json(cls, text: str) -> CohortJob:
        raw = json.loads(text)
        samples = [SampleFiles(**entry) for entry in raw["samples"]]
        for sample in samples:
            require_safe_sample_id(sample.sample_id)
            for key in (sample.variants_key, sample.reference_blocks_key):
                if key is not None:
                    require_safe_key(key)
        for sample_id in raw["drop"]:
            require_safe_sample_id(sample_id)
        max_files = raw["max_files"]
        if isinstance(max_files, bool) or not isinstance(max_files, int) or max_files < 1:
            raise ValueError(f"max_files must be an integer >= 1, got {max_files!r}")
        return cls(lake_root=str(raw["lake_root"]), previous=CohortState.from_json(json.dumps(raw["previous"])),
                   samples=samples, drop=list(raw["drop"]), max_files=max_files,
                   result_key=require_safe_key(raw["result_key"]))

    def source_files(self) -> list[tuple[str, str, str]]:
        """(sample_id, kind, key) of every per-sample file to read."""
        return [(sample.sample_id, kind, key) for sample in self.samples
                for kind, key in ((VARIANT, sample.variants_key), (REFERENCE_BLOCK, sample.reference_blocks_key))
                if key is not None]

    def dropped(self) -> list[str]:
        return sorted(set(self.drop) & set(self.previous.samples))

    def next_samples(self) -> dict[str, str]:
        samples = {k: v for k, v in self.previous.samples.items() if k not in set(self.drop)}
        samples.update({sample.sample_id: sample.token for sample in self.samples})
        return samples


class _Lake:
    """The lake's files as a task sees them: local paths as they are, objects downloaded to a work folder."""

    def __init__(self, root: str, work_dir: Path):
        self.fs, self.base = filesystem_for(root)
        self.base = self.base.rstrip("/")
        self.work_dir = work_dir
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, key: str) -> str:
        return f"{self.base}/{require_safe_key(key)}"

    def fetch(self, key: str) -> Path:
        if self.local:
            return Path(self.path(key))
        target = self.work_dir / "fetched" / key
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(self.path(key), str(target), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
        return target

    def put(self, local: Path, key: str) -> None:
        target = self.path(key)
        if self.local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(str(local), target, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs)


def read_cohort_rows(lake_root: str, sample_id: str, kind: str, key: str, bin_size: int) -> Iterator[pa.RecordBatch]:
    """One per-sample file's rows as cohort rows (bins set, reference blocks cut at bin boundaries)."""
    fs, base = filesystem_for(lake_root)
    convert = to_cohort_rows(sample_id, kind, bin_size)
    with fs.open_input_file(f"{base.rstrip('/')}/{require_safe_key(key)}") as source:
        file = pq.ParquetFile(source)
        columns = [name for name in SOURCE_COLUMNS if name in file.schema_arrow.names]
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield from convert(pa.Table.from_batches([batch])).to_batches()


def existing_partition_markers(job: CohortJob) -> pa.Table:
    """One marker row per existing partition when samples are dropped (else none): see the module doc."""
    keys = sorted((p.contig, p.bin) for p in job.previous.partitions.values()) if job.dropped() else []
    n = len(keys)
    columns = {field.name: pa.nulls(n, field.type) for field in COHORT_SCHEMA}
    columns.update(contig=pa.array([c for c, _ in keys], pa.string()), bin=pa.array([b for _, b in keys], pa.int32()),
                   pos=pa.repeat(pa.scalar(0, pa.int32()), n), end=pa.repeat(pa.scalar(0, pa.int32()), n),
                   sample_id=pa.repeat(pa.scalar("", pa.string()), n),
                   kind=pa.repeat(pa.scalar(EXISTING_PARTITION, pa.string()), n))
    return pa.table(columns, schema=COHORT_SCHEMA)


def _group_starts(table: pa.Table) -> list[int]:
    """Row indexes where a new (contig, bin) begins (0 first)."""
    n = table.num_rows
    if n < 2:
        return [0]
    contig, bins = table["contig"], table["bin"]
    changed = pc.or_(pc.not_equal(contig.slice(1), contig.slice(0, n - 1)),
                     pc.not_equal(bins.slice(1), bins.slice(0, n - 1)))
    return [0, *(np.flatnonzero(changed.to_numpy()) + 1).tolist()]


def _partitions_of(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[str, int, pa.Table]]:
    """Consecutive (contig, bin) groups of rows sorted by ``TASK_ORDER``; one group is held at a time."""
    key, held = None, []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        starts = _group_starts(table)
        for start, end in zip(starts, [*starts[1:], table.num_rows], strict=True):
            group = (table["contig"][start].as_py(), table["bin"][start].as_py())
            if key is not None and group != key:
                if group < key:
                    raise ValueError(f"rows of partition {group} arrived after {key}: the task's rows are not sorted")
                yield *key, pa.concat_tables(held)
                held = []
            key = group
            held.append(table.slice(start, end - start))
    if key is not None:
        yield *key, pa.concat_tables(held)


def fold_sorted_rows(job: CohortJob, batches: Iterable[pa.RecordBatch], work_root: str | None = None
                     ) -> Iterator[pa.RecordBatch]:
    """A fold task: fold each partition of ``batches`` (sorted by ``TASK_ORDER``), write its new files into the
    lake, and yield one ``OUTCOME_SCHEMA`` row per partition (a CohortUpdate of that partition, as JSON)."""
    dropped = pa.array(job.dropped(), pa.string())
    if work_root is not None:
        Path(work_root).mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="cohort-fold-", dir=work_root))
    try:
        lake = _Lake(job.lake_root, work_dir)
        for contig, bin, rows in _partitions_of(batches):
            rows = rows.filter(pc.not_equal(rows["kind"], EXISTING_PARTITION))
            appended = rows.select(COHORT_SCHEMA.names).cast(COHORT_SCHEMA) if rows.num_rows else None
            out_dir = work_dir / "out"
            run = CohortRun(job.previous, CohortState(version=job.previous.version + 1,
                                                      bin_size=job.previous.bin_size), out_dir, dropped)
            fold_partition(run, contig, bin, appended, lake.fetch, job.max_files)
            for key, local in run.update.uploads.items():
                lake.put(local, key)
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.rmtree(work_dir / "fetched", ignore_errors=True)
            yield pa.RecordBatch.from_pylist([{"outcome": json.dumps(_outcome(run.update))}], schema=OUTCOME_SCHEMA)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _outcome(update: CohortUpdate) -> dict:
    return {"partitions": [p.to_dict() for p in update.state.partitions.values()],
            "written": sorted(update.uploads), "retired": update.retired,
            "appended": update.appended_partitions, "compacted": update.compacted_partitions,
            "removed": update.removed_partitions, "rows_added": update.rows_added,
            "rows_removed": update.rows_removed, "bytes_written": update.bytes_written}


@dataclass
class DistributedUpdate:
    """The assembled update, and the keys the tasks wrote (already in the lake: nothing to upload)."""

    update: CohortUpdate
    written: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        update = self.update
        return json.dumps({"state": json.loads(update.state.to_json()), "written": self.written,
                           "retired": update.retired, "appended": update.appended_partitions,
                           "compacted": update.compacted_partitions, "removed": update.removed_partitions,
                           "rows_added": update.rows_added, "rows_removed": update.rows_removed,
                           "bytes_written": update.bytes_written})

    @classmethod
    def from_json(cls, text: str) -> DistributedUpdate:
        raw = json.loads(text)
        state = CohortState.from_json(json.dumps(raw["state"]))
        written = [require_safe_key(key) for key in raw["written"]]
        update = CohortUpdate(state=state, retired=list(state.retired), appended_partitions=raw["appended"],
                              compacted_partitions=raw["compacted"], removed_partitions=raw["removed"],
                              rows_added=raw["rows_added"], rows_removed=raw["rows_removed"],
                              bytes_written=raw["bytes_written"])
        return cls(update=update, written=written)


def assemble_update(job: CohortJob, outcomes: Iterable[str]) -> DistributedUpdate:
    """The tasks' outcomes (JSON) as the update the in-process build would return for ``job``."""
    previous = job.previous
    state = CohortState(version=previous.version + 1, bin_size=previous.bin_size, samples=job.next_samples())
    update = CohortUpdate(state=state)
    written: list[str] = []
    folded: dict[str, dict] = {}
    for text in outcomes:
        outcome = json.loads(text)
        for entry in outcome["partitions"]:
            partition = PartitionState.from_dict(entry)
            if partition.key in folded:
                raise ValueError(f"partition {partition.key} was folded by two tasks")
            folded[partition.key] = entry
            state.partitions[partition.key] = partition
        for key in outcome["removed"]:
            folded.setdefault(key, {})
        written += outcome["written"]
        update.retired += outcome["retired"]
        update.appended_partitions += outcome["appended"]
        update.compacted_partitions += outcome["compacted"]
        update.removed_partitions += outcome["removed"]
        update.rows_added += outcome["rows_added"]
        update.rows_removed += outcome["rows_removed"]
        update.bytes_written += outcome["bytes_written"]
    for key, partition in previous.partitions.items():
        if key not in folded:  # untouched: kept as it is
            state.partitions[key] = PartitionState(partition.contig, partition.bin, partition.gen, partition.rows,
                                                   list(partition.files))
    state.partitions = {key: state.partitions[key] for key in sorted(state.partitions, key=_locus_order)}
    for names in (update.appended_partitions, update.compacted_partitions, update.removed_partitions):
        names.sort(key=_locus_order)
    update.retired.sort()
    state.retired = list(update.retired)
    return DistributedUpdate(update=update, written=sorted(written))


def _locus_order(key: str) -> tuple[str, int]:
    contig, _, bin = key.rpartition("/")
    return contig, int(bin)


__all__ = ["EXISTING_PARTITION", "OUTCOME_SCHEMA", "TASK_ORDER", "CohortJob", "DistributedUpdate", "SampleFiles",
           "assemble_update", "existing_partition_markers", "fold_sorted_rows", "partition_key", "read_cohort_rows"]
