"""The variants group: each sample converted to its two tables (``sample_variants``,
``sample_reference_blocks``; lib/vcf/publish.py), the catalog tables over them, and the locus-ordered
``cohort_variants`` (lib/cohort/).

cohort_variants: the locus-ordered copy of the variant tables, for "every sample at this marker".

New samples are appended as one delta file per touched partition; partitions with too many files, or
holding a re-converted sample, are compacted into a new generation folder. Everything becomes
visible at once when the manifest (``registry/cohort/state.json``) is replaced. See docs/cohort-layout.md.
"""

import time

import dagster as dg
from pydantic import Field

from genolake_assets.assets.shared import (
    COLUMN_SCHEMA,
    CONVERSION_POOL,
    EAGER,
    PARTITION_ROW_COUNT,
    ROW_COUNT,
    TABLE_NAME,
    URI,
    arrow_columns,
    fail_for_bad_partitions,
    link,
    registration_metadata,
    samples_backfill_policy,
    samples_partitions,
    table_name,
    table_schema,
)
from genolake_assets.lib.cohort.build import ConcurrentWriterError, build_cohort
from genolake_assets.lib.cohort.layout import (
    COHORT_COLUMNS,
    COHORT_PREFIX,
    COHORT_SCHEMA,
    DEFAULT_MAX_FILES_PER_PARTITION,
    DEFAULT_MAX_SAMPLES_PER_RUN,
    STATE_KEY,
)
from genolake_assets.lib.cohort.sample_tokens import samples_table_tokens
from genolake_assets.lib.vcf.publish import PublishedSample, convert_and_publish
from genolake_assets.lib.vcf.schema import REFERENCE_BLOCKS, VARIANT_COLUMNS, VARIANTS
from genolake_assets.resources.catalog.catalog import Catalog
from genolake_assets.resources.cohort.engine import CohortEngine
from genolake_assets.resources.conversion.engine import ConverterResource
from genolake_assets.resources.lake.lake import LakeResource

SAMPLE_VARIANTS = dg.AssetKey("sample_variants")
SAMPLE_REFERENCE_BLOCKS = dg.AssetKey("sample_reference_blocks")
ASSET_OF_TABLE = {VARIANTS: SAMPLE_VARIANTS, REFERENCE_BLOCKS: SAMPLE_REFERENCE_BLOCKS}
TABLE_OF_ASSET = {asset: table for table, asset in ASSET_OF_TABLE.items()}
ROWS_CHECK = "rows_match_records"
SCHEMA_CHECK = "schema_matches_catalog"


def _table_metadata(result: PublishedSample, table: str, pseudonymise: bool = False) -> dict:
    """Shown in the Dagster UI; when pseudonymising without the sample name or the landed file's name."""
    sample, record = result.sample, result.record
    rows = sample.variant_rows if table == VARIANTS else sample.reference_block_rows
    named = {} if pseudonymise else {"sample_name": record.sample_name}
    source = {} if pseudonymise else {"source_uri": dg.MetadataValue.url(record.source_uri)}
    return {
        "sample_id": record.sample_id,
        **named,
        "rows": rows,
        PARTITION_ROW_COUNT: rows,
        "records_read": result.records_read,
        "bytes": sample.bytes[table],
        "sha256": result.sha256[table],
        "uri": dg.MetadataValue.url(result.uris[table]),
        URI: dg.MetadataValue.url(result.uris[table]),
        **source,
        "raw_uri": dg.MetadataValue.url(record.raw_uri or ""),
        "source_sha256": record.sha256,
        "engine": f"{record.engine} {record.engine_version}",
        "written_by": result.writers[table],
        "seconds": record.conversion_seconds,
        "new_columns": ", ".join(result.added_columns[table]) or "none",
        COLUMN_SCHEMA: table_schema(arrow_columns(result.arrow_schemas[table]), result.descriptions),
    }


def _checks(result: PublishedSample) -> list[dg.AssetCheckResult]:
    sample = result.sample
    accounted = sample.variant_records + sample.reference_block_records + sample.spanning_deletion_records
    rows_ok = accounted == result.records_read
    added = result.added_columns
    return [
        dg.AssetCheckResult(asset_key=SAMPLE_VARIANTS, check_name=ROWS_CHECK, passed=rows_ok, metadata={
            "records_read": result.records_read, "variant_records": sample.variant_records,
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
    published, failed = convert_and_publish(lake.store(), converter, catalog, keys, scratch=lake.scratch,
                                            local_copy=lake.local_copy, pseudonymise=lake.pseudonymise,
                                            context=context, log=context.log.info)
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
            "rows_in_run": sum((r.sample.variant_rows if table == VARIANTS else r.sample.reference_block_rows)
                               for r in done.values()),
            "bytes_in_run": sum(r.sample.bytes[table] for r in done.values()),
        })
    if len(keys) == 1:
        yield from _checks(first)
    else:
        ok = all(_checks(r)[0].passed for r in done.values())
        added = sorted({c for r in done.values() for cols in r.added_columns.values() for c in cols})
        yield dg.AssetCheckResult(asset_key=SAMPLE_VARIANTS, check_name=ROWS_CHECK, passed=ok,
                                  metadata={"samples": len(done)})
        yield dg.AssetCheckResult(asset_key=SAMPLE_VARIANTS, check_name=SCHEMA_CHECK, passed=not added,
                                  severity=dg.AssetCheckSeverity.WARN,
                                  metadata={"new_columns": ", ".join(added) or "none"})


def _catalog_table(table: str, upstream: str, description: str) -> dg.AssetsDefinition:
    """A catalog entry over every sample partition of ``table`` (one view / one Glue table)."""

    @dg.asset(
        name=f"{table}_table", deps=[upstream], group_name="variants", kinds={"duckdb", "glue"},
        owners=["team:genomics-data-engineering"], automation_condition=EAGER, description=description,
    )
    def catalog_entry(catalog: Catalog) -> dg.MaterializeResult:
        started = time.perf_counter()
        registration = catalog.register_table(table, table)
        return dg.MaterializeResult(metadata=registration_metadata(catalog, registration, VARIANT_COLUMNS, started))

    return catalog_entry


variants_table = _catalog_table(
    "variants", "sample_variants",
    "The `variants` table in the catalog: one view over every sample partition of the variant table. New "
    "INFO/FORMAT keys from later samples appear as nullable columns.")
reference_blocks_table = _catalog_table(
    "reference_blocks", "sample_reference_blocks",
    "The `reference_blocks` table in the catalog: gVCF reference blocks and hom-ref calls per sample, for "
    "'covered but not variant' in cohort queries.")


COHORT_TABLE = "cohort_variants"
PARTITION_KEYS = ["contig", "bin"]


class CohortConfig(dg.Config):
    max_files_per_partition: int = Field(default=DEFAULT_MAX_FILES_PER_PARTITION, description="Compact a partition once it has more files")
    max_samples_per_run: int = Field(default=DEFAULT_MAX_SAMPLES_PER_RUN, description="New samples folded in per run (bounds a run's time "
                                                              "and scratch disk; memory does not grow with it); "
                                                              "the rest follow in the next run")


def _sample_tokens(lake: LakeResource) -> dict[str, str]:
    """sample_id → version token of every sample whose tables are in the lake, from the samples table."""
    return samples_table_tokens(lake.store(), lake.local_copy)


@dg.asset(
    deps=["samples_table"], group_name="variants", kinds={"parquet", "duckdb", "glue"},
    owners=["team:genomics-data-engineering"], pool="cohort_writer",
    automation_condition=dg.AutomationCondition.eager(),
    metadata={COLUMN_SCHEMA: table_schema(arrow_columns(COHORT_SCHEMA), COHORT_COLUMNS)},
    description="The locus-ordered cohort table `cohort_variants`: every sample's variant rows and reference "
                "blocks, partitioned by contig and 1 Mb bin, sorted by position, so all samples at one marker "
                "are a few row groups of one partition. New samples are appended, small files compacted; "
                "readers switch at once via the manifest registry/cohort/state.json.",
)
def cohort_variants(context: dg.AssetExecutionContext, config: CohortConfig, lake: LakeResource,
                    catalog: Catalog, cohort_engine: CohortEngine) -> dg.MaterializeResult:
    started = time.perf_counter()
    store = lake.store()
    try:
        built = build_cohort(store, lake.local_copy, lake.scratch / "cohort" / context.run_id, _sample_tokens(lake),
                             max_files=config.max_files_per_partition, max_samples=config.max_samples_per_run,
                             log=context.log.warning, updater=cohort_engine.updater(context, context.log.info))
    except ConcurrentWriterError as error:
        raise dg.Failure(str(error)) from error
    update = built.update
    new_state = update.state
    registration = catalog.register_file_set(
        COHORT_TABLE, COHORT_SCHEMA, PARTITION_KEYS,
        {(p.contig, str(p.bin)): new_state.live_keys(p) for p in new_state.partitions.values()})
    rows = sum(p.rows for p in new_state.partitions.values())
    return dg.MaterializeResult(metadata={
        "table": COHORT_TABLE, TABLE_NAME: table_name(catalog, COHORT_TABLE), "engine": cohort_engine.engine,
        "version": new_state.version, "samples": len(new_state.samples),
        "samples_added": built.samples_added, "samples_reconverted": built.samples_reconverted,
        "samples_pending": built.samples_pending,
        "rows": rows, ROW_COUNT: rows, "rows_added": update.rows_added, "rows_removed": update.rows_removed,
        "partitions": len(new_state.partitions), "files": registration.files,
        "appended_partitions": len(update.appended_partitions), "compacted_partitions": len(update.compacted_partitions),
        "bytes_written": update.bytes_written, "retired_folders_deleted": built.retired_folders_deleted,
        "interrupted_run_files_removed": len(built.orphans_removed),
        "manifest": link(store.uri(STATE_KEY)), URI: link(store.uri(COHORT_PREFIX.rstrip("/"))),
        "seconds": round(time.perf_counter() - started, 2),
        COLUMN_SCHEMA: table_schema(registration.columns, COHORT_COLUMNS),
    })


catalog_tables = dg.define_asset_job(
    name="refresh_catalog",
    selection=dg.AssetSelection.assets("variants_table", "reference_blocks_table", "samples_table"),
    description="Refresh the catalog views and the samples table.",
)

cohort_job = dg.define_asset_job(
    name="refresh_cohort",
    selection=dg.AssetSelection.assets(cohort_variants),
    description="Fold new or re-converted samples into the locus-ordered cohort table and compact small files.",
)
