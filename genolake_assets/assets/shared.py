"""What the asset modules share, and define no asset: the partition definitions and pools, per-partition
loops of multi-partition runs, and the metadata the UI reads (column schemas, ``dagster/*`` keys,
catalog registrations).

Dagster 1.13 reads the ``dagster/*`` keys by name (``TableMetadataSet`` is not exported from ``dagster``),
and merges the column descriptions of an asset's definition schema into the schema of its latest
materialisation.
"""

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pyarrow as pa

from genolake_assets.resources.catalog.catalog import Catalog, TableRegistration
from genolake_assets.resources.catalog.duckdb_catalog import DuckDbCatalog
from genolake_assets.settings import samples_per_run

samples_partitions = dg.DynamicPartitionsDefinition(name="samples")

alignments_partitions = dg.DynamicPartitionsDefinition(name="alignments")
"""One partition per landed alignment file (BAM)."""

samples_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=samples_per_run())
"""A backfill of N samples runs as ceil(N / GENOLAKE_SAMPLES_PER_CLUSTER) runs; with the Hail engine on EMR each
run is one transient cluster. raw_vcf and sample_variants share it: a job mixing policies would silently use
the smaller one."""

CONVERSION_POOL = "genolake_conversion"
"""Concurrency pool of sample_variants: `dagster instance concurrency set genolake_conversion 35` caps how many
conversion runs (EMR clusters, with the Hail engine) run at once."""


T = TypeVar("T")


def each_partition(context: dg.AssetExecutionContext, keys: Sequence[str], work: Callable[[str], T],
                   ) -> tuple[dict[str, T], dict[str, str]]:
    """Run ``work`` per key; collect failures instead of stopping at the first."""
    done: dict[str, T] = {}
    failed: dict[str, str] = {}
    for key in keys:
        try:
            done[key] = work(key)
        except dg.Failure as exc:
            failed[key] = exc.description or str(exc)
            context.log.error(f"{key}: {failed[key]}")
    return done, failed


def fail_for_bad_partitions(context: dg.AssetExecutionContext, asset_keys: Sequence[dg.AssetKey],
                            done: dict, failed: dict[str, str],
                            metadata_of: Callable[[str, dg.AssetKey], dict]) -> None:
    """Record the good partitions of a multi-partition run, then fail the run naming the bad ones.

    ``metadata_of(partition key, asset key)``: each asset's event describes its own files."""
    if not failed:
        return
    for key in done:
        for asset_key in asset_keys:
            context.log_event(dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata_of(key, asset_key)))
    summary = "; ".join(f"{k}: {v}" for k, v in failed.items())
    raise dg.Failure(description=f"{len(failed)} of {len(done) + len(failed)} samples failed (quarantined): "
                     f"{summary}", metadata={"failed_samples": list(failed), "succeeded": len(done)})


COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
URI = "dagster/uri"
TABLE_NAME = "dagster/table_name"


def _describe(name: str, descriptions: Mapping[str, str]) -> str | None:
    if name in descriptions:
        return descriptions[name]
    if name.endswith("_unsplit"):
        return f"{name.removesuffix('_unsplit')} before splitting (split rows only)"
    if name.startswith(("info_", "fmt_")):
        section, key = name.split("_", 1)
        return f"{'INFO' if section == 'info' else 'FORMAT'}/{key.upper()} from the VCF header"
    return None


def _type_name(type_: pa.DataType) -> str:
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return f"list<{_type_name(type_.value_type)}>"
    return "date" if pa.types.is_date32(type_) else str(type_)


def arrow_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(field.name, _type_name(field.type)) for field in schema]


def table_schema(columns: Iterable[tuple[str, str]], descriptions: Mapping[str, str] = {}) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=name, type=type_, description=_describe(name, descriptions))
                                   for name, type_ in columns])


def table_name(catalog: Catalog, name: str) -> str:
    """The name a SQL user types: ``<duckdb file>.main.<view>`` locally, ``<glue database>.<table>`` on AWS."""
    if isinstance(catalog, DuckDbCatalog):
        return f"{Path(catalog.database).stem}.main.{name}"
    database = getattr(catalog, "database", None)
    return f"{database}.{name}" if database else name


def link(uri: str | None) -> dg.MetadataValue:
    """A clickable URL for a URI; a plain path for a local path (a ClinVar file given as one)."""
    if uri and "://" in uri:
        return dg.MetadataValue.url(uri)
    return dg.MetadataValue.path(uri or "")


EAGER = dg.AutomationCondition.eager()
"""Materialise as soon as an upstream changes (the catalog tables follow their partitions)."""


def registration_metadata(catalog: Catalog, registration: TableRegistration, descriptions: dict[str, str],
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
