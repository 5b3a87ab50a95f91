"""The genolake code location."""

from __future__ import annotations

import dagster as dg

from genolake_assets.assets.ingest import raw_vcf
from genolake_assets.assets.partitions import samples_partitions
from genolake_assets.assets.tables import reference_blocks_table, samples_table, variants_table
from genolake_assets.assets.variants import sample_variants
from genolake_assets.resources.profile import build_resources
from genolake_assets.sensors.landing import INGEST_JOB_NAME, landing_sensor

ingest_samples = dg.define_asset_job(
    name=INGEST_JOB_NAME,
    selection=dg.AssetSelection.assets(raw_vcf, sample_variants),
    partitions_def=samples_partitions,
    description="Register and convert landed samples (one run per sample from the landing sensor, or a backfill).",
)

catalog_tables = dg.define_asset_job(
    name="refresh_catalog",
    selection=dg.AssetSelection.assets(variants_table, reference_blocks_table, samples_table),
    description="Refresh the catalog views and the samples table.",
)

defs = dg.Definitions(
    assets=[raw_vcf, sample_variants, variants_table, reference_blocks_table, samples_table],
    jobs=[ingest_samples, catalog_tables],
    sensors=[landing_sensor],
    resources=build_resources(),
)
