"""dead_run_sensor: runs whose process died are marked failed, their pool slots freed and their work finished.

See run_recovery.py for how a dead run is told from a live one. A killed run of one partition (ingest, BAM
compression) or of the cohort update is requested again once, tagged with the run it recovers: the re-run
removes what the killed one left and completes its work (a verified CRAM catalogued, the cohort's folders
and catalog back in step with its manifest). A recovery run that dies too is not requested again (an
out-of-memory kill would only repeat): the failure in the UI says why, and the runbook says what to do.
"""

import dagster as dg

from genolake_assets.assets.ingest import ingest_samples
from genolake_assets.assets.variants import cohort_job
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.run_recovery import DeadRun, fail_dead_runs, remove_dead_runs_scratch, runs_are_local_processes
from genolake_assets.sensors.alignments import compress_alignments
from genolake_assets.settings import default_sensor_status

COHORT_POOL = "cohort_writer"
RECOVERS_RUN_TAG = "genolake/recovers_run"
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
RETRIED_JOBS = {job.name for job in (ingest_samples, compress_alignments, cohort_job)}


def _recovery_request(instance: dg.DagsterInstance, dead: DeadRun) -> tuple[dg.RunRequest | None, str]:
    """The run that finishes what ``dead`` left, or None, and what was decided (for the log)."""
    run = instance.get_run_by_id(dead.run_id)
    tags = run.tags if run is not None else {}
    name = f"run {dead.run_id[:8]} of {dead.job_name}"
    if RECOVERS_RUN_TAG in tags:
        return None, f"{name} was itself a recovery run: not requested again (docs/ui-and-runbook.md)"
    recovery_tags = {RECOVERS_RUN_TAG: dead.run_id}
    if dead.job_name in RETRIED_JOBS and not any(tag in tags for tag in RANGE_TAGS):
        return dg.RunRequest(job_name=dead.job_name, partition_key=tags.get(PARTITION_TAG),
                             run_key=f"recovers-{dead.run_id}", tags=recovery_tags), f"{name}: requested again"
    if COHORT_POOL in dead.pools:  # the cohort update ran inside another job (an asset job from the UI)
        return dg.RunRequest(job_name=cohort_job.name, run_key=f"recovers-{dead.run_id}", tags=recovery_tags), \
            f"{name}: requested {cohort_job.name} to finish its cohort update"
    return None, f"{name}: re-execute it from the UI (a backfill's run: re-execute the backfill from failure)"


@dg.sensor(
    name="dead_run_sensor", minimum_interval_seconds=60, default_status=default_sensor_status(),
    jobs=[ingest_samples, compress_alignments, cohort_job],
    description="Every minute: a run whose process was killed (SIGKILL, out of memory) is marked failed with the "
                "reason and its pool slots (genolake_conversion, cohort_writer) are freed, so the next run of "
                "those steps does not wait for ever; dead runs' scratch and temporary files are removed; a killed "
                "ingest, compression or cohort run is requested again once, to finish its work. Runs that are not "
                "processes on this machine are left to Dagster's run monitoring (dagster.yaml run_monitoring).",
)
def dead_run_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    if not runs_are_local_processes(context.instance):
        return dg.SkipReason("runs are not processes on this machine: Dagster's run monitoring watches them")
    dead = fail_dead_runs(context.instance)
    said = []
    requests = []
    for run in dead:
        request, decision = _recovery_request(context.instance, run)
        context.log.warning(f"{run.describe()}; {decision}")
        said.append(f"{run.describe()}; {decision}")
        requests += [request] if request else []
    # The lake is walked for temporary files only after a death: a minute's tick must stay cheap.
    removed = remove_dead_runs_scratch(context.instance, lake.scratch, lake.local_root if dead else None)
    if removed:
        said.append(f"removed {len(removed)} scratch and temporary file(s) that killed runs left")
        context.log.info(said[-1])
    if requests:
        return dg.SensorResult(run_requests=requests)
    return dg.SkipReason("; ".join(said) if said else "no dead runs")
