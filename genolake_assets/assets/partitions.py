import dagster as dg

samples_partitions = dg.DynamicPartitionsDefinition(name="samples")
