"""The ingest group: sequencer transfers into landing (``sequencer_runs``, ``start_sequencer_transfer``),
each landed VCF registered as ``raw_vcf`` (validated, checksummed, copied into raw/), and the
``samples_table`` that traces every report row back to its file.
"""

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from genolake_assets.assets.shared import (
    COLUMN_SCHEMA,
    EAGER,
    URI,
    arrow_columns,
    each_partition,
    fail_for_bad_partitions,
    registration_metadata,
    samples_backfill_policy,
    samples_partitions,
    table_schema,
)
from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.lake.checksums import sha256_of_file
from genolake_assets.lib.lake.landing import mark_copied_into_raw
from genolake_assets.lib.lake.layout import (
    SAMPLE_REGISTRY_PREFIX,
    SAMPLES_TABLE_INDEX_KEY,
    SAMPLES_TABLE_KEY,
    raw_vcf_key,
)
from genolake_assets.lib.lake.leftovers import temp_file_prefix
from genolake_assets.lib.lake.quarantine import quarantine, stored_file_name
from genolake_assets.lib.lake.records import load_landing, load_record, mark_quarantined, save_record
from genolake_assets.lib.lake.registry import SAMPLE_COLUMNS, SAMPLES_SCHEMA, SampleRecord, utc_now
from genolake_assets.lib.lake.samples_table import refresh_samples_table
from genolake_assets.lib.reports.output import markdown_text
from genolake_assets.lib.vcf.header import read_header
from genolake_assets.lib.vcf.source import verify_readable
from genolake_assets.resources.catalog.catalog import Catalog
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.resources.transfer.transfer import TransferResource


def register_sample(lake: LakeResource, sample_id: str) -> SampleRecord:
    """Validate the landed file of ``sample_id`` and copy it, content-addressed, into raw/."""
    store = lake.store()
    try:
        landing = load_landing(store, sample_id)
    except FileNotFoundError as exc:
        raise dg.Failure(description=str(exc)) from exc
    record = SampleRecord(sample_id=sample_id, sample_name=landing.sample_name, source_uri=landing.source_uri,
                          source_key=landing.source_key, samples_in_file=landing.samples_in_file)
    try:
        local = lake.local_copy(landing.source_key)
        header = read_header(local)
        if landing.sample_name not in header.samples:
            raise VcfFormatError(landing.source_uri, f"sample {landing.sample_name!r} is no longer in the header",
                                 code="sample_missing")
        verify_readable(local)
    except (VcfFormatError, FileNotFoundError) as exc:
        problem = exc.detail if isinstance(exc, VcfFormatError) else None
        if problem is not None:
            quarantine(store, landing.source_key, problem, folder=sample_id,
                       name=stored_file_name(landing.source_key, lake.pseudonymise, sample_id))
        mark_quarantined(store, record, str(exc))
        raise dg.Failure(description=f"{sample_id}: {exc}", metadata={"sample_id": sample_id,
                                                                       "source_uri": landing.source_uri,
                                                                       "reason": str(exc)}) from exc
    digest = sha256_of_file(local)
    # Content-addressed; when pseudonymising the copy is "source.vcf.gz" rather than the uploader's file name.
    raw_key = raw_vcf_key(digest, stored_file_name(landing.source_key, lake.pseudonymise, "source"))
    if not store.exists(raw_key):
        store.upload(local, raw_key)
    mark_copied_into_raw(store, landing.source_key, landing.source_etag, raw_key)
    previous = load_record(store, sample_id)
    record.raw_key, record.raw_uri, record.sha256 = raw_key, store.uri(raw_key), digest
    record.size_bytes = local.stat().st_size
    record.file_format, record.reference_genome, record.caller = (header.file_format, header.reference_genome,
                                                                  header.caller)
    record.registered_at, record.status = utc_now(), "registered"
    if previous is not None and previous.sha256 == digest and previous.status == "converted":
        record = previous  # same bytes as what is already converted: nothing changes
    save_record(store, record)
    return record


@dg.asset(
    partitions_def=samples_partitions,
    deps=["sequencer_runs"],
    group_name="ingest",
    kinds={"vcf", "s3"},
    owners=["team:genomics-data-engineering"],
    backfill_policy=samples_backfill_policy,
    description=(
        "One landed VCF sample, registered: the header is parsed and validated, the whole file is "
        "decompressed once to check its integrity (bgzip EOF marker and gzip CRCs), its SHA-256 is "
        "recorded, and the file is copied content-addressed into `raw/vcf/`. A multi-sample VCF "
        "registers one partition per sample. Bad input is quarantined with a reason and fails only "
        "its own partition."
    ),
)
def raw_vcf(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    done, failed = each_partition(context, context.partition_keys, lambda key: register_sample(lake, key))
    fail_for_bad_partitions(context, [context.asset_key], done, failed,
                            lambda key, _asset: _metadata(done[key], lake.pseudonymise))
    for key, record in done.items():  # each partition's event describes its own sample
        context.add_asset_metadata(_metadata(record, lake.pseudonymise), partition_key=key)
    return dg.MaterializeResult(metadata={"samples_in_run": len(done),
                                          "seconds": round(time.perf_counter() - started, 3)})


def _metadata(record: SampleRecord, pseudonymise: bool = False) -> dict:
    """Shown in the Dagster UI; when pseudonymising without the sample name or the landed file's name
    (the samples table has both, for those allowed to read it)."""
    named = {} if pseudonymise else {"sample_name": record.sample_name,
                                     "source_uri": dg.MetadataValue.url(record.source_uri)}
    return {
        "sample_id": record.sample_id,
        **named,
        "raw_uri": dg.MetadataValue.url(record.raw_uri or ""),
        URI: dg.MetadataValue.url(record.raw_uri or ""),
        "sha256": record.sha256,
        "bytes": record.size_bytes or 0,
        "reference_genome": record.reference_genome or "unknown",
        "caller": record.caller or "unknown",
        "samples_in_file": record.samples_in_file,
    }


@dg.asset(
    deps=["raw_vcf", "sample_variants"], group_name="ingest", kinds={"parquet", "duckdb", "glue"},
    owners=["team:genomics-data-engineering"], automation_condition=EAGER,
    metadata={COLUMN_SCHEMA: table_schema(arrow_columns(SAMPLES_SCHEMA), SAMPLE_COLUMNS)},
    description="One row per ingested sample: source file, checksum, size, caller and reference genome, "
                "ingest and conversion times, engine, rows per table, and status (converted / quarantined "
                "with the reason). How a report row is traced back to its VCF.",
)
def samples_table(lake: LakeResource, catalog: Catalog) -> dg.MaterializeResult:
    started = time.perf_counter()
    store = lake.store()
    listing = [(obj.key, obj.etag) for obj in store.list_objects(SAMPLE_REGISTRY_PREFIX)]
    # The table maps ids to real names (docs/phi.md): the last table is read and the new one staged in private
    # files (mode 0600, names of their own, so concurrent runs never share them), removed whatever happens.
    with _private_file("samples-previous-", lake) as previous, _private_file("samples-index-", lake) as index_path:
        previous_table = _download(store, SAMPLES_TABLE_KEY, previous)
        previous_index = _download(store, SAMPLES_TABLE_INDEX_KEY, index_path)
        refresh = refresh_samples_table(listing, store.read_bytes, previous_table, previous_index)
    table = refresh.table
    with _private_file("samples-", lake) as staged:
        pq.write_table(table, staged, compression="zstd")
        store.upload(staged, SAMPLES_TABLE_KEY)
    with _private_file("samples-index-", lake) as staged:  # after the table: see lib/lake/samples_table.py
        pq.write_table(refresh.index, staged, compression="zstd")
        store.upload(staged, SAMPLES_TABLE_INDEX_KEY)
    registration = catalog.register_file_table("samples", SAMPLES_TABLE_KEY)
    status_counts = pc.value_counts(table["status"]).to_pylist()
    statuses = {entry["values"]: entry["counts"] for entry in sorted(status_counts, key=lambda e: e["values"] or "")}
    quarantined_rows = table.filter(pc.equal(table["status"], "quarantined")).to_pylist()
    quarantined = [SampleRecord(**row) for row in quarantined_rows]
    return dg.MaterializeResult(metadata={
        **registration_metadata(catalog, registration, SAMPLE_COLUMNS, started),
        **{f"samples_{status}": count for status, count in statuses.items()},
        "registry_records_read": refresh.records_read, "rows_kept": refresh.rows_kept,
        "rows_removed": refresh.rows_removed, "full_rebuild": refresh.full_rebuild,
        "quarantined": dg.MetadataValue.md("\n".join(f"- `{r.sample_id}`: {_shown_reason(r, lake.pseudonymise)}"
                                                     for r in quarantined) or "none"),
    })


@contextmanager
def _private_file(prefix: str, lake: LakeResource) -> Iterator[Path]:
    """A new mode-0600 file in the lake's scratch, removed on the way out."""
    descriptor, name = tempfile.mkstemp(prefix=temp_file_prefix() + prefix, suffix=".parquet", dir=lake.scratch)
    os.close(descriptor)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _download(store, key: str, target: Path) -> Path | None:
    """``key`` into ``target`` (the file itself in a local lake), or None when it does not exist."""
    direct = store.local_path(key)
    if direct is not None:
        return direct if direct.exists() else None
    if not store.exists(key):
        return None
    store.download(key, target)
    return target


def _shown_reason(record: SampleRecord, pseudonymise: bool) -> str:
    """A quarantine reason for the UI: pseudonymised, without the sample's name or the landed file's (the
    samples table keeps the full reason); always literal markdown on one line, so it cannot break the list."""
    reason = record.reason or ""
    if pseudonymise:
        file_name = record.source_key.rsplit("/", 1)[-1]
        for text in sorted({record.source_uri, record.source_key, file_name} - {""}, key=len, reverse=True):
            reason = reason.replace(text, "the landed file")
        if record.sample_name:
            reason = reason.replace(record.sample_name, record.sample_id)
    return markdown_text(reason)


sequencer_runs = dg.AssetSpec(
    "sequencer_runs", group_name="ingest", kinds={"datasync", "s3"}, owners=["team:genomics-data-engineering"],
    description="Run folders on the sequencers' storage (NFS/SMB), outside the lake. AWS DataSync (or the local copier) "
                "brings the last days' dated run folders, and folders named in ad-hoc manifests, into "
                "landing/sequencers/. Each transfer execution is an observation here: status, bytes, files, duration.",
)
from genolake_assets.sensors.landing import INGEST_JOB_NAME


class TransferRequest(dg.Config):
    includes: list[str]
    """Share-relative include patterns (DataSync SIMPLE_PATTERN syntax)."""
    reason: str = "manual"
    skip_if_active: bool = True
    """The schedule's rule: never start an execution while another is queued or running."""


@dg.op(description="Start one transfer execution with the given include filters, unless one is already queued or "
                   "running (for the schedule); ad-hoc manifests start theirs regardless, as DataSync queues them.")
def start_transfer(context: dg.OpExecutionContext, config: TransferRequest, transfer: TransferResource) -> dict:
    if config.skip_if_active:
        active = transfer.active()
        if active:
            context.log.info(f"not starting a transfer: {', '.join(f'{e.execution_id} ({e.status})' for e in active)} "
                             "is still queued or running")
            return {"started": None, "skipped_for": [e.execution_id for e in active]}
    execution = transfer.start(list(config.includes), config.reason)
    context.log.info(f"started transfer {execution.execution_id} ({execution.status}) for {config.reason}: "
                     f"{len(config.includes)} include pattern(s)")
    context.log_event(dg.AssetObservation(asset_key=sequencer_runs.key, metadata={
        "execution_id": execution.execution_id, "status": execution.status, "reason": config.reason,
        "includes": dg.MetadataValue.json(list(config.includes))}))
    return {"started": execution.execution_id, "status": execution.status}


@dg.job(name="start_sequencer_transfer", description="Start a sequencer → lake transfer (DataSync task execution, or "
                                                    "the local copier) with include filters.")
def start_sequencer_transfer():
    start_transfer()


ingest_samples = dg.define_asset_job(
    name=INGEST_JOB_NAME,
    selection=dg.AssetSelection.assets("raw_vcf", "sample_variants").required_multi_asset_neighbors(),
    partitions_def=samples_partitions,
    description="Register and convert landed samples (one run per sample from the landing sensor, or a backfill).",
)
