"""ClinVar (``variant_summary.txt(.gz)`` or the ClinVar VCF) → typed Parquet partitioned by assembly and chromosome.

Layout: ``out_dir/assembly=<A>/chromosome=<C>/part-00000.parquet``, one file per partition, sorted by
``position_vcf``, ``start`` (nulls last; ties keep file order), zstd. The files also hold the
``assembly`` and ``chromosome`` columns, with the same partition-safe values as the folder names.

Publishing is all or nothing: the files are written to a staging folder beside ``out_dir``, verified
(every file's row count and schema, each file holds only its own partition, and good + rejected rows ==
the data lines read), then renamed to ``out_dir`` in one step. ``out_dir`` must not exist or be empty:
a release goes to a fresh snapshot folder, never on top of another one. A file-level problem (not
ClinVar, bad header, truncated gzip) raises :class:`ClinvarFormatError` and publishes nothing.

Rejected rows (line number, reason, raw line) go to ``rejected_path``, which is always written, with
zero rows when nothing was rejected, so "nothing rejected" and "never ran" look different.

Release: the ``release`` argument if given; else the VCF's ``##fileDate`` (``2026-02-26``); for a
variant_summary the date in its file name (``variant_summary_2021-01…`` → ``2021-01``), else None. The
file itself carries no release date, and LastEvaluated is a submitter's date, not the release's.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from genolake_assets.lib.clinvar.schema import (CLINVAR_SCHEMA, REJECTED_SCHEMA, SORT_COLUMNS, VARIANT_SUMMARY, VCF,
                                                partition_label, partition_path)
from genolake_assets.lib.clinvar.source import ClinvarFormatError, ParsedBatch, text_lines
from genolake_assets.lib.clinvar.summary import SUMMARY_COLUMNS, read_summary_header, release_from_name, summary_batches
from genolake_assets.lib.clinvar.vcf import read_vcf_header, vcf_batches
from genolake_assets.lib.lake.layout import PART_NAME
from genolake_assets.lib.lake.parquet_output import ZSTD_LEVEL, SortedParquetWriter, WriterPool
from genolake_assets.lib.limits import input_limits

__all__ = ["ClinvarConversion", "ClinvarFormatError", "convert_clinvar", "detect_clinvar_format"]

# Flush every partition writer when this much Arrow data is buffered across them.
MAX_BUFFERED_BYTES = 192 << 20
# Rows arriving out of order (every partition of a variant_summary, which is in AlleleID order) are
# re-sorted at the end, in passes that each hold about this many Arrow bytes, on RESORT_THREADS
# threads: together with the writers' buffers this keeps the peak under 1 GiB.
SORT_BUCKET_BYTES = 96 << 20
TAKE_ROWS = 16_384
RESORT_THREADS = min(2, os.cpu_count() or 1)
# Sorted positions delta-encode well; near-unique values gain nothing from a dictionary. Measured on
# the 2021-01 release: 19% smaller files than dictionaries everywhere.
DELTA_COLUMNS = ("position_vcf", "start", "stop")
UNIQUE_COLUMNS = ("allele_id", "variation_id", "name", "rs_id", "rcv_accessions", "other_ids", "hgvs")
_MAX_HEADER_LINES = 10_000
_NO_KEY = np.iinfo(np.int64).max  # nulls sort last


@dataclass
class ClinvarConversion:
    source_format: str
    release: str | None
    rows: int
    rejected_rows: int
    rejection_reasons: dict[str, int]
    partitions: dict[str, int]  # "GRCh38/7" → rows
    files: list[Path]
    input_bytes: int
    output_bytes: int  # the partition files; the rejected file is not counted
    seconds: float
    source: str = ""
    rejected_file: Path | None = None
    ignored_columns: list[str] = field(default_factory=list)  # variant_summary columns the table has no place for

    @property
    def rows_per_second(self) -> float:
        return (self.rows + self.rejected_rows) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["files"] = [str(path) for path in self.files]
        data["rejected_file"] = str(self.rejected_file) if self.rejected_file else None
        return data


def detect_clinvar_format(path: str | Path) -> str:
    """``"variant_summary"`` or ``"vcf"`` from the first lines; raise :class:`ClinvarFormatError` otherwise."""
    lines = text_lines(path)
    try:
        first = next(lines, "")
        if first.startswith("#AlleleID\t"):
            return VARIANT_SUMMARY
        if first.startswith("##fileformat=VCF"):
            for _, line in zip(range(_MAX_HEADER_LINES), lines):
                if line.startswith(("##source=ClinVar", "##INFO=<ID=ALLELEID,")):
                    return VCF
                if not line.startswith("##"):
                    break
            raise ClinvarFormatError(str(path), "a VCF, but not a ClinVar VCF: no ##source=ClinVar and no ALLELEID "
                                     "INFO field in its header", code="not_clinvar")
    finally:
        lines.close()
    # Never quote what was read: the source could be any file a launcher managed to point at.
    raise ClinvarFormatError(str(path), "not a ClinVar file: its first line is neither variant_summary's header "
                             "('#AlleleID<TAB>…') nor '##fileformat=VCF' (ClinVar VCF)", line=1,
                             code="not_clinvar")


def convert_clinvar(path: Path, out_dir: Path, rejected_path: Path, release: str | None = None) -> ClinvarConversion:
    """Convert one ClinVar file into ``out_dir`` (see the module docstring for layout and guarantees)."""
    started = time.monotonic()
    path, out_dir, rejected_path = Path(path), Path(out_dir), Path(rejected_path)
    source_format = detect_clinvar_format(path)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; a ClinVar release is written to a fresh folder")
    ignored: list[str] = []
    if source_format == VARIANT_SUMMARY:
        columns = read_summary_header(path)
        ignored = columns[len(SUMMARY_COLUMNS):]
        release = release or release_from_name(path)
        batches = summary_batches(path, columns, release)
    else:
        header = read_vcf_header(path)
        release = release or header.file_date
        batches = vcf_batches(path, header, release)

    token = uuid.uuid4().hex
    staging = out_dir.parent / f".{out_dir.name}.staging-{token}"
    rejected_staging = rejected_path.parent / f".{rejected_path.name}.{token}.tmp"
    rejected_path.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True)  # renamed to out_dir at the end, even when there are no rows
    pool = WriterPool(_PartitionWriters(staging), MAX_BUFFERED_BYTES)
    rejected_writer = pq.ParquetWriter(rejected_staging, REJECTED_SCHEMA, compression="zstd")
    reasons: Counter[str] = Counter()
    partitions_seen: set[tuple[str, str]] = set()
    max_partitions = input_limits().max_clinvar_partitions
    try:
        for parsed in batches:
            _check_accounting(path, parsed)
            groups = _by_partition(parsed.rows)
            _check_partition_count(path, source_format, parsed, groups, partitions_seen, max_partitions)
            pool.submit(groups)
            if parsed.rejects.num_rows:
                rejected_writer.write_table(parsed.rejects)
                reasons.update(parsed.rejects.column("reason").to_pylist())
        pool.close()
        rejected_writer.close()
        unsorted = [writer for writer in pool.writers.values() if writer.needs_sort]
        with ThreadPoolExecutor(max_workers=RESORT_THREADS) as executor:
            list(executor.map(lambda writer: _resort(writer.path, writer.arrow_bytes), unsorted))
        partitions = {key: writer.rows for key, writer in pool.writers.items()}
        _verify(path, staging, partitions)
        rejected_staging.replace(rejected_path)
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        pool.abort()
        rejected_writer.close()
        shutil.rmtree(staging, ignore_errors=True)
        rejected_staging.unlink(missing_ok=True)
        raise

    files = [out_dir / partition_path(*key) / PART_NAME for key in sorted(partitions)]
    return ClinvarConversion(
        source_format=source_format,
        release=release,
        rows=sum(partitions.values()),
        rejected_rows=sum(reasons.values()),
        rejection_reasons=dict(reasons.most_common()),
        partitions={partition_label(*key): rows for key, rows in sorted(partitions.items())},
        files=files,
        input_bytes=path.stat().st_size,
        output_bytes=sum(file.stat().st_size for file in files),
        seconds=time.monotonic() - started,
        source=str(path),
        rejected_file=rejected_path,
        ignored_columns=ignored,
    )


def _check_accounting(path: Path, parsed: ParsedBatch) -> None:
    """Every data line is a row or a reject: nothing is dropped on the way."""
    if parsed.rows.num_rows + parsed.rejects.num_rows != parsed.lines:
        raise ClinvarFormatError(str(path), f"internal error: {parsed.lines} lines gave {parsed.rows.num_rows} rows "
                                 f"and {parsed.rejects.num_rows} rejects", code="verification_failed")


def _check_partition_count(path: Path, source_format: str, parsed: ParsedBatch,
                           groups: list[tuple[tuple[str, str], pa.Table]], seen: set[tuple[str, str]],
                           limit: int) -> None:
    """Refuse the file at the first row whose assembly × chromosome would be partition ``limit + 1``
    (``GENOLAKE_MAX_CLINVAR_PARTITIONS``), before that partition's writer, and so its file, exists.

    ``groups`` come in order of first appearance in the batch, so the first new key beyond the limit is
    the one the earliest line brings."""
    for key, _ in groups:
        if key in seen:
            continue
        if len(seen) < limit:
            seen.add(key)
            continue
        assembly, chromosome = key
        if source_format == VCF:
            field_name = "CHROM"
        else:
            field_name = "Assembly" if assembly not in {a for a, _ in seen} else "Chromosome"
        rows = parsed.rows
        first = pc.index(pc.and_(pc.equal(rows.column("assembly"), assembly),
                                 pc.equal(rows.column("chromosome"), chromosome)), True).as_py()
        line = int(parsed.row_lines[first]) if parsed.row_lines is not None and first >= 0 else None
        raise ClinvarFormatError(str(path), f"more than {limit:,} distinct assembly × chromosome partitions "
                                 f"(GENOLAKE_MAX_CLINVAR_PARTITIONS); this row's would be one more "
                                 f"({partition_label(assembly, chromosome)})", line=line, field=field_name,
                                 code="too_many_partitions")


def _by_partition(rows: pa.RecordBatch) -> list[tuple[tuple[str, str], pa.Table]]:
    """The batch's rows grouped by (assembly, chromosome), each group in file order."""
    if rows.num_rows == 0:
        return []
    keys = pc.binary_join_element_wise(rows.column("assembly"), rows.column("chromosome"), "\t").dictionary_encode()
    codes = keys.indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    table = pa.Table.from_batches([rows])
    groups = []
    for start, stop in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]])):
        assembly, chromosome = keys.dictionary[codes[order[start]]].as_py().split("\t")
        # A take, not a slice: each group owns its buffers, so the writers' byte accounting is right.
        groups.append(((assembly, chromosome), table.take(pa.array(order[start:stop]))))
    return groups


def _sort_keys(table: pa.Table) -> np.ndarray:
    return np.column_stack([pc.fill_null(table.column(name), _NO_KEY).to_numpy() for name in SORT_COLUMNS])


def _out_of_order(keys: np.ndarray) -> bool:
    """Whether any row's key tuple is lexicographically before the previous row's."""
    later, earlier = keys[1:], keys[:-1]
    decided, before = np.zeros(len(later), dtype=bool), np.zeros(len(later), dtype=bool)
    for column in range(keys.shape[1]):
        less, greater = later[:, column] < earlier[:, column], later[:, column] > earlier[:, column]
        before |= ~decided & less
        decided |= less | greater
    return bool(before.any())


class _PartitionWriters(dict):
    """A writer per partition, created on first use by the pool's writer thread (the only one that touches it)."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, key: tuple[str, str]) -> _ClinvarPartitionWriter:
        writer = self[key] = _ClinvarPartitionWriter(self.root / partition_path(*key) / PART_NAME)
        return writer


class _ClinvarPartitionWriter(SortedParquetWriter):
    """One partition's file; rows arriving out of (position_vcf, start) order are re-sorted after close."""

    def __init__(self, path: Path):
        super().__init__(path, CLINVAR_SCHEMA, contig_rank={})
        self._last_key: np.ndarray | None = None
        self.arrow_bytes = 0

    def _open(self) -> pq.ParquetWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.sorted:  # _resort rewrites these rows: spend no time encoding them well now
            return pq.ParquetWriter(self.path, self.schema, compression="lz4", use_dictionary=False)
        dictionary = [f"{field.name}.list.element" if pa.types.is_list(field.type) else field.name
                      for field in self.schema if field.name not in DELTA_COLUMNS + UNIQUE_COLUMNS]
        return pq.ParquetWriter(
            self.path, self.schema, compression="zstd", compression_level=ZSTD_LEVEL, use_dictionary=dictionary,
            column_encoding={name: "DELTA_BINARY_PACKED" for name in DELTA_COLUMNS},
            write_statistics=True, write_page_index=True,
        )

    def _in_order(self, table: pa.Table) -> pa.Table:
        self.arrow_bytes += table.get_total_buffer_size()
        if self.sorted and table.num_rows:
            keys = _sort_keys(table)
            if self._last_key is not None:
                keys = np.vstack([self._last_key, keys])
            self.sorted = not _out_of_order(keys)
            self._last_key = keys[-1:]
        return table

    @property
    def needs_sort(self) -> bool:
        return not self.sorted

    def close(self) -> None:
        """Close the file; :func:`_resort` is the caller's job, so partitions can be sorted in parallel."""
        self.flush()
        if self._writer is None:
            self._writer = self._open()
        self._writer.close()


def _resort(path: Path, arrow_bytes: int) -> None:
    """Rewrite a partition file in sort order, holding at most about SORT_BUCKET_BYTES of its rows at once.

    The sort keys of all rows are small, so the global order is computed from them first; the rows are
    then read back in as many passes as there are buckets, each pass keeping one bucket's share of the
    order (by rank, so ties keep file order and the result is the same whatever the bucket count).
    """
    unsorted = path.with_name(".unsorted-" + path.name)
    path.rename(unsorted)
    source = pq.ParquetFile(unsorted)
    keys = _sort_keys(source.read(columns=list(SORT_COLUMNS)))
    order = np.lexsort(keys.T[::-1])  # stable; the first key varies slowest
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    buckets = max(1, -(-arrow_bytes // SORT_BUCKET_BYTES))
    bucket_of_row = rank * buckets // max(len(rank), 1)
    writer = _ClinvarPartitionWriter(path)
    for bucket in range(buckets):
        parts, ranks, offset = [], [], 0
        for batch in source.iter_batches(batch_size=TAKE_ROWS):
            chosen = bucket_of_row[offset:offset + batch.num_rows] == bucket
            parts.append(pa.Table.from_batches([batch]).filter(pa.array(chosen)))
            ranks.append(rank[offset:offset + batch.num_rows][chosen])
            offset += batch.num_rows
        rows = pa.concat_tables(parts).cast(CLINVAR_SCHEMA)
        within = pa.array(np.argsort(np.concatenate(ranks), kind="stable"))
        for start in range(0, len(within), TAKE_ROWS):  # small takes: the writer flushes every 32 MiB
            writer.append(rows.take(within.slice(start, TAKE_ROWS)))
        del rows, parts
        pa.default_memory_pool().release_unused()
    if writer.needs_sort:  # would otherwise re-sort forever
        raise RuntimeError(f"{path}: the sorted rows are not in {SORT_COLUMNS} order")
    writer.close()
    source.close()
    unsorted.unlink()


def _verify(path: Path, staging: Path, partitions: dict[tuple[str, str], int]) -> None:
    for (assembly, chromosome), rows in partitions.items():
        file = staging / partition_path(assembly, chromosome) / PART_NAME
        parquet = pq.ParquetFile(file)
        problem = None
        if parquet.metadata.num_rows != rows:
            problem = f"{parquet.metadata.num_rows} rows written, {rows} expected"
        elif not parquet.schema_arrow.equals(CLINVAR_SCHEMA):
            problem = "schema differs from the ClinVar table's"
        else:
            keys = parquet.read(columns=["assembly", "chromosome"]).group_by(["assembly", "chromosome"]).aggregate([])
            if keys.num_rows != 1 or keys.to_pylist()[0] != {"assembly": assembly, "chromosome": chromosome}:
                problem = f"holds rows of other partitions: {keys.to_pylist()[:3]}"
        if problem:
            raise ClinvarFormatError(str(path), f"verification of {file.relative_to(staging)} failed: {problem}",
                                     code="verification_failed")
