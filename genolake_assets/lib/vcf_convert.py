"""The in-process VCF → Parquet converter (the local engine).

Streaming: the body is parsed in blocks by Arrow's CSV reader on a background thread while
the previous block is typed, split and written, so memory stays bounded by a few blocks.
Output goes to a staging directory; :func:`convert_vcf` publishes it with atomic renames only
after every file has been verified, so a failed or interrupted conversion leaves what was in
the lake before untouched.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.identifiers import sample_id_for
from genolake_assets.lib.parquet_output import PART_NAME, SortedParquetWriter, WriterPool, partition_dir
from genolake_assets.lib.variant_schema import REFERENCE_BLOCKS, TABLES, VARIANTS, schemas
from genolake_assets.lib.vcf_decode import BatchDecodeError, decode_batch
from genolake_assets.lib.vcf_header import VcfHeader, read_header
from genolake_assets.lib.vcf_rows import AlleleLayout, RowCounts, has_row_allele, sample_tables
from genolake_assets.lib.vcf_source import open_binary

ENGINE = "genolake-arrow"
ENGINE_VERSION = "1"
BLOCK_BYTES = 16 << 20
# Parsed batches waiting for the decoder; with the writer's queue this bounds memory.
READ_AHEAD_BATCHES = 2
# Flush every writer when this much is buffered (matters for wide multi-sample fan-outs).
MAX_BUFFERED_BYTES = 512 << 20


@dataclass
class SampleReport:
    sample_name: str
    sample_id: str
    variant_rows: int = 0
    reference_block_rows: int = 0
    variant_records: int = 0
    reference_block_records: int = 0
    spanning_deletion_records: int = 0
    files: dict[str, str] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    resorted: bool = False


@dataclass
class ConversionReport:
    source: str
    records_read: int
    reference_genome: str | None
    caller: str | None
    file_format: str
    samples: dict[str, SampleReport]
    seconds: float
    engine: str = ENGINE
    engine_version: str = ENGINE_VERSION

    def as_dict(self) -> dict:
        return asdict(self)


ProgressCallback = Callable[[int, int], None]
"""Called with (records read so far, decompressed bytes read so far)."""


def _resolve_samples(header: VcfHeader, requested: list[str] | None) -> list[str]:
    if requested is None:
        return list(header.samples) or []
    unknown = [s for s in requested if s not in header.samples]
    if unknown:
        raise VcfFormatError(header.path, f"samples {unknown} are not in the header", code="unknown_sample")
    return list(requested)


def _read_options(header: VcfHeader) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, list[str], dict]:
    names = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if header.samples:
        names += ["FORMAT", *header.samples]
    problems: dict = {}

    def on_invalid_row(row) -> str:
        problems.setdefault("row", row)
        return "error"

    read = pacsv.ReadOptions(column_names=names, skip_rows=header.header_lines, block_size=BLOCK_BYTES,
                             use_threads=True)
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False, newlines_in_values=False,
                               ignore_empty_lines=True, invalid_row_handler=on_invalid_row)
    return read, parse, names, problems


def _batches(header: VcfHeader, sample_names: list[str]) -> Iterator[pa.RecordBatch]:
    """Body batches, parsed on a background thread (Arrow releases the GIL while parsing)."""
    read, parse, names, problems = _read_options(header)
    wanted = names[:9] + sample_names if header.samples else names
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in wanted}, include_columns=wanted,
                                   strings_can_be_null=False, null_values=[], quoted_strings_can_be_null=False)
    handoff: queue.Queue = queue.Queue(maxsize=READ_AHEAD_BATCHES)
    stop = threading.Event()

    def produce() -> None:
        try:
            stream = open_binary(header.path)
            reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
            for batch in reader:
                while not stop.is_set():
                    try:
                        handoff.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it with context
            handoff.put(exc)

    worker = threading.Thread(target=produce, name="vcf-reader", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise _reader_error(header, item, problems)
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _reader_error(header: VcfHeader, exc: BaseException, problems: dict) -> Exception:
    if isinstance(exc, VcfFormatError):
        return exc
    row = problems.get("row")
    if row is not None:
        line = row.number if row.number is not None else _first_line_with_columns_other_than(
            header, row.expected_columns)
        return VcfFormatError(header.path, f"expected {row.expected_columns} tab-separated columns, found "
                              f"{row.actual_columns}: {row.text[:120]!r}", line=line, code="malformed_record")
    if isinstance(exc, (OSError, pa.ArrowInvalid, EOFError)):
        return VcfFormatError(header.path, f"cannot read the body: {exc}", code="corrupt_body")
    return exc


def _first_line_with_columns_other_than(header: VcfHeader, expected: int) -> int | None:
    """Slow path, only after a parse error: find the offending line's number."""
    from genolake_assets.lib.vcf_source import open_text_lines

    for number, line in enumerate(open_text_lines(header.path), start=1):
        if number > header.header_lines and line.strip() and line.rstrip("\r\n").count("\t") + 1 != expected:
            return number
    return None


def _record_groups(batch: pa.RecordBatch, multi_sample: bool) -> list[tuple[np.ndarray | None, pa.RecordBatch]]:
    """The batch as (its row numbers or None for all, records) groups decoded one at a time.

    In a single-sample file the records with a variant allele and the reference blocks go to
    different tables, so decoding them apart yields each table's columns whole: nothing is
    scattered to the batch's length or filtered back out of it. (Multi-sample rows of one record
    can land in both tables, so their batches stay whole.)
    """
    if multi_sample:
        return [(None, batch)]
    variant = has_row_allele(batch.column("ALT"))
    if variant.all() or not variant.any():
        return [(None, batch)]
    groups = []
    for mask in (~variant, variant):
        arrow_mask = pa.array(mask)
        # Column by column: RecordBatch.filter is about twice as slow here.
        group = pa.RecordBatch.from_arrays([column.filter(arrow_mask) for column in batch.columns], schema=batch.schema)
        groups.append((np.flatnonzero(mask), group))
    return groups


def _group_tables(group: pa.RecordBatch, rows: np.ndarray | None, header: VcfHeader, ids: dict[str, str],
                  multi_sample: bool, table_schemas: dict[str, pa.Schema],
                  counts: dict[str, RowCounts]) -> list[tuple[tuple[str, str], pa.Table]]:
    """Decode one record group and route it to each sample's tables; ``rows`` maps errors back to the batch."""
    try:
        records = decode_batch(group, header, list(ids))
    except BatchDecodeError as exc:
        if rows is not None:
            exc.row = int(rows[exc.row])
        raise
    layout = AlleleLayout.of(records)
    produced = []
    for name, sample_id in ids.items():
        tables, group_counts = sample_tables(records, name, sample_id, multi_sample, header, layout, table_schemas)
        counts[name].add(group_counts)
        produced += [((name, table_name), table) for table_name, table in tables.items()]
    return produced


def write_sample_tables(vcf_path: str | Path, out_dir: Path, samples: list[str] | None = None,
                        progress: ProgressCallback | None = None) -> ConversionReport:
    """Convert a VCF into per-sample Parquet files under ``out_dir`` (no atomicity: see convert_vcf)."""
    started = time.perf_counter()
    header = read_header(vcf_path)
    sample_names = _resolve_samples(header, samples)
    multi_sample = len(header.samples) > 1
    table_schemas = schemas(header)
    contig_rank = {c: i for i, c in enumerate(header.contigs)}
    targets = sample_names or ["<sites-only>"]
    if not sample_names:
        raise VcfFormatError(header.path, "the VCF has no sample columns (sites-only): nothing to register per "
                             "sample", code="no_samples")
    ids = {name: sample_id_for(name) for name in targets}
    clashes = {i for i in ids.values() if list(ids.values()).count(i) > 1}
    if clashes:
        raise VcfFormatError(header.path, f"sample names map to the same sample id {sorted(clashes)}",
                             code="sample_id_clash")
    writers = {(name, table): SortedParquetWriter(partition_dir(out_dir, table, ids[name]) / PART_NAME,
                                                  table_schemas[table], contig_rank)
               for name in targets for table in TABLES}
    counts = {name: RowCounts() for name in targets}
    records_read = 0
    pool = WriterPool(writers, MAX_BUFFERED_BYTES)
    try:
        for batch in _batches(header, sample_names):
            produced = []
            try:
                for rows, group in _record_groups(batch, multi_sample):
                    produced += _group_tables(group, rows, header, ids, multi_sample, table_schemas, counts)
            except BatchDecodeError as exc:
                line = header.header_lines + records_read + exc.row + 1
                raise VcfFormatError(header.path, exc.problem, line=line, field=exc.field,
                                     code="invalid_value") from None
            pool.submit(produced)
            records_read += batch.num_rows
            if progress is not None:
                progress(records_read, batch.nbytes)
        pool.close()
    except BaseException:
        pool.abort()
        raise
    reports = {}
    for name in targets:
        c = counts[name]
        report = SampleReport(name, ids[name], c.variant_rows, writers[(name, REFERENCE_BLOCKS)].rows,
                              c.variant_records, c.reference_block_records, c.spanning_deletion_records)
        for table in TABLES:
            writer = writers[(name, table)]
            report.files[table] = str(writer.path)
            report.bytes[table] = writer.path.stat().st_size
            report.resorted = report.resorted or not writer.sorted
        reports[name] = report
    return ConversionReport(str(vcf_path), records_read, header.reference_genome, header.caller,
                            header.file_format, reports, time.perf_counter() - started)


def verify_outputs(report: ConversionReport, header_schemas: dict[str, pa.Schema] | None = None) -> None:
    """Re-read each file's footer: row counts must match what was converted, and every record is accounted for."""
    for sample in report.samples.values():
        accounted = sample.variant_records + sample.reference_block_records + sample.spanning_deletion_records
        if accounted != report.records_read:
            raise VcfFormatError(report.source, f"sample {sample.sample_name}: {accounted} records accounted for, "
                                 f"{report.records_read} read", code="verification_failed")
        expected = {VARIANTS: sample.variant_rows, REFERENCE_BLOCKS: sample.reference_block_rows}
        for table, path in sample.files.items():
            metadata = pq.read_metadata(path)
            if metadata.num_rows != expected[table]:
                raise VcfFormatError(report.source, f"{path}: {metadata.num_rows} rows on disk, "
                                     f"{expected[table]} converted", code="verification_failed")
            if header_schemas is not None and not metadata.schema.to_arrow_schema().equals(header_schemas[table]):
                raise VcfFormatError(report.source, f"{path}: schema differs from the header's",
                                     code="verification_failed")


def convert_vcf(vcf_path: str | Path, out_dir: str | Path, samples: list[str] | None = None,
                progress: ProgressCallback | None = None) -> ConversionReport:
    """Convert a VCF into ``out_dir`` (the lake layout) atomically per file.

    Files are written under ``out_dir/_staging/<id>/``, verified, then moved into place with
    ``os.replace``; on any error nothing under ``out_dir`` changes.
    """
    out_dir = Path(out_dir)
    staging = out_dir / "_staging" / uuid.uuid4().hex
    try:
        report = write_sample_tables(vcf_path, staging, samples, progress)
        verify_outputs(report, schemas(read_header(vcf_path)))
        for sample in report.samples.values():
            for table, staged in list(sample.files.items()):
                final = partition_dir(out_dir, table, sample.sample_id) / PART_NAME
                final.parent.mkdir(parents=True, exist_ok=True)
                Path(staged).replace(final)
                sample.files[table] = str(final)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            (out_dir / "_staging").rmdir()
        except OSError:
            pass
