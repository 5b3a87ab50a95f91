"""The genolake code location."""

from __future__ import annotations

import dagster as dg

from genolake_assets.assets.alignments import alignment_file_catalog, compressed_bam, raw_bam, reference_genomes
from genolake_assets.assets.annotations import NCBI_VARIANT_SUMMARY, clinvar_source, clinvar_table, clinvar_variants
from genolake_assets.assets.cohort import cohort_variants
from genolake_assets.assets.ingest import raw_vcf
from genolake_assets.assets.lifecycle import lake_lifecycle_policy
from genolake_assets.assets.transfers import sequencer_runs, start_sequencer_transfer
from genolake_assets.lib.transfers.rules import TransferConfig
from genolake_assets.assets.partitions import samples_partitions
from genolake_assets.assets.reports import drug_response_report
from genolake_assets.assets.tables import reference_blocks_table, samples_table, variants_table
from genolake_assets.assets.variants import sample_variants
from genolake_assets.resources.profile import build_resources, deployment_resources
from genolake_assets.sensors.alignments import alignment_landing_sensor, compress_alignments, register_references
from genolake_assets.sensors.transfers import build_transfer_automation
from genolake_assets.sensors.landing import INGEST_JOB_NAME, landing_sensor
from genolake_assets.settings import Settings

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

refresh_clinvar = dg.define_asset_job(
    name="refresh_clinvar",
    selection=dg.AssetSelection.assets(clinvar_source, clinvar_variants, clinvar_table),
    description="Fetch a ClinVar release, convert it to a new snapshot and point the clinvar table at it.",
)

cohort_job = dg.define_asset_job(
    name="refresh_cohort",
    selection=dg.AssetSelection.assets(cohort_variants),
    description="Fold new or re-converted samples into the locus-ordered cohort table and compact small files.",
)

report_job = dg.define_asset_job(
    name="drug_response",
    selection=dg.AssetSelection.assets(drug_response_report),
    description="Run the cohort drug-response report (set the sample and significance patterns in the config).",
)

lifecycle_job = dg.define_asset_job(
    name="apply_lifecycle_policy", selection=dg.AssetSelection.assets(lake_lifecycle_policy),
    description="Apply the lake's S3 lifecycle rules (aws) or report what they would do (local).",
)

settings = Settings.from_env()
transfer_config = TransferConfig.from_env()
resources = build_resources(settings, transfer_config)
"""The deployment's resource objects (for code that runs the jobs in process, like the demo)."""
transfer_schedules, transfer_sensors = build_transfer_automation(transfer_config)

# NCBI publishes variant_summary weekly; fetch it on Monday mornings. On by default where the lake
# has a network path to NCBI (aws); a laptop turns it on in the UI when it wants it.
weekly_clinvar = dg.ScheduleDefinition(
    name="weekly_clinvar", job=refresh_clinvar, cron_schedule="0 6 * * 1", execution_timezone="UTC",
    run_config={"ops": {"clinvar_source": {"config": {"uri": NCBI_VARIANT_SUMMARY}}}},
    default_status=dg.DefaultScheduleStatus.RUNNING if settings.profile == "aws" else dg.DefaultScheduleStatus.STOPPED,
)

defs = dg.Definitions(
    assets=[raw_vcf, sample_variants, variants_table, reference_blocks_table, samples_table,
            cohort_variants, clinvar_source, clinvar_variants, clinvar_table, drug_response_report,
            reference_genomes, raw_bam, compressed_bam, alignment_file_catalog, lake_lifecycle_policy, sequencer_runs],
    jobs=[ingest_samples, catalog_tables, cohort_job, refresh_clinvar, report_job, compress_alignments,
          register_references, lifecycle_job, start_sequencer_transfer],
    schedules=[weekly_clinvar, *transfer_schedules],
    sensors=[landing_sensor, alignment_landing_sensor, *transfer_sensors],
    resources=deployment_resources(resources),
)
