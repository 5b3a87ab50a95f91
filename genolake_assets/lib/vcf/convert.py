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
from genolake_assets.lib.lake.identifiers import sample_id_for
from genolake_assets.lib.lake.layout import PART_NAME
from genolake_assets.lib.lake.leftovers import STAGING_DIR, remove_dead_staging, staging_name
from genolake_assets.lib.lake.parquet_output import SortedParquetWriter, WriterPool, partition_dir
from genolake_assets.lib.vcf.schema import REFERENCE_BLOCKS, TABLES, VARIANTS, schemas
from genolake_assets.lib.limits import input_limits
from genolake_assets.lib.vcf.decode import BatchDecodeError, decode_batch, oversized_allele
from genolake_assets.lib.vcf.header import VcfHeader, read_header
from genolake_assets.lib.vcf.rows import AlleleLayout, RowCounts, has_row_allele, sample_tables
from genolake_assets.lib.vcf.source import body_chunks

ENGINE = "genolake-arrow"
ENGINE_VERSION = "3"  # 2: reference blocks no longer carry variant_id; 3: calls, FILTER and split AD/PL as Hail
# Text parsed per batch. Small enough that the pipeline's queues hold little; a multi-sample
# file gets more, as each batch pays a fixed decoding cost per sample column.
BLOCK_BYTES = 4 << 20
MULTI_SAMPLE_BLOCK_BYTES = 16 << 20
# Parsed batches waiting for the decoder; with the writer's queue this bounds memory.
READ_AHEAD_BATCHES = 2
# Variant-only record groups are decoded together once this much of their text has gathered.
HELD_VARIANT_BYTES = BLOCK_BYTES
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


def _csv_options(header: VcfHeader, sample_names: list[str]) -> tuple[list[str], pacsv.ParseOptions,
                                                                    pacsv.ConvertOptions, dict]:
    names = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if header.samples:
        names += ["FORMAT", *header.samples]
    problems: dict = {}

    def on_invalid_row(row) -> str:
        problems.setdefault("row", row)
        return "error"

    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False, newlines_in_values=False,
                               ignore_empty_lines=True, invalid_row_handler=on_invalid_row)
    wanted = names[:9] + sample_names if header.samples else names
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in wanted}, include_columns=wanted,
                                   strings_can_be_null=False, null_values=[], quoted_strings_can_be_null=False)
    return names, parse, convert, problems


def _batches(header: VcfHeader, sample_names: list[str]) -> Iterator[pa.RecordBatch]:
    """Body batches, read and parsed on a background thread (Arrow releases the GIL while parsing).

    Each chunk of text is parsed on its own rather than through Arrow's streaming CSV reader,
    whose reading ahead (up to 32 blocks) is unbounded in practice and made memory grow with
    the file: here at most READ_AHEAD_BATCHES parsed batches wait for the decoder.
    """
    names, parse, convert, problems = _csv_options(header, sample_names)
    handoff: queue.Queue = queue.Queue(maxsize=READ_AHEAD_BATCHES)
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            block_bytes = MULTI_SAMPLE_BLOCK_BYTES if len(header.samples) > 1 else BLOCK_BYTES
            for chunk in body_chunks(header.path, header.header_lines, block_bytes):
                read = pacsv.ReadOptions(column_names=names, block_size=len(chunk) + 1, use_threads=False)
                table = pacsv.read_csv(pa.py_buffer(chunk), read_options=read, parse_options=parse,
                                       convert_options=convert)
                for batch in table.to_batches():
                    if not hand_over(batch):
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
        # row.number counts from the start of the chunk that was being parsed, not of the file.
        line = _first_line_with_columns_other_than(header, row.expected_columns)
        return VcfFormatError(header.path, f"expected {row.expected_columns} tab-separated columns, found "
                              f"{row.actual_columns}: {row.text[:120]!r}", line=line, code="malformed_record")
    if isinstance(exc, (OSError, pa.ArrowInvalid, EOFError)):
        return VcfFormatError(header.path, f"cannot read the body: {exc}", code="corrupt_body")
    return exc


def _first_line_with_columns_other_than(header: VcfHeader, expected: int) -> int | None:
    """Slow path, only after a parse error: find the offending line's number."""
    from genolake_assets.lib.vcf.source import open_text_lines

    for number, line in enumerate(open_text_lines(header.path), start=1):
        if number > header.header_lines and line.strip() and line.rstrip("\r\n").count("\t") + 1 != expected:
            return number
    return None


def _check_alleles(header: VcfHeader, batch: pa.RecordBatch, first_number: int, limit: int) -> None:
    """Refuse the first record of the batch with a REF or ALT allele beyond ``GENOLAKE_MAX_ALLELE_BYTES``,
    before the batch is decoded (a 500 MB allele ended in an ArrowMemoryError); the allele is not quoted."""
    found = oversized_allele(batch, limit)
    if found is not None:
        row, field_name, size = found
        raise VcfFormatError(header.path, f"an allele of {size:,} bytes in {field_name}, longer than the limit of "
                             f"{limit:,} bytes (GENOLAKE_MAX_ALLELE_BYTES)",
                             line=header.header_lines + first_number + row + 1, field=field_name,
                             code="allele_too_long")


@dataclass
class _RecordGroup:
    records: pa.RecordBatch
    numbers: np.ndarray  # each record's 0-based number in the file body, to report errors by line
    variants_only: bool  # single-sample records that all have a variant allele: variants-table rows only


def _record_groups(batch: pa.RecordBatch, first_number: int, multi_sample: bool) -> list[_RecordGroup]:
    """The batch split into the groups that are decoded one at a time.

    In a single-sample file the records with a variant allele and the reference blocks go to
    different tables, so decoding them apart yields each table's columns whole: nothing is
    scattered to the batch's length or filtered back out of it. (Multi-sample rows of one record
    can land in both tables, so their batches stay whole.)
    """
    numbers = np.arange(first_number, first_number + batch.num_rows)
    if multi_sample:
        return [_RecordGroup(batch, numbers, variants_only=False)]
    variant = has_row_allele(batch.column("ALT"))
    if variant.all() or not variant.any():
        return [_RecordGroup(batch, numbers, variants_only=bool(variant.any()))]
    groups = []
    for mask, variants_only in ((~variant, False), (variant, True)):
        arrow_mask = pa.array(mask)
        # Column by column: RecordBatch.filter is about twice as slow here.
        records = pa.RecordBatch.from_arrays([column.filter(arrow_mask) for column in batch.columns],
                                             schema=batch.schema)
        groups.append(_RecordGroup(records, numbers[mask], variants_only))
    return groups


class _GroupConverter:
    """Decodes record groups into each sample's tables.

    A gVCF block of records holds a few hundred variant records, and decoding a group has a
    fixed cost of hundreds of Arrow calls, so variant-only groups are held back and decoded
    together once HELD_VARIANT_BYTES of them have gathered. They feed only the variants table,
    so holding them back changes no row order.
    """

    def __init__(self, header: VcfHeader, ids: dict[str, str], multi_sample: bool,
                 table_schemas: dict[str, pa.Schema], name_columns: dict[str, str] | None = None):
        self.header, self.ids, self.multi_sample, self.table_schemas = header, ids, multi_sample, table_schemas
        self.name_columns = name_columns or {}
        self.counts = {name: RowCounts() for name in ids}
        self._held: list[_RecordGroup] = []
        self._held_bytes = 0

    def convert(self, group: _RecordGroup) -> list[tuple[tuple[str, str], pa.Table]]:
        if not group.variants_only:
            return self._tables(group)
        self._held.append(group)
        self._held_bytes += group.records.nbytes
        return self.flush() if self._held_bytes >= HELD_VARIANT_BYTES else []

    def flush(self) -> list[tuple[tuple[str, str], pa.Table]]:
        if not self._held:
            return []
        held, self._held, self._held_bytes = self._held, [], 0
        if len(held) == 1:
            return self._tables(held[0])
        records = pa.Table.from_batches([g.records for g in held]).combine_chunks().to_batches()[0]
        return self._tables(_RecordGroup(records, np.concatenate([g.numbers for g in held]), variants_only=True))

    def _tables(self, group: _RecordGroup) -> list[tuple[tuple[str, str], pa.Table]]:
        try:
            records = decode_batch(group.records, self.header, list(self.ids))
        except BatchDecodeError as exc:
            line = self.header.header_lines + int(group.numbers[exc.row]) + 1
            raise VcfFormatError(self.header.path, exc.problem, line=line, field=exc.field,
                                 code="invalid_value") from None
        layout = AlleleLayout.of(records)
        produced = []
        for name, sample_id in self.ids.items():
            tables, group_counts = sample_tables(records, name, sample_id, self.multi_sample, self.header, layout,
                                                 self.table_schemas, name_column=self.name_columns.get(name))
            self.counts[name].add(group_counts)
            produced += [((name, table_name), table) for table_name, table in tables.items()]
        return produced


def write_sample_tables(vcf_path: str | Path, out_dir: Path, samples: list[str] | None = None,
                        progress: ProgressCallback | None = None,
                        sample_ids: dict[str, str] | None = None,
                        header: VcfHeader | None = None,
                        name_columns: dict[str, str] | None = None) -> ConversionReport:
    """Convert a VCF into per-sample Parquet files under ``out_dir`` (no atomicity: see convert_vcf).

    ``name_columns``: what to write in a sample's ``sample_name`` column instead of its VCF name (the
    pseudonymous id, so the tables carry no name)."""
    started = time.perf_counter()
    header = header or read_header(vcf_path)
    sample_names = _resolve_samples(header, samples)
    multi_sample = len(header.samples) > 1
    table_schemas = schemas(header)
    contig_rank = {c: i for i, c in enumerate(header.contigs)}
    targets = sample_names
    if not sample_names:
        raise VcfFormatError(header.path, "the VCF has no sample columns (sites-only): nothing to register per "
                             "sample", code="no_samples")
    ids = {name: (sample_ids or {}).get(name) or sample_id_for(name) for name in targets}
    clashes = {i for i in ids.values() if list(ids.values()).count(i) > 1}
    if clashes:
        raise VcfFormatError(header.path, f"sample names map to the same sample id {sorted(clashes)}",
                             code="sample_id_clash")
    writers = {(name, table): SortedParquetWriter(partition_dir(out_dir, table, ids[name]) / PART_NAME,
                                                  table_schemas[table], contig_rank)
               for name in targets for table in TABLES}
    converter = _GroupConverter(header, ids, multi_sample, table_schemas, name_columns)
    counts = converter.counts
    records_read = 0
    pool = WriterPool(writers, MAX_BUFFERED_BYTES)
    max_allele_bytes = input_limits().max_allele_bytes
    try:
        for batch in _batches(header, sample_names):
            _check_alleles(header, batch, records_read, max_allele_bytes)
            produced = []
            for group in _record_groups(batch, records_read, multi_sample):
                produced += converter.convert(group)
            pool.submit(produced)
            records_read += batch.num_rows
            if progress is not None:
                progress(records_read, batch.nbytes)
        pool.submit(converter.flush())
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


ABANDONED_STAGING_SECONDS = 24 * 3600
"""A staging folder named before folders carried their writer's pid is dropped once this old."""


def convert_to_staging(vcf_path: str | Path, staging: Path, samples: list[str] | None = None,
                       progress: ProgressCallback | None = None,
                       sample_ids: dict[str, str] | None = None,
                       name_columns: dict[str, str] | None = None) -> ConversionReport:
    """Write and verify every sample's files under ``staging``; nothing is published."""
    header = read_header(vcf_path)
    report = write_sample_tables(vcf_path, staging, samples, progress, sample_ids, header=header,
                                 name_columns=name_columns)
    verify_outputs(report, schemas(header))
    return report


def convert_vcf(vcf_path: str | Path, out_dir: str | Path, samples: list[str] | None = None,
                progress: ProgressCallback | None = None) -> ConversionReport:
    """Convert a VCF into ``out_dir`` (the lake layout) atomically per file.

    Files are written under ``out_dir/_staging/<id>/``, verified, then moved into place with
    ``os.replace``; on any error nothing under ``out_dir`` changes.
    """
    out_dir = Path(out_dir)
    staging = new_staging_dir(out_dir)
    try:
        return publish_staged(convert_to_staging(vcf_path, staging, samples, progress), out_dir)
    finally:
        remove_staging_dir(staging)


def new_staging_dir(out_dir: Path) -> Path:
    """A fresh staging folder inside ``out_dir`` (same file system, so publishing is a rename)."""
    remove_dead_staging(out_dir / STAGING_DIR, stale_after=ABANDONED_STAGING_SECONDS)
    return out_dir / STAGING_DIR / staging_name(uuid.uuid4().hex)


def remove_staging_dir(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()
    except OSError:
        pass


def publish_staged(report: ConversionReport, out_dir: Path) -> ConversionReport:
    """Move verified staged files into the lake layout under ``out_dir`` with ``os.replace``."""
    for sample in report.samples.values():
        for table, staged in list(sample.files.items()):
            final = partition_dir(out_dir, table, sample.sample_id) / PART_NAME
            final.parent.mkdir(parents=True, exist_ok=True)
            Path(staged).replace(final)
            sample.files[table] = str(final)
    return report
