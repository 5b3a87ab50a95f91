"""dead_run_sensor: runs whose process died are marked failed and their pool slots freed (run_recovery.py)."""

import dagster as dg

from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.run_recovery import fail_dead_runs, remove_dead_runs_scratch, runs_are_local_processes
from genolake_assets.settings import default_sensor_status


@dg.sensor(
    name="dead_run_sensor", minimum_interval_seconds=60, default_status=default_sensor_status(),
    description="Every minute: a run whose process was killed (SIGKILL, out of memory) is marked failed with the "
                "reason and its pool slots (genolake_conversion, cohort_writer) are freed, so the next run of "
                "those steps does not wait for ever; dead runs' scratch folders are removed. Runs that are not "
                "processes on this machine are left to Dagster's run monitoring (dagster.yaml run_monitoring).",
)
def dead_run_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SkipReason:
    if not runs_are_local_processes(context.instance):
        return dg.SkipReason("runs are not processes on this machine: Dagster's run monitoring watches them")
    dead = fail_dead_runs(context.instance)
    for run in dead:
        context.log.warning(run.describe())
    removed = remove_dead_runs_scratch(context.instance, lake.scratch)
    said = [run.describe() for run in dead] + ([f"removed {len(removed)} dead runs' scratch folder(s)"]
                                                if removed else [])
    return dg.SkipReason("; ".join(said) if said else "no dead runs")
