"""Catalog entries: the variant, reference-block and samples tables a SQL engine queries."""

import time

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from genolake_assets.assets.schemas import (
    COLUMN_SCHEMA, ROW_COUNT, SAMPLE_COLUMNS, TABLE_NAME, VARIANT_COLUMNS, arrow_columns, table_name, table_schema,
)
from genolake_assets.lib.lake.layout import SAMPLE_REGISTRY_PREFIX, SAMPLES_TABLE_KEY
from genolake_assets.lib.lake.registry import SampleRecord
from genolake_assets.resources.catalog.catalog import Catalog, TableRegistration
from genolake_assets.resources.lake.lake import LakeResource

_EAGER = dg.AutomationCondition.eager()


def _registration_metadata(catalog: Catalog, registration: TableRegistration, descriptions: dict[str, str],
                           started: float) -> dict:
    return {
        "table": registration.name,
        TABLE_NAME: table_name(catalog, registration.name),
        "rows": registration.rows,
        "partitions": registration.files,
        "location": registration.location,
        ROW_COUNT: registration.rows,
        COLUMN_SCHEMA: table_schema(registration.columns, descriptions),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _catalog_table(table: str, upstream: str, description: str) -> dg.AssetsDefinition:
    """A catalog entry over every sample partition of ``table`` (one view / one Glue table)."""

    @dg.asset(
        name=f"{table}_table", deps=[upstream], group_name="variants", kinds={"duckdb", "glue"},
        owners=["team:genomics-data-engineering"], automation_condition=_EAGER, description=description,
    )
    def catalog_entry(catalog: Catalog) -> dg.MaterializeResult:
        started = time.perf_counter()
        registration = catalog.register_table(table, table)
        return dg.MaterializeResult(metadata=_registration_metadata(catalog, registration, VARIANT_COLUMNS, started))

    return catalog_entry


variants_table = _catalog_table(
    "variants", "sample_variants",
    "The `variants` table in the catalog: one view over every sample partition of the variant table. New "
    "INFO/FORMAT keys from later samples appear as nullable columns.")
reference_blocks_table = _catalog_table(
    "reference_blocks", "sample_reference_blocks",
    "The `reference_blocks` table in the catalog: gVCF reference blocks and hom-ref calls per sample, for "
    "'covered but not variant' in cohort queries.")


# One row per SampleRecord (lib/lake/registry.py), in its field order.
SAMPLES_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("sample_name", pa.string()), ("source_uri", pa.string()),
    ("source_key", pa.string()), ("raw_key", pa.string()), ("raw_uri", pa.string()), ("sha256", pa.string()),
    ("size_bytes", pa.int64()), ("file_format", pa.string()), ("reference_genome", pa.string()),
    ("caller", pa.string()), ("samples_in_file", pa.int32()), ("registered_at", pa.string()),
    ("status", pa.string()), ("reason", pa.string()), ("engine", pa.string()), ("engine_version", pa.string()),
    ("converted_at", pa.string()), ("conversion_seconds", pa.float64()), ("records_read", pa.int64()),
    ("variant_rows", pa.int64()), ("reference_block_rows", pa.int64()), ("variant_bytes", pa.int64()),
    ("reference_block_bytes", pa.int64()),
])


def samples_arrow_table(records: list[SampleRecord]) -> pa.Table:
    rows = [vars(r) for r in sorted(records, key=lambda r: r.sample_id)]
    return pa.Table.from_pylist(rows, schema=SAMPLES_SCHEMA)


@dg.asset(
    deps=["raw_vcf", "sample_variants"], group_name="ingest", kinds={"parquet", "duckdb", "glue"},
    owners=["team:genomics-data-engineering"], automation_condition=_EAGER,
    metadata={COLUMN_SCHEMA: table_schema(arrow_columns(SAMPLES_SCHEMA), SAMPLE_COLUMNS)},
    description="One row per ingested sample: source file, checksum, size, caller and reference genome, "
                "ingest and conversion times, engine, rows per table, and status (converted / quarantined "
                "with the reason). How a report row is traced back to its VCF.",
)
def samples_table(lake: LakeResource, catalog: Catalog) -> dg.MaterializeResult:
    started = time.perf_counter()
    store = lake.store()
    records = [SampleRecord.from_json(store.read_bytes(obj.key)) for obj in store.list_objects(SAMPLE_REGISTRY_PREFIX)
               if obj.key.endswith(".json")]
    table = samples_arrow_table(records)
    staged = lake.scratch / "samples.parquet"
    pq.write_table(table, staged, compression="zstd")
    store.upload(staged, SAMPLES_TABLE_KEY)
    registration = catalog.register_file_table("samples", SAMPLES_TABLE_KEY)
    statuses = {s: sum(1 for r in records if r.status == s) for s in sorted({r.status for r in records})}
    quarantined = [r for r in records if r.status == "quarantined"]
    return dg.MaterializeResult(metadata={
        **_registration_metadata(catalog, registration, SAMPLE_COLUMNS, started),
        **{f"samples_{status}": count for status, count in statuses.items()},
        "quarantined": dg.MetadataValue.md("\n".join(f"- `{r.sample_id}`: {r.reason}" for r in quarantined)
                                           or "none"),
    })
