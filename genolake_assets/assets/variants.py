"""sample_variants + sample_reference_blocks: one VCF sample converted to the two tables."""


import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from genolake_assets.assets.batch import fail_for_bad_partitions
from genolake_assets.assets.partitions import CONVERSION_POOL, samples_backfill_policy, samples_partitions
from genolake_assets.assets.records import load_record, mark_quarantined, save_published, save_record
from genolake_assets.assets.schemas import (
    COLUMN_SCHEMA, PARTITION_ROW_COUNT, URI, VARIANT_COLUMNS, arrow_columns, header_descriptions, table_schema,
)
from genolake_assets.lib.vcf.batch import ConversionJob, ConversionManifest, JobOutcome
from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.lake.layout import partition_key
from genolake_assets.lib.lake.quarantine import quarantine, stored_file_name
from genolake_assets.lib.lake.registry import SampleRecord, utc_now
from genolake_assets.lib.vcf.schema import REFERENCE_BLOCKS, TABLES, VARIANTS
from genolake_assets.lib.vcf.header import read_header, read_header_stream
from genolake_assets.resources.catalog.catalog import Catalog
from genolake_assets.resources.conversion.engine import ConverterResource
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.resources.lake.object_store import sha256_of_file

SAMPLE_VARIANTS = dg.AssetKey("sample_variants")
SAMPLE_REFERENCE_BLOCKS = dg.AssetKey("sample_reference_blocks")
ASSET_OF_TABLE = {VARIANTS: SAMPLE_VARIANTS, REFERENCE_BLOCKS: SAMPLE_REFERENCE_BLOCKS}
TABLE_OF_ASSET = {asset: table for table, asset in ASSET_OF_TABLE.items()}
CATALOG_TABLE_OF = {VARIANTS: "variants", REFERENCE_BLOCKS: "reference_blocks"}
ROWS_CHECK = "rows_match_records"
SCHEMA_CHECK = "schema_matches_catalog"
STAGING_PREFIX = "staging/convert"
"""Where a remote engine stages a batch's files in the lake before they are published (then removed)."""
FOOTER_TAIL_BYTES = 1 << 20


class SchemaConflict(ValueError):
    """A column whose type differs from the catalog's: history is never rewritten silently."""


def schema_conflicts(staged: pa.Schema, catalog_columns: dict[str, str] | None, catalog: Catalog) -> tuple[
        list[str], list[str]]:
    """(columns whose type conflicts with the catalog, columns the catalog does not have yet)."""
    if catalog_columns is None:
        return [], []
    new_types = catalog.sql_type_of(staged)
    conflicts = [f"{c}: {t} (catalog has {catalog_columns[c]})" for c, t in new_types.items()
                 if c in catalog_columns and catalog_columns[c] != t]
    added = [c for c in new_types if c not in catalog_columns]
    return conflicts, added


def _fail(lake: LakeResource, record: SampleRecord, problem: InputProblem) -> dg.Failure:
    source = record.raw_key or record.source_key
    quarantine(lake.store(), source, problem, folder=record.sample_id,
               name=stored_file_name(source, lake.pseudonymise, record.sample_id))
    mark_quarantined(lake.store(), record, str(problem))
    return dg.Failure(description=str(problem), metadata={"sample_id": record.sample_id, **problem.as_dict()})


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


def convert_samples(lake: LakeResource, converter: ConverterResource, catalog: Catalog, sample_ids: list[str],
                    context=None, log=None) -> tuple[dict[str, dict], dict[str, str]]:
    """Convert the samples as one batch (one job per raw file); publish each converted sample atomically.

    A local engine reads local files and stages into a scratch folder; a remote one (Hail on EMR) reads
    the raw files in the lake and stages under ``staging/convert/<batch>/`` there."""
    store = lake.store()
    log = log or (lambda message: None)
    records, failed = _records_to_convert(store, sample_ids)
    by_file: dict[str, list[str]] = defaultdict(list)
    for sample_id, record in records.items():
        by_file[record.raw_key].append(sample_id)
    catalog_columns = {t: catalog.table_columns(CATALOG_TABLE_OF[t]) for t in TABLES}
    published: dict[str, dict] = {}
    remote = converter.stages_in_lake()
    batch = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(dir=lake.scratch, prefix="convert-") as tmp:
        staging_root = store.uri(f"{STAGING_PREFIX}/{batch}") if remote else tmp
        jobs = {}
        for index, (raw_key, ids) in enumerate(by_file.items()):
            names = {records[i].sample_name: i for i in ids}
            jobs[f"vcf{index:04d}"] = ConversionJob(
                job_id=f"vcf{index:04d}", vcf_uri=store.uri(raw_key) if remote else str(lake.local_copy(raw_key)),
                samples=names, staging_uri=f"{staging_root}/vcf{index:04d}",
                name_columns=dict(names) if lake.pseudonymise else None)
        manifest = ConversionManifest(jobs=list(jobs.values()), result_uri=f"{staging_root}/result.json",
                                      regions_bed_uri=converter.regions_bed)
        try:
            result = converter.convert_batch(context, manifest, store, log)
            for outcome in result.outcomes:
                ids = list(jobs[outcome.job_id].samples.values())
                if not outcome.ok:
                    for sample_id in ids:
                        failed[sample_id] = str(_fail(lake, records[sample_id], outcome.problem).description)
                    continue
                descriptions = {**VARIANT_COLUMNS, **_header_descriptions(lake, records[ids[0]].raw_key)}
                for sample_id in ids:
                    record = records[sample_id]
                    sample = outcome.report.samples[record.sample_name]
                    try:
                        published[sample_id] = _publish(lake, catalog, catalog_columns, record, sample, outcome,
                                                       descriptions)
                    except SchemaConflict as exc:
                        problem = InputProblem(file=record.source_uri, problem=str(exc), code="schema_conflict")
                        failed[sample_id] = str(_fail(lake, record, problem).description)
        finally:
            if remote:
                try:
                    store.delete_prefix(f"{STAGING_PREFIX}/{batch}/")
                except Exception as exc:  # noqa: BLE001 - published samples stay published; say what is left
                    log(f"warning: staged files under {store.uri(f'{STAGING_PREFIX}/{batch}')} were not removed: {exc}")
    return published, failed


def _header_descriptions(lake: LakeResource, raw_key: str) -> dict[str, str]:
    """Column descriptions from the VCF's header (read from the stream: a remote VCF is not downloaded)."""
    store = lake.store()
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


def _publish(lake, catalog, catalog_columns, record: SampleRecord, sample, outcome: JobOutcome,
             descriptions: dict[str, str]) -> dict:
    store = lake.store()
    report = outcome.report
    footers = {table: _staged_footer(store, sample.files[table]) for table in TABLES}
    added_columns: dict[str, list[str]] = {}
    for table in TABLES:
        conflicts, added = schema_conflicts(footers[table].schema.to_arrow_schema(), catalog_columns[table], catalog)
        if conflicts:
            raise SchemaConflict(f"{table}: column types differ from the catalog: {conflicts}")
        added_columns[table] = added
    uris, sha256, schemas, writers = {}, {}, {}, {}
    for table in TABLES:
        key = partition_key(table, record.sample_id)
        staged = sample.files[table]
        footer = footers[table]
        schemas[table] = table_schema(arrow_columns(footer.schema.to_arrow_schema()), descriptions)
        writers[table] = footer.created_by
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
    return {"record": record, "sample": sample, "uris": uris, "added_columns": added_columns,
            "records_read": report.records_read, "sha256": sha256, "schemas": schemas, "writers": writers}


def _table_metadata(result: dict, table: str, pseudonymise: bool = False) -> dict:
    """Shown in the Dagster UI; when pseudonymising without the sample name or the landed file's name."""
    sample, record = result["sample"], result["record"]
    rows = sample.variant_rows if table == VARIANTS else sample.reference_block_rows
    named = {} if pseudonymise else {"sample_name": record.sample_name}
    source = {} if pseudonymise else {"source_uri": dg.MetadataValue.url(record.source_uri)}
    return {
        "sample_id": record.sample_id,
        **named,
        "rows": rows,
        PARTITION_ROW_COUNT: rows,
        "records_read": result["records_read"],
        "bytes": sample.bytes[table],
        "sha256": result["sha256"][table],
        "uri": dg.MetadataValue.url(result["uris"][table]),
        URI: dg.MetadataValue.url(result["uris"][table]),
        **source,
        "raw_uri": dg.MetadataValue.url(record.raw_uri or ""),
        "source_sha256": record.sha256,
        "engine": f"{record.engine} {record.engine_version}",
        "written_by": result["writers"][table],
        "seconds": record.conversion_seconds,
        "new_columns": ", ".join(result["added_columns"][table]) or "none",
        COLUMN_SCHEMA: result["schemas"][table],
    }


def _checks(result: dict) -> list[dg.AssetCheckResult]:
    sample = result["sample"]
    accounted = sample.variant_records + sample.reference_block_records + sample.spanning_deletion_records
    rows_ok = accounted == result["records_read"]
    added = result["added_columns"]
    return [
        dg.AssetCheckResult(asset_key=SAMPLE_VARIANTS, check_name=ROWS_CHECK, passed=rows_ok, metadata={
            "records_read": result["records_read"], "variant_records": sample.variant_records,
            "reference_block_records": sample.reference_block_records,
            "spanning_deletion_records": sample.spanning_deletion_records,
            "variant_rows_written": sample.variant_rows, "reference_block_rows_written": sample.reference_block_rows}),
        dg.AssetCheckResult(
            asset_key=SAMPLE_VARIANTS, check_name=SCHEMA_CHECK, passed=not any(added.values()),
            severity=dg.AssetCheckSeverity.WARN,
            description=None if not any(added.values()) else
            "new nullable columns; materialize variants_table / reference_blocks_table to add them to the catalog",
            metadata={"new_variant_columns": ", ".join(added[VARIANTS]) or "none",
                      "new_reference_block_columns": ", ".join(added[REFERENCE_BLOCKS]) or "none"}),
    ]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(SAMPLE_VARIANTS, deps=["raw_vcf"], partitions_def=samples_partitions, group_name="variants",
                     kinds={"parquet", "s3"}, owners=["team:genomics-data-engineering"],
                     description="The sample's variant rows (docs/variant-table.md): one row per sample × record × "
                                 "ALT allele, split with Hail's split_multi_hts semantics, typed from the VCF "
                                 "header, lossless. Written to variants/sample_id=<id>/ atomically."),
        dg.AssetSpec(SAMPLE_REFERENCE_BLOCKS, deps=["raw_vcf"], partitions_def=samples_partitions,
                     group_name="variants", kinds={"parquet", "s3"}, owners=["team:genomics-data-engineering"],
                     description="The sample's gVCF reference blocks (<NON_REF>-only records) and, for "
                                 "multi-sample VCFs, its confident hom-ref calls: what lets a cohort query tell "
                                 "'hom-ref with coverage' from 'not called'."),
    ],
    check_specs=[
        dg.AssetCheckSpec(ROWS_CHECK, asset=SAMPLE_VARIANTS,
                          description="Every VCF record read is accounted for by the rows written."),
        dg.AssetCheckSpec(SCHEMA_CHECK, asset=SAMPLE_VARIANTS,
                          description="The partition's columns are all in the catalog with the same types."),
    ],
    backfill_policy=samples_backfill_policy,
    pool=CONVERSION_POOL,
    can_subset=False,
)
def sample_variants(context: dg.AssetExecutionContext, lake: LakeResource, converter: ConverterResource,
                    catalog: Catalog):
    keys = list(context.partition_keys)
    published, failed = convert_samples(lake, converter, catalog, keys, context=context, log=context.log.info)
    done = {k: published[k] for k in keys if k in published}
    if failed:
        fail_for_bad_partitions(context, list(ASSET_OF_TABLE.values()), done,
                                {k: v for k, v in failed.items()},
                                lambda k, asset: _table_metadata(done[k], TABLE_OF_ASSET[asset], lake.pseudonymise))
    first = done[keys[0]]
    for table, asset_key in ASSET_OF_TABLE.items():
        if len(keys) == 1:
            yield dg.MaterializeResult(asset_key=asset_key, metadata=_table_metadata(first, table, lake.pseudonymise))
            continue
        for key, result in done.items():  # each partition's event describes its own sample
            context.add_asset_metadata(_table_metadata(result, table, lake.pseudonymise), asset_key=asset_key,
                                       partition_key=key)
        yield dg.MaterializeResult(asset_key=asset_key, metadata={
            "samples_in_run": len(done),
            "rows_in_run": sum((r["sample"].variant_rows if table == VARIANTS else r["sample"].reference_block_rows)
                               for r in done.values()),
            "bytes_in_run": sum(r["sample"].bytes[table] for r in done.values()),
        })
    if len(keys) == 1:
        yield from _checks(first)
    else:
        ok = all(_checks(r)[0].passed for r in done.values())
        added = sorted({c for r in done.values() for cols in r["added_columns"].values() for c in cols})
        yield dg.AssetCheckResult(asset_key=SAMPLE_VARIANTS, check_name=ROWS_CHECK, passed=ok,
                                  metadata={"samples": len(done)})
        yield dg.AssetCheckResult(asset_key=SAMPLE_VARIANTS, check_name=SCHEMA_CHECK, passed=not added,
                                  severity=dg.AssetCheckSeverity.WARN,
                                  metadata={"new_columns": ", ".join(added) or "none"})
