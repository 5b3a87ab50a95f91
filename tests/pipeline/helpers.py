"""Driving the real Dagster definitions in tests: sensor ticks and partition runs."""

from __future__ import annotations

import dagster as dg

from genolake_assets.assets.ingest import raw_vcf
from genolake_assets.assets.ingest import samples_table
from genolake_assets.assets.variants import reference_blocks_table, variants_table
from genolake_assets.assets.variants import sample_variants
from genolake_assets.sensors.alignments import alignment_landing_sensor
from genolake_assets.sensors.landing import landing_sensor

INGEST_ASSETS = [raw_vcf, sample_variants]
TABLE_ASSETS = [variants_table, reference_blocks_table, samples_table]


def tick(instance, resources, cursor: str | None = None) -> dg.SensorResult:
    """One landing-sensor evaluation; applies its partition requests like the daemon does."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": resources["lake"]})
    result = landing_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def alignment_tick(instance, resources, cursor: str | None = None) -> dg.SensorResult:
    """One alignment-landing-sensor evaluation; applies its partition requests like the daemon does."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": resources["lake"]})
    result = alignment_landing_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def ingest(instance, resources, partition_key: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(INGEST_ASSETS, partition_key=partition_key, instance=instance, resources=resources,
                          raise_on_error=False)


def refresh_tables(instance, resources) -> dg.ExecuteInProcessResult:
    return dg.materialize(TABLE_ASSETS, instance=instance, resources=resources)
