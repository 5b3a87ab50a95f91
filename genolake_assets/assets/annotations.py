"""ClinVar: the source file, its typed Parquet snapshot, and the catalog table reports join with.

A refresh writes a complete new snapshot next to the one being served and only then points the
``clinvar`` table at it (one catalog call), so a query sees one release or the other, never a mix.
"""

import json
import re
import shutil
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pyarrow as pa
from pydantic import Field

from genolake_assets.assets.shared import (
    COLUMN_SCHEMA,
    ROW_COUNT,
    TABLE_NAME,
    URI,
    arrow_columns,
    link,
    table_name,
    table_schema,
)
from genolake_assets.lib.clinvar.convert import ClinvarFormatError, convert_clinvar, detect_clinvar_format
from genolake_assets.lib.clinvar.fetch import SourceRefused, fetch, file_name_of
from genolake_assets.lib.clinvar.schema import CLINVAR_COLUMNS, CLINVAR_SCHEMA
from genolake_assets.lib.lake.checksums import sha256_of_file
from genolake_assets.lib.lake.layout import (
    CLINVAR_PARTITION_KEYS,
    CLINVAR_PUBLISHED_KEY,
    CLINVAR_REJECTED_PREFIX,
    CLINVAR_SNAPSHOT_KEY,
    CLINVAR_SOURCE_KEY,
    CLINVAR_TABLE_PREFIX,
    clinvar_raw_key,
    clinvar_snapshot_prefix,
)
from genolake_assets.resources.catalog.catalog import Catalog
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.settings import clinvar_source_policy

NCBI_VARIANT_SUMMARY = "https://ftp.ncbi.nlm.nih.gov/pub/clinvar/tab_delimited/variant_summary.txt.gz"
_OWNERS = ["team:genomics-data-engineering"]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# NCBI publishes weekly (the weekly_clinvar schedule fetches on Mondays): a release older than a week is
# stale; a day before that the refresh is due.
CLINVAR_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=7), warn_window=timedelta(days=6))
_CLINVAR_SCHEMA = table_schema(arrow_columns(CLINVAR_SCHEMA), CLINVAR_COLUMNS)


class ClinvarSourceConfig(dg.Config):
    uri: str = Field(default=NCBI_VARIANT_SUMMARY,
                     description="variant_summary.txt.gz or a ClinVar VCF: a URL under an allowed source (NCBI's "
                                 "ClinVar folder unless the operator lists others) or a file in a folder the "
                                 "operator allowed (default: NCBI's weekly variant_summary)")
    release: str | None = Field(default=None, description="Release label; by default taken from the file "
                                                       "(VCF fileDate, dated file name) or the server's Last-Modified")


class ClinvarConversionConfig(dg.Config):
    max_rejected_fraction: float = Field(
        default=0.01, description="Refuse to publish a release with more malformed rows than this fraction "
                                  "(they are still reported and kept aside); the served release stays")


def _read_json(store, key: str) -> dict:
    if not store.exists(key):
        raise FileNotFoundError(f"{store.uri(key)} does not exist yet: materialise the upstream ClinVar asset first")
    return json.loads(store.read_bytes(key))


def _write_json(store, key: str, value: dict) -> None:
    store.write_bytes(key, json.dumps(value, indent=2, sort_keys=True).encode())


@dg.asset(group_name="annotations", kinds={"clinvar", "s3"}, owners=_OWNERS,
          description="The ClinVar release file (variant_summary.txt.gz or ClinVar VCF), copied into the lake "
                      "under its checksum and checked to be a ClinVar file.")
def clinvar_source(context: dg.AssetExecutionContext, config: ClinvarSourceConfig,
                   lake: LakeResource) -> dg.MaterializeResult:
    store = lake.store()
    started = time.perf_counter()
    name = file_name_of(config.uri)
    local = lake.scratch / "clinvar_fetch" / name
    try:
        last_modified = fetch(config.uri, local, clinvar_source_policy())
    except (SourceRefused, FileNotFoundError) as refused:
        raise dg.Failure(description=str(refused), metadata={"uri": config.uri}) from None
    try:
        source_format = detect_clinvar_format(local)
    except ClinvarFormatError as error:
        raise dg.Failure(description=str(error), metadata={"uri": config.uri}) from error
    sha256 = sha256_of_file(local)
    raw_key = clinvar_raw_key(sha256, _UNSAFE.sub("_", name))
    if not store.exists(raw_key):
        store.upload(local, raw_key)
    record = {"uri": config.uri, "file_name": name, "sha256": sha256, "size_bytes": local.stat().st_size,
              "format": source_format, "raw_key": raw_key, "release": config.release,
              "last_modified": last_modified,
              "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write_json(store, CLINVAR_SOURCE_KEY, record)
    local.unlink(missing_ok=True)
    context.log.info(f"ClinVar source {config.uri} ({source_format}) stored at {store.uri(raw_key)}")
    return dg.MaterializeResult(metadata={
        "source_uri": link(config.uri), "format": source_format, "sha256": sha256, "size_bytes": record["size_bytes"],
        "raw_uri": link(store.uri(raw_key)), URI: link(store.uri(raw_key)), "last_modified": last_modified or "unknown",
        "seconds": round(time.perf_counter() - started, 2),
    }, data_version=dg.DataVersion(sha256))


@dg.asset(deps=[clinvar_source], group_name="annotations", kinds={"parquet", "s3"}, owners=_OWNERS,
          freshness_policy=CLINVAR_FRESHNESS, metadata={COLUMN_SCHEMA: _CLINVAR_SCHEMA},
          description="ClinVar as typed Parquet, one file per assembly and chromosome, in a new snapshot folder. "
                      "Malformed rows are counted, reported here and kept in quarantine/clinvar/, never dropped.")
def clinvar_variants(context: dg.AssetExecutionContext, config: ClinvarConversionConfig,
                     lake: LakeResource) -> dg.MaterializeResult:
    store = lake.store()
    source = _read_json(store, CLINVAR_SOURCE_KEY)
    local = lake.local_copy(source["raw_key"])
    work = lake.scratch / "clinvar" / source["sha256"]
    shutil.rmtree(work, ignore_errors=True)  # what a crashed attempt left
    started = time.perf_counter()
    conversion = convert_clinvar(local, work / "table", work / "rejected_rows.parquet", release=source["release"])
    release = conversion.release or source.get("last_modified") or "unreleased"
    snapshot_id = f"{_UNSAFE.sub('_', release)}-{source['sha256'][:12]}"
    prefix = clinvar_snapshot_prefix(snapshot_id)
    rejected_key = None
    if conversion.rejected_rows:
        rejected_key = f"{CLINVAR_REJECTED_PREFIX}{source['sha256']}/rejected_rows.parquet"
        store.upload(work / "rejected_rows.parquet", rejected_key)
        context.log.warning(f"{conversion.rejected_rows} malformed ClinVar rows kept aside at {store.uri(rejected_key)}")
    total = conversion.rows + conversion.rejected_rows
    if conversion.rows == 0 or conversion.rejected_rows > config.max_rejected_fraction * total:
        shutil.rmtree(work, ignore_errors=True)
        raise dg.Failure(
            description=f"{source['uri']}: {conversion.rejected_rows} of {total} rows are malformed (limit "
                        f"{config.max_rejected_fraction:.1%}); not publishing it, the served ClinVar release stays",
            metadata={"rejected_rows": conversion.rejected_rows, "rows": conversion.rows,
                      "rejection_reasons": dg.MetadataValue.json(conversion.rejection_reasons),
                      "rejected_rows_uri": store.uri(rejected_key) if rejected_key else "none"})
    for path in conversion.files:
        store.upload(path, f"{prefix}/{path.relative_to(work / 'table').as_posix()}")
    # The manifest is written last: a crash before this line leaves the served snapshot as it was.
    _write_json(store, CLINVAR_SNAPSHOT_KEY, {
        "snapshot_id": snapshot_id, "prefix": prefix, "release": release, "sha256": source["sha256"],
        "source_uri": source["uri"], "format": conversion.source_format, "rows": conversion.rows,
        "rejected_rows": conversion.rejected_rows, "rejected_key": rejected_key,
        "partitions": conversion.partitions,
    })
    shutil.rmtree(work, ignore_errors=True)
    return dg.MaterializeResult(metadata={
        "release": release, "format": conversion.source_format, "snapshot": link(store.uri(prefix)),
        URI: link(store.uri(prefix)), "source_uri": link(store.uri(source["raw_key"])),
        "source_sha256": source["sha256"],
        "rows": conversion.rows, ROW_COUNT: conversion.rows,
        "rejected_rows": conversion.rejected_rows,
        "rejection_reasons": dg.MetadataValue.json(conversion.rejection_reasons),
        "rejected_rows_uri": link(store.uri(rejected_key)) if rejected_key else "none",
        "partitions": len(conversion.partitions),
        "ignored_columns": dg.MetadataValue.json(list(conversion.ignored_columns)),
        "rows_per_partition": dg.MetadataValue.json(conversion.partitions),
        "input_bytes": conversion.input_bytes, "output_bytes": conversion.output_bytes,
        "seconds": round(time.perf_counter() - started, 2), "engine": f"pyarrow {pa.__version__}",
    })


@dg.asset(deps=[clinvar_variants], group_name="annotations", kinds={"duckdb", "glue"}, owners=_OWNERS,
          freshness_policy=CLINVAR_FRESHNESS, metadata={COLUMN_SCHEMA: _CLINVAR_SCHEMA},
          description="The `clinvar` table in the catalog, pointed at the newest complete snapshot in one step. "
                      "The previous snapshot is kept for queries still reading it; older ones are removed.")
def clinvar_table(context: dg.AssetExecutionContext, lake: LakeResource, catalog: Catalog) -> dg.MaterializeResult:
    store = lake.store()
    started = time.perf_counter()
    snapshot = _read_json(store, CLINVAR_SNAPSHOT_KEY)
    published = json.loads(store.read_bytes(CLINVAR_PUBLISHED_KEY)) if store.exists(CLINVAR_PUBLISHED_KEY) else {}
    current = snapshot["prefix"]
    previous = published.get("current")
    if previous == current:
        previous = published.get("previous")
    registration = catalog.register_snapshot("clinvar", current, CLINVAR_PARTITION_KEYS)
    _write_json(store, CLINVAR_PUBLISHED_KEY, {"current": current, "previous": previous,
                                              "release": snapshot["release"], "sha256": snapshot["sha256"]})
    removed = _prune_snapshots(store, {current, previous} - {None})
    if removed:
        context.log.info(f"removed superseded ClinVar snapshots: {removed}")
    return dg.MaterializeResult(metadata={
        "table": registration.name, TABLE_NAME: table_name(catalog, registration.name), "release": snapshot["release"],
        "location": registration.location, "source_sha256": snapshot["sha256"],
        "rows": registration.rows, ROW_COUNT: registration.rows, "partitions": registration.files,
        "rejected_rows": snapshot["rejected_rows"], "removed_snapshots": dg.MetadataValue.json(removed),
        COLUMN_SCHEMA: table_schema(registration.columns, CLINVAR_COLUMNS),
        "seconds": round(time.perf_counter() - started, 2),
    })


def _prune_snapshots(store, keep: set[str]) -> list[str]:
    snapshots = {obj.key.split("/", 2)[1] for obj in store.list_objects(CLINVAR_TABLE_PREFIX)
                 if obj.key.split("/")[1].startswith("snapshot=")}
    removed = []
    for folder in sorted(snapshots):
        prefix = f"{CLINVAR_TABLE_PREFIX}{folder}"
        if prefix not in keep:
            store.delete_prefix(prefix + "/")
            removed.append(prefix)
    return removed


refresh_clinvar = dg.define_asset_job(
    name="refresh_clinvar",
    selection=dg.AssetSelection.assets(clinvar_source, clinvar_variants, clinvar_table),
    description="Fetch a ClinVar release, convert it to a new snapshot and point the clinvar table at it.",
)


def weekly_clinvar_schedule(profile: str) -> dg.ScheduleDefinition:
    """NCBI publishes variant_summary weekly; fetch it on Monday mornings. On by default where the lake has a
    network path to NCBI (aws); a laptop turns it on in the UI when it wants it."""
    return dg.ScheduleDefinition(
        name="weekly_clinvar", job=refresh_clinvar, cron_schedule="0 6 * * 1", execution_timezone="UTC",
        run_config={"ops": {"clinvar_source": {"config": {"uri": NCBI_VARIANT_SUMMARY}}}},
        default_status=dg.DefaultScheduleStatus.RUNNING if profile == "aws" else dg.DefaultScheduleStatus.STOPPED,
    )
