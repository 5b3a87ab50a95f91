import dagster as dg

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
