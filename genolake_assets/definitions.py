"""The genolake code location: every asset group's assets and jobs, the sensors and schedules, and the
deployment's resources (built from the environment, closed to run config)."""

from __future__ import annotations

import dagster as dg

from genolake_assets.assets.alignments import (
    alignment_file_catalog, compressed_bam, lake_lifecycle_policy, lifecycle_job, raw_bam, reference_genomes,
)
from genolake_assets.assets.annotations import (
    clinvar_source, clinvar_table, clinvar_variants, refresh_clinvar, weekly_clinvar_schedule,
)
from genolake_assets.assets.ingest import (
    ingest_samples, raw_vcf, samples_table, sequencer_runs, start_sequencer_transfer,
)
from genolake_assets.assets.reports import drug_response_report, report_job
from genolake_assets.assets.variants import (
    catalog_tables, cohort_job, cohort_variants, reference_blocks_table, sample_variants, variants_table,
)
from genolake_assets.lib.transfers.rules import TransferConfig
from genolake_assets.resources.profile import build_resources, deployment_resources
from genolake_assets.sensors.alignments import alignment_landing_sensor, compress_alignments, register_references
from genolake_assets.sensors.landing import landing_sensor
from genolake_assets.sensors.runs import dead_run_sensor
from genolake_assets.sensors.transfers import build_transfer_automation
from genolake_assets.settings import Settings

settings = Settings.from_env()
transfer_config = TransferConfig.from_env()
resources = build_resources(settings, transfer_config)
"""The deployment's resource objects (for code that runs the jobs in process, like the demo)."""
transfer_schedules, transfer_sensors = build_transfer_automation(transfer_config)

defs = dg.Definitions(
    assets=[raw_vcf, sample_variants, variants_table, reference_blocks_table, samples_table,
            cohort_variants, clinvar_source, clinvar_variants, clinvar_table, drug_response_report,
            reference_genomes, raw_bam, compressed_bam, alignment_file_catalog, lake_lifecycle_policy, sequencer_runs],
    jobs=[ingest_samples, catalog_tables, cohort_job, refresh_clinvar, report_job, compress_alignments,
          register_references, lifecycle_job, start_sequencer_transfer],
    schedules=[weekly_clinvar_schedule(settings.profile), *transfer_schedules],
    sensors=[landing_sensor, alignment_landing_sensor, dead_run_sensor, *transfer_sensors],
    resources=deployment_resources(resources),
)
