import dagster as dg

samples_partitions = dg.DynamicPartitionsDefinition(name="samples")

alignments_partitions = dg.DynamicPartitionsDefinition(name="alignments")
"""One partition per landed alignment file (BAM)."""
