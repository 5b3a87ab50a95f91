"""Automation of sequencer transfers: the schedule, the ad-hoc manifest sensor, the execution sensor.

- ``datasync_transfer_schedule`` (every 20 min): one execution whose include filters cover the last
  ``transfer_days`` days of dated run folders under each sequencer path; skipped while one is queued
  or running (DataSync would queue a second one behind it, and it would copy the same files again).
- ``adhoc_manifest_sensor``: a text file of paths dropped under ``adhoc/`` in the lake starts a custom
  execution for those folders; a bad manifest is quarantined with the reason and starts nothing.
- ``transfer_execution_sensor``: each execution's outcome (status, bytes, files, duration) becomes an
  observation of ``sequencer_runs``; one still running past the timeout is reported once as TIMED_OUT.
  Files an execution brought are registered by the landing sensors (their etag cursors make that
  exactly-once across restarts).
"""

import json
import time
from datetime import datetime, timezone

import dagster as dg

from genolake_assets.assets.ingest import sequencer_runs, start_sequencer_transfer
from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.lake.landing import LandingCursor, new_landed_files
from genolake_assets.lib.lake.quarantine import quarantine, safe_file_name
from genolake_assets.lib.transfers.rules import ManifestError, TransferConfig, dated_include_patterns, parse_manifest
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.resources.transfer.transfer import TransferExecution, TransferResource
from genolake_assets.settings import default_sensor_status

MANIFESTS_PER_TICK = 20


def _run_config(includes: list[str], reason: str, skip_if_active: bool) -> dict:
    return {"ops": {"start_transfer": {"config": {"includes": includes, "reason": reason,
                                                  "skip_if_active": skip_if_active}}}}


def _observation(execution: TransferExecution, status: str | None = None) -> dg.AssetObservation:
    return dg.AssetObservation(asset_key=sequencer_runs.key, metadata={
        "execution_id": execution.execution_id, "status": status or execution.status,
        "bytes_transferred": execution.bytes_transferred, "files_transferred": execution.files_transferred,
        "files_verified": execution.files_verified, "duration_seconds": round(execution.duration_seconds or 0.0, 1),
        "reason": execution.reason, "error": execution.error or "",
        "includes": dg.MetadataValue.json(list(execution.includes))})


def build_transfer_automation(config: TransferConfig) -> tuple[list, list]:
    """The schedule and the two sensors for ``config`` (schedules, sensors)."""
    configured = bool(config.sequencer_paths)
    running = configured and default_sensor_status() == dg.DefaultSensorStatus.RUNNING

    @dg.schedule(name="datasync_transfer_schedule", job=start_sequencer_transfer, cron_schedule="*/20 * * * *",
                 execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
                 description=f"Every 20 minutes: transfer the last {config.transfer_days} days of dated run folders "
                             "under each sequencer path, unless an execution is still queued or running.")
    def datasync_transfer_schedule(context: dg.ScheduleEvaluationContext, transfer: TransferResource):
        if not configured:
            return dg.SkipReason("no sequencer paths configured (GENOLAKE_TRANSFER_CONFIG)")
        active = transfer.active()
        if active:
            return dg.SkipReason(f"{active[0].execution_id} is still {active[0].status}: not starting another")
        day = (context.scheduled_execution_time or datetime.now(timezone.utc)).date()
        includes = dated_include_patterns(config, day)
        return dg.RunRequest(run_config=_run_config(includes, f"schedule {day.isoformat()}", True),
                             tags={"genolake/transfer": "schedule"})

    @dg.sensor(name="adhoc_manifest_sensor", job=start_sequencer_transfer, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
               description=f"A text file of run-folder paths dropped under {config.adhoc_prefix} starts a custom "
                           "transfer for them; a manifest naming paths outside the sequencer paths is quarantined.")
    def adhoc_manifest_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        store = lake.store()
        cursor = LandingCursor.parse(context.cursor)
        fresh, next_cursor = new_landed_files(store.list_objects(config.adhoc_prefix), cursor, MANIFESTS_PER_TICK,
                                              lambda key: not key.rsplit("/", 1)[-1].startswith("."))
        requests = []
        for obj in fresh:
            uri = store.uri(obj.key)
            try:
                includes = parse_manifest(store.read_bytes(obj.key).decode("utf-8", errors="strict"), config, uri)
            except (ManifestError, UnicodeDecodeError) as error:
                problem = InputProblem(file=uri, problem=getattr(error, "problem", str(error)),
                                       line=getattr(error, "line", None), code="bad_manifest")
                reason = quarantine(store, obj.key, problem, folder=f"adhoc/{safe_file_name(obj.key)}-{obj.etag[:16]}")
                context.log.error(f"manifest {uri} refused, nothing started: {error} (reason: {reason['quarantined_copy']})")
                continue
            requests.append(dg.RunRequest(run_key=f"adhoc@{obj.key}@{obj.etag}",
                                          run_config=_run_config(includes, f"manifest {uri}", False),
                                          tags={"genolake/transfer": "adhoc", "genolake/manifest": uri[:255]}))
        return dg.SensorResult(run_requests=requests, cursor=next_cursor.dump(),
                               skip_reason=None if fresh else f"no new manifests under {config.adhoc_prefix}")

    @dg.sensor(name="transfer_execution_sensor", minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
               description="Reports each transfer execution's outcome (status, bytes, files, duration) as an "
                           "observation of sequencer_runs, and an execution running past the timeout, once.")
    def transfer_execution_sensor(context: dg.SensorEvaluationContext, transfer: TransferResource) -> dg.SensorResult:
        state = json.loads(context.cursor) if context.cursor else {"reported": [], "timed_out": []}
        reported, timed_out = list(state["reported"]), list(state["timed_out"])
        events = []
        now = time.time()
        for execution in reversed(transfer.recent(50)):  # oldest first, so observations keep their order
            if execution.terminal and execution.execution_id not in reported:
                events.append(_observation(execution))
                reported.append(execution.execution_id)
                log = context.log.info if execution.status == "SUCCESS" else context.log.error
                log(f"transfer {execution.execution_id} {execution.status}: {execution.files_transferred} files, "
                    f"{execution.bytes_transferred:,} bytes" + (f"; {execution.error}" if execution.error else ""))
            elif (execution.active and execution.started_at and execution.execution_id not in timed_out
                  and now - execution.started_at > config.execution_timeout_minutes * 60):
                events.append(_observation(execution, status="TIMED_OUT"))
                timed_out.append(execution.execution_id)
                context.log.error(f"transfer {execution.execution_id} has been {execution.status} for more than "
                                  f"{config.execution_timeout_minutes} minutes")
        cursor = json.dumps({"reported": reported[-500:], "timed_out": timed_out[-500:]})
        return dg.SensorResult(asset_events=events, cursor=cursor,
                               skip_reason=None if events else "no transfer execution finished since the last tick")

    return [datasync_transfer_schedule], [adhoc_manifest_sensor, transfer_execution_sensor]
