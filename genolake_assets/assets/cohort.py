"""cohort_variants: the locus-ordered copy of the variant tables, for "every sample at this marker".

New samples are appended as one delta file per touched partition; partitions with too many files, or
holding a re-converted sample, are compacted into a new generation folder. Everything becomes
visible at once when the manifest (``registry/cohort/state.json``) is replaced. See docs/cohort-layout.md.
"""

import shutil
import time

import dagster as dg
import pyarrow.parquet as pq
from pydantic import Field

from genolake_assets.assets.schemas import (
    COHORT_COLUMNS, COLUMN_SCHEMA, ROW_COUNT, TABLE_NAME, URI, arrow_columns, link, table_name, table_schema,
)
from genolake_assets.lib.cohort.layout import (
    COHORT_PREFIX, COHORT_SCHEMA, STATE_KEY, CohortState, SampleInput, update_cohort,
)
from genolake_assets.lib.lake.layout import SAMPLES_TABLE_KEY, partition_key
from genolake_assets.lib.vcf.schema import REFERENCE_BLOCKS, VARIANTS
from genolake_assets.resources.catalog.catalog import Catalog
from genolake_assets.resources.lake.lake import LakeResource

COHORT_TABLE = "cohort_variants"
PARTITION_KEYS = ["contig", "bin"]


class CohortConfig(dg.Config):
    max_files_per_partition: int = Field(default=8, description="Compact a partition once it has more files")
    max_samples_per_run: int = Field(default=500, description="New samples folded in per run (bounds memory); "
                                                              "the rest follow in the next run")


def _sample_tokens(lake: LakeResource) -> dict[str, str]:
    """sample_id → version token of every sample whose tables are in the lake, from the samples table."""
    store = lake.store()
    if not store.exists(SAMPLES_TABLE_KEY):
        return {}
    rows = pq.read_table(lake.local_copy(SAMPLES_TABLE_KEY),
                         columns=["sample_id", "converted_at", "sha256", "engine_version"]).to_pylist()
    # A quarantined re-upload keeps describing the version still served, so its token does not move.
    # converted_at has one-second resolution: a re-conversion of the same file by the same engine in
    # the same second produced the same rows, so missing it changes nothing.
    return {r["sample_id"]: f"{r['converted_at']}|{r['sha256']}|{r['engine_version']}"
            for r in rows if r["converted_at"]}


def _load_state(store) -> CohortState:
    return CohortState.from_json(store.read_bytes(STATE_KEY)) if store.exists(STATE_KEY) else CohortState.empty()


def _sample_input(lake: LakeResource, sample_id: str, token: str) -> SampleInput:
    paths = {}
    for table in (VARIANTS, REFERENCE_BLOCKS):
        key = partition_key(table, sample_id)
        paths[table] = lake.local_copy(key) if lake.store().exists(key) else None
    return SampleInput(sample_id, token, paths[VARIANTS], paths[REFERENCE_BLOCKS])


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
                    catalog: Catalog) -> dg.MaterializeResult:
    started = time.perf_counter()
    store = lake.store()
    state = _load_state(store)
    tokens = _sample_tokens(lake)
    changed = sorted(s for s, t in tokens.items() if state.samples.get(s) != t)
    batch = changed[:config.max_samples_per_run]
    drop = {s for s in batch if s in state.samples}
    work = lake.scratch / "cohort" / context.run_id
    try:
        update = update_cohort(state, [_sample_input(lake, s, tokens[s]) for s in batch], drop,
                               fetch=lake.local_copy, out_dir=work, max_files=config.max_files_per_partition)
        for key, path in update.uploads.items():
            store.upload(path, key)
        if _load_state(store).version != state.version:
            raise dg.Failure(f"{STATE_KEY} changed while this run worked (another writer); nothing was published, "
                             "re-run to fold the samples in")
        # The manifest is the switch: written last, in one replace.
        store.write_bytes(STATE_KEY, update.state.to_json())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for folder in state.retired:  # unused since the previous version: no reader can still hold them
        store.delete_prefix(folder)
    new_state = update.state
    registration = catalog.register_file_set(
        COHORT_TABLE, COHORT_SCHEMA, PARTITION_KEYS,
        {(p.contig, str(p.bin)): new_state.live_keys(p) for p in new_state.partitions.values()})
    rows = sum(p.rows for p in new_state.partitions.values())
    return dg.MaterializeResult(metadata={
        "table": COHORT_TABLE, TABLE_NAME: table_name(catalog, COHORT_TABLE),
        "version": new_state.version, "samples": len(new_state.samples),
        "samples_added": len(batch) - len(drop), "samples_reconverted": len(drop),
        "samples_pending": len(changed) - len(batch),
        "rows": rows, ROW_COUNT: rows, "rows_added": update.rows_added, "rows_removed": update.rows_removed,
        "partitions": len(new_state.partitions), "files": registration.files,
        "appended_partitions": len(update.appended_partitions), "compacted_partitions": len(update.compacted_partitions),
        "bytes_written": update.bytes_written, "retired_folders_deleted": len(state.retired),
        "manifest": link(store.uri(STATE_KEY)), URI: link(store.uri(COHORT_PREFIX.rstrip("/"))),
        "seconds": round(time.perf_counter() - started, 2),
        COLUMN_SCHEMA: table_schema(registration.columns, COHORT_COLUMNS),
    })
