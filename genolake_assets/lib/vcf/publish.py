"""Convert a batch of registered samples with an engine, then publish each converted sample atomically.

One engine job per raw file (a multi-sample VCF converts once for all its samples). A local engine reads local
copies and stages into a scratch folder; a remote one (Hail on EMR) reads the raw files in the lake and
stages under ``staging/convert/<batch>/`` there, and its staged files are server-side copied, never
downloaded. A sample whose file is bad, or whose columns change type against the catalog, is quarantined
and reported; the others are published. The store, engine and catalog come in as the resources' objects.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.lake.checksums import sha256_of_file
from genolake_assets.lib.lake.layout import REFERENCE_BLOCKS_TABLE, STAGING_CONVERT_PREFIX, VARIANTS_TABLE, partition_key
from genolake_assets.lib.lake.quarantine import quarantine, stored_file_name
from genolake_assets.lib.lake.records import load_record, mark_quarantined, save_published, save_record
from genolake_assets.lib.lake.registry import SampleRecord, utc_now
from genolake_assets.lib.vcf.batch import ConversionJob, ConversionManifest, JobOutcome
from genolake_assets.lib.vcf.convert import SampleReport
from genolake_assets.lib.vcf.header import VcfHeader, read_header, read_header_stream
from genolake_assets.lib.vcf.schema import REFERENCE_BLOCKS, TABLES, VARIANT_COLUMNS, VARIANTS

CATALOG_TABLE_OF = {VARIANTS: VARIANTS_TABLE, REFERENCE_BLOCKS: REFERENCE_BLOCKS_TABLE}
FOOTER_TAIL_BYTES = 1 << 20
CONVERT_SCRATCH_PREFIX = "convert-"


class SchemaConflict(ValueError):
    """A column whose type differs from the catalog's: history is never rewritten silently."""


@dataclass
class PublishedSample:
    record: SampleRecord
    sample: SampleReport
    records_read: int
    uris: dict[str, str]
    sha256: dict[str, str]
    arrow_schemas: dict[str, pa.Schema]
    descriptions: dict[str, str]
    """Column descriptions: the variant table's own, then each info_/fmt_ column's header line."""
    writers: dict[str, str]
    added_columns: dict[str, list[str]]
    """Columns the catalog does not have yet, per table."""


def header_descriptions(header: VcfHeader) -> dict[str, str]:
    """Each info_/fmt_ column described by its ##INFO/##FORMAT line."""
    return {field.column: f"{field.section}/{field.id} (Number={field.number}): {field.description}"
            for field in (*header.info.values(), *header.format.values())}


def schema_conflicts(staged: pa.Schema, catalog_columns: dict[str, str] | None,
                     sql_type_of: Callable[[pa.Schema], dict[str, str]]) -> tuple[list[str], list[str]]:
    """(columns whose type conflicts with the catalog, columns the catalog does not have yet)."""
    if catalog_columns is None:
        return [], []
    new_types = sql_type_of(staged)
    conflicts = [f"{c}: {t} (catalog has {catalog_columns[c]})" for c, t in new_types.items()
                 if c in catalog_columns and catalog_columns[c] != t]
    added = [c for c in new_types if c not in catalog_columns]
    return conflicts, added


def convert_and_publish(store, converter, catalog, sample_ids: list[str], *, scratch: Path,
                        local_copy: Callable[[str], Path], pseudonymise: bool, context=None,
                        log: Callable[[str], None] | None = None) -> tuple[dict[str, PublishedSample], dict[str, str]]:
    """(published sample_id → what was published, failed sample_id → why)."""
    log = log or (lambda message: None)
    records, failed = _records_to_convert(store, sample_ids)
    by_file: dict[str, list[str]] = defaultdict(list)
    for sample_id, record in records.items():
        by_file[record.raw_key].append(sample_id)
    catalog_columns = {t: catalog.table_columns(CATALOG_TABLE_OF[t]) for t in TABLES}
    published: dict[str, PublishedSample] = {}
    remote = converter.stages_in_lake()
    batch = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"

    def refuse(record: SampleRecord, problem: InputProblem) -> str:
        source = record.raw_key or record.source_key
        quarantine(store, source, problem, folder=record.sample_id,
                   name=stored_file_name(source, pseudonymise, record.sample_id))
        mark_quarantined(store, record, str(problem))
        return str(problem)

    # The pid in the name lets the next run tell a dead run's leftovers from a live one's (run_recovery.py).
    with tempfile.TemporaryDirectory(dir=scratch, prefix=f"{CONVERT_SCRATCH_PREFIX}{os.getpid()}-") as tmp:
        staging_root = store.uri(f"{STAGING_CONVERT_PREFIX}{batch}") if remote else tmp
        jobs = {}
        for index, (raw_key, ids) in enumerate(by_file.items()):
            names = {records[i].sample_name: i for i in ids}
            jobs[f"vcf{index:04d}"] = ConversionJob(
                job_id=f"vcf{index:04d}", vcf_uri=store.uri(raw_key) if remote else str(local_copy(raw_key)),
                samples=names, staging_uri=f"{staging_root}/vcf{index:04d}",
                name_columns=dict(names) if pseudonymise else None)
        manifest = ConversionManifest(jobs=list(jobs.values()), result_uri=f"{staging_root}/result.json",
                                      regions_bed_uri=converter.regions_bed)
        try:
            result = converter.convert_batch(context, manifest, store, log)
            for outcome in result.outcomes:
                ids = list(jobs[outcome.job_id].samples.values())
                if not outcome.ok:
                    for sample_id in ids:
                        failed[sample_id] = refuse(records[sample_id], outcome.problem)
                    continue
                descriptions = {**VARIANT_COLUMNS, **_header_descriptions(store, records[ids[0]].raw_key)}
                for sample_id in ids:
                    record = records[sample_id]
                    try:
                        published[sample_id] = _publish(store, catalog, catalog_columns, record, outcome,
                                                        descriptions)
                    except SchemaConflict as exc:
                        problem = InputProblem(file=record.source_uri, problem=str(exc), code="schema_conflict")
                        failed[sample_id] = refuse(record, problem)
        finally:
            if remote:
                try:
                    store.delete_prefix(f"{STAGING_CONVERT_PREFIX}{batch}/")
                except Exception as exc:  # noqa: BLE001 - published samples stay published; say what is left
                    log(f"warning: staged files under {store.uri(f'{STAGING_CONVERT_PREFIX}{batch}')} were not "
                        f"removed: {exc}")
    return published, failed


def _records_to_convert(store, sample_ids: list[str]) -> tuple[dict[str, SampleRecord], dict[str, str]]:
    records: dict[str, SampleRecord] = {}
    failed: dict[str, str] = {}
    for sample_id in sample_ids:
        record = load_record(store, sample_id)
        if record is None or not record.raw_key or record.status == "quarantined" and not record.sha256:
            failed[sample_id] = f"{sample_id} is not registered: materialize raw_vcf first"
            continue
        records[sample_id] = record
    return records, failed


def _header_descriptions(store, raw_key: str) -> dict[str, str]:
    """Column descriptions from the VCF's header (read from the stream: a remote VCF is not downloaded)."""
    local = store.local_path(raw_key)
    if local is not None:
        return header_descriptions(read_header(local))
    with store.open_read(raw_key) as stream:
        return header_descriptions(read_header_stream(stream, store.uri(raw_key)))


def _staged_footer(store, staged: str) -> pq.FileMetaData:
    if "://" not in staged:
        return pq.read_metadata(staged)
    key = _lake_key(store, staged)
    size = store.head(key).size
    return pq.read_metadata(pa.BufferReader(store.read_tail(key, min(size, FOOTER_TAIL_BYTES))))


def _lake_key(store, uri: str) -> str:
    root = store.root_uri.rstrip("/") + "/"
    if not uri.startswith(root):
        raise ValueError(f"{uri} is not in the lake {root}")
    return uri[len(root):]


def _publish(store, catalog, catalog_columns, record: SampleRecord, outcome: JobOutcome,
             descriptions: dict[str, str]) -> PublishedSample:
    report = outcome.report
    sample = report.samples[record.sample_name]
    footers = {table: _staged_footer(store, sample.files[table]) for table in TABLES}
    added_columns: dict[str, list[str]] = {}
    for table in TABLES:
        conflicts, added = schema_conflicts(footers[table].schema.to_arrow_schema(), catalog_columns[table],
                                            catalog.sql_type_of)
        if conflicts:
            raise SchemaConflict(f"{table}: column types differ from the catalog: {conflicts}")
        added_columns[table] = added
    uris, sha256 = {}, {}
    for table in TABLES:
        key = partition_key(table, record.sample_id)
        staged = sample.files[table]
        if "://" in staged:  # staged in the lake by a remote engine: a server-side copy, never downloaded
            sha256[table] = outcome.staged[record.sample_id][table]["sha256"]
            stored = store.copy(_lake_key(store, staged), key)
        else:
            sha256[table] = sha256_of_file(Path(staged))
            stored = store.upload(Path(staged), key)
        if stored.size != sample.bytes[table]:
            raise OSError(f"{store.uri(key)}: {stored.size} bytes stored, {sample.bytes[table]} written")
        uris[table] = store.uri(key)
    record.status, record.reason = "converted", None
    record.engine, record.engine_version = report.engine, report.engine_version
    record.converted_at, record.conversion_seconds = utc_now(), round(outcome.seconds, 3)
    record.records_read = report.records_read
    record.variant_rows, record.reference_block_rows = sample.variant_rows, sample.reference_block_rows
    record.variant_bytes, record.reference_block_bytes = sample.bytes[VARIANTS], sample.bytes[REFERENCE_BLOCKS]
    save_record(store, record)
    save_published(store, record)
    return PublishedSample(
        record=record, sample=sample, records_read=report.records_read, uris=uris, sha256=sha256,
        arrow_schemas={table: footers[table].schema.to_arrow_schema() for table in TABLES},
        descriptions=descriptions, writers={table: footers[table].created_by for table in TABLES},
        added_columns=added_columns)
