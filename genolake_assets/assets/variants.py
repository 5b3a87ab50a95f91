"""sample_variants + sample_reference_blocks: one VCF sample converted to the two tables."""


import tempfile
import time
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from genolake_assets.assets.batch import fail_for_bad_partitions
from genolake_assets.assets.partitions import samples_partitions
from genolake_assets.assets.records import load_record, mark_quarantined, save_published, save_record
from genolake_assets.assets.schemas import (
    COLUMN_SCHEMA, PARTITION_ROW_COUNT, URI, VARIANT_COLUMNS, arrow_columns, header_descriptions, table_schema,
)
from genolake_assets.lib.errors import InputProblem, VcfFormatError
from genolake_assets.lib.lake_layout import partition_key
from genolake_assets.lib.quarantine import quarantine, stored_file_name
from genolake_assets.lib.registry import SampleRecord, utc_now
from genolake_assets.lib.variant_schema import REFERENCE_BLOCKS, TABLES, VARIANTS
from genolake_assets.lib.vcf_header import read_header
from genolake_assets.resources.catalog import Catalog
from genolake_assets.resources.engine import ConverterResource
from genolake_assets.resources.lake import LakeResource
from genolake_assets.resources.object_store import sha256_of_file

SAMPLE_VARIANTS = dg.AssetKey("sample_variants")
SAMPLE_REFERENCE_BLOCKS = dg.AssetKey("sample_reference_blocks")
ASSET_OF_TABLE = {VARIANTS: SAMPLE_VARIANTS, REFERENCE_BLOCKS: SAMPLE_REFERENCE_BLOCKS}
CATALOG_TABLE_OF = {VARIANTS: "variants", REFERENCE_BLOCKS: "reference_blocks"}
ROWS_CHECK = "rows_match_records"
SCHEMA_CHECK = "schema_matches_catalog"


class SchemaConflict(ValueError):
    """A column whose type differs from the catalog's: history is never rewritten silently."""


def schema_conflicts(staged: Path, catalog_columns: dict[str, str] | None, catalog: Catalog) -> tuple[
        list[str], list[str]]:
    """(columns whose type conflicts with the catalog, columns the catalog does not have yet)."""
    if catalog_columns is None:
        return [], []
    new_types = catalog.sql_type_of(pq.read_schema(staged))
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


def convert_samples(lake: LakeResource, converter: ConverterResource, catalog: Catalog,
                    sample_ids: list[str]) -> tuple[dict[str, dict], dict[str, str]]:
    """Convert samples grouped by their raw file (one pass per file); publish each sample atomically."""
    store = lake.store()
    records: dict[str, SampleRecord] = {}
    failed: dict[str, str] = {}
    for sample_id in sample_ids:
        record = load_record(store, sample_id)
        if record is None or not record.raw_key or record.status == "quarantined" and not record.sha256:
            failed[sample_id] = f"{sample_id} is not registered: materialize raw_vcf first"
            continue
        records[sample_id] = record
    by_file: dict[str, list[str]] = defaultdict(list)
    for sample_id, record in records.items():
        by_file[record.raw_key].append(sample_id)
    catalog_columns = {t: catalog.table_columns(CATALOG_TABLE_OF[t]) for t in TABLES}
    published: dict[str, dict] = {}
    for raw_key, ids in by_file.items():
        names = {records[i].sample_name: i for i in ids}
        with tempfile.TemporaryDirectory(dir=lake.scratch, prefix="convert-") as tmp:
            started = time.perf_counter()
            local = lake.local_copy(raw_key)
            try:
                report = converter.convert(local, names, Path(tmp), pseudonymous=lake.pseudonymise)
            except VcfFormatError as exc:
                for sample_id in ids:
                    failed[sample_id] = str(_fail(lake, records[sample_id], exc.detail).description)
                continue
            seconds = time.perf_counter() - started
            descriptions = {**VARIANT_COLUMNS, **header_descriptions(read_header(local))}
            for sample_id in ids:
                record = records[sample_id]
                sample = report.samples[record.sample_name]
                try:
                    published[sample_id] = _publish(lake, catalog, catalog_columns, record, sample, report, seconds,
                                                   descriptions)
                except SchemaConflict as exc:
                    problem = InputProblem(file=record.source_uri, problem=str(exc), code="schema_conflict")
                    failed[sample_id] = str(_fail(lake, record, problem).description)
    return published, failed


def _publish(lake, catalog, catalog_columns, record: SampleRecord, sample, report, seconds: float,
             descriptions: dict[str, str]) -> dict:
    store = lake.store()
    added_columns: dict[str, list[str]] = {}
    for table in TABLES:
        conflicts, added = schema_conflicts(Path(sample.files[table]), catalog_columns[table], catalog)
        if conflicts:
            raise SchemaConflict(f"{table}: column types differ from the catalog: {conflicts}")
        added_columns[table] = added
    uris, sha256, schemas, writers = {}, {}, {}, {}
    for table in TABLES:
        key = partition_key(table, record.sample_id)
        staged = Path(sample.files[table])
        sha256[table] = sha256_of_file(staged)
        footer = pq.read_metadata(staged)
        schemas[table] = table_schema(arrow_columns(footer.schema.to_arrow_schema()), descriptions)
        writers[table] = footer.created_by
        stored = store.upload(staged, key)
        if stored.size != sample.bytes[table]:
            raise OSError(f"{store.uri(key)}: {stored.size} bytes stored, {sample.bytes[table]} written")
        uris[table] = store.uri(key)
    record.status, record.reason = "converted", None
    record.engine, record.engine_version = report.engine, report.engine_version
    record.converted_at, record.conversion_seconds = utc_now(), round(seconds, 3)
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
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=25),
    can_subset=False,
)
def sample_variants(context: dg.AssetExecutionContext, lake: LakeResource, converter: ConverterResource,
                    catalog: Catalog):
    keys = list(context.partition_keys)
    published, failed = convert_samples(lake, converter, catalog, keys)
    done = {k: published[k] for k in keys if k in published}
    if failed:
        fail_for_bad_partitions(context, list(ASSET_OF_TABLE.values()), done,
                                {k: v for k, v in failed.items()},
                                lambda k: _table_metadata(done[k], VARIANTS, lake.pseudonymise))
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
