"""Sequencer → transfer → landing → conversion → catalog, driven through Dagster's schedule and sensor
test APIs in the local profile, on real gVCFs written by the sequencer simulator."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from botocore.stub import Stubber

from genolake_assets.assets.ingest import start_sequencer_transfer
from genolake_assets.lib.transfers.simulator import simulate_runs
from genolake_assets.lib.transfers.rules import SequencerPath, TransferConfig
from genolake_assets.resources.transfer import datasync as transfer_module
from genolake_assets.resources.profile import build_resources
from genolake_assets.resources.lake.s3_store import aws_client
from genolake_assets.resources.transfer.datasync import DataSyncTransfer
from genolake_assets.sensors.transfers import build_transfer_automation
from genolake_assets.settings import Settings
from tests.pipeline.helpers import ingest, refresh_tables, tick

DATA_VCF = Path(__file__).resolve().parents[1] / "data" / "vcf"
GVCFS = sorted(DATA_VCF.glob("*.g.vcf.gz"))
NOW = datetime.now(timezone.utc)


@pytest.fixture
def share(tmp_path) -> Path:
    return tmp_path / "share"


@pytest.fixture
def config(share) -> TransferConfig:
    return TransferConfig(sequencer_paths=(SequencerPath("miseq", "/MiSeq/Output", instrument="MiSeq"),),
                          source_root=str(share), quiet_seconds=0)


@pytest.fixture
def automation(config, lake_home):
    (schedule,), (adhoc_sensor, execution_sensor) = build_transfer_automation(config)
    return {"schedule": schedule, "adhoc": adhoc_sensor, "executions": execution_sensor,
            "resources": build_resources(Settings.from_env(), config)}


def _scheduled_transfer(automation, instance) -> dg.ExecuteInProcessResult | dg.SkipReason:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=NOW,
                                        resources={"transfer": automation["resources"]["transfer"]})
    request = automation["schedule"](context)
    if isinstance(request, dg.SkipReason):
        return request
    return start_sequencer_transfer.execute_in_process(run_config=request.run_config, instance=instance,
                                                       resources={"transfer": automation["resources"]["transfer"]})


def _executions_tick(automation, instance, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"transfer": automation["resources"]["transfer"]})
    return automation["executions"](context)


def _observed(result: dg.SensorResult) -> list[dict]:
    return [{k: v.value for k, v in event.metadata.items()} for event in result.asset_events]


def test_two_runs_flow_from_the_sequencer_into_the_catalog_exactly_once(automation, instance, share):
    runs = list(simulate_runs(share, "/MiSeq/Output", GVCFS[:4], runs=2, per_run=2, day=NOW.date(), echo=lambda _: None))
    resources = automation["resources"]

    transfer_run = _scheduled_transfer(automation, instance)
    assert transfer_run.success
    reported = _executions_tick(automation, instance)
    (outcome,) = _observed(reported)
    assert outcome["status"] == "SUCCESS"
    sent = [p for run in runs for p in run.folder.rglob("*") if p.is_file()]
    assert outcome["files_transferred"] == outcome["files_verified"] == len(sent)
    assert outcome["bytes_transferred"] == sum(p.stat().st_size for p in sent)

    landed = tick(instance, resources)
    samples = sorted(r.partition_key for r in landed.run_requests)
    assert samples == sorted(p.name.split(".")[0] for p in GVCFS[:4])
    for sample in samples:
        assert ingest(instance, resources, sample).success
    refresh_tables(instance, resources)
    count = resources["catalog"].query("SELECT count(DISTINCT sample_id) AS n FROM variants").to_pylist()[0]["n"]
    assert count == 4

    # The next tick finds nothing changed: nothing copied, nothing landed twice, nothing reported twice.
    assert _scheduled_transfer(automation, instance).success
    second = _executions_tick(automation, instance, cursor=reported.cursor)
    assert [o["files_transferred"] for o in _observed(second)] == [0]
    assert not tick(instance, resources, cursor=landed.cursor).run_requests
    assert not _observed(_executions_tick(automation, instance, cursor=second.cursor))


def test_the_schedule_window_leaves_old_runs_to_an_adhoc_manifest(automation, instance, share, store):
    old_day = NOW.date() - timedelta(days=10)
    (old_run,) = simulate_runs(share, "/MiSeq/Output", GVCFS[:1], runs=1, per_run=1, day=old_day, echo=lambda _: None)

    assert _scheduled_transfer(automation, instance).success
    assert not list(store.list_objects("landing/sequencers"))

    store.write_bytes("adhoc/rerun-old.txt", f"# a run outside the 3-day window\n/MiSeq/Output/{old_run.folder.name}\n".encode())
    store.write_bytes("adhoc/bad.txt", b"/MiSeq/Output/" + old_run.folder.name.encode() + b"\n/etc/passwd\n")
    context = dg.build_sensor_context(instance=instance, resources={"lake": automation["resources"]["lake"]})
    result = automation["adhoc"](context)

    (request,) = result.run_requests
    assert request.run_config["ops"]["start_transfer"]["config"]["includes"] == [f"/MiSeq/Output/{old_run.folder.name}"]
    reason = json.loads(store.read_bytes(next(o.key for o in store.list_objects("quarantine/adhoc") if o.key.endswith("reason.json"))))
    assert reason["line"] == 2 and reason["code"] == "bad_manifest" and "bad.txt" in reason["file"]
    run = start_sequencer_transfer.execute_in_process(run_config=request.run_config, instance=instance,
                                                      resources={"transfer": automation["resources"]["transfer"]})
    assert run.success
    landed = [o.key for o in store.list_objects("landing/sequencers") if o.key.endswith(".g.vcf.gz")]
    assert landed == [f"landing/sequencers/MiSeq/Output/{old_run.folder.name}/Analysis/{GVCFS[0].name}"]
    # A restarted sensor with its cursor does not start the manifest again.
    again = automation["adhoc"](dg.build_sensor_context(instance=instance, cursor=result.cursor,
                                                        resources={"lake": automation["resources"]["lake"]}))
    assert not again.run_requests


# -- DataSync (aws): the states moto cannot produce, through a botocore Stubber ---------------------------

TASK = "arn:aws:datasync:us-east-1:123456789012:task/task-0123456789abcdef0"


def _execution(n: int) -> str:
    return f"{TASK}/execution/exec-0123456789abcde{n:02d}"


@pytest.fixture
def datasync(monkeypatch):
    """A DataSync client whose responses the test scripts; the resources build it through their factory."""
    client = aws_client("datasync", region_name="us-east-1")
    stubber = Stubber(client)
    monkeypatch.setattr(transfer_module, "aws_client", lambda *args, **kwargs: client)
    with stubber:
        yield stubber


def _aws_automation(config: TransferConfig) -> dict:
    config = TransferConfig(sequencer_paths=config.sequencer_paths, task_arn=TASK, execution_timeout_minutes=60)
    (schedule,), (_, execution_sensor) = build_transfer_automation(config)
    return {"schedule": schedule, "executions": execution_sensor,
            "resources": {"transfer": DataSyncTransfer(task_arn=TASK, region="us-east-1")}}


def _described(n: int, status: str, started: datetime, **extra) -> dict:
    return {"TaskExecutionArn": _execution(n), "Status": status, "StartTime": started, "BytesTransferred": 0,
            "FilesTransferred": 0, "Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": "/MiSeq/Output/x_*"}], **extra}


def test_overlapping_schedule_ticks_never_start_a_second_execution(datasync, config, instance):
    automation = _aws_automation(config)
    datasync.add_response("list_task_executions", {"TaskExecutions": [
        {"TaskExecutionArn": _execution(1), "Status": "TRANSFERRING"}]}, {"TaskArn": TASK})
    datasync.add_response("describe_task_execution", _described(1, "TRANSFERRING", NOW - timedelta(minutes=25)),
                          {"TaskExecutionArn": _execution(1)})

    outcome = _scheduled_transfer(automation, instance)

    assert isinstance(outcome, dg.SkipReason) and "TRANSFERRING" in outcome.skip_message
    datasync.assert_no_pending_responses()  # and no StartTaskExecution was sent


def test_a_failed_and_a_never_ending_execution_are_reported_once(datasync, config, instance):
    automation = _aws_automation(config)
    listing = {"TaskExecutions": [{"TaskExecutionArn": _execution(1), "Status": "ERROR"},
                                  {"TaskExecutionArn": _execution(2), "Status": "TRANSFERRING"}]}
    failed = _described(1, "ERROR", NOW - timedelta(hours=3), EndTime=NOW - timedelta(hours=2),
                        Result={"ErrorCode": "PermissionDenied", "ErrorDetail": "cannot read /MiSeq/Output"})
    stuck = _described(2, "TRANSFERRING", NOW - timedelta(hours=2))
    for _ in range(2):  # two ticks
        datasync.add_response("list_task_executions", listing, {"TaskArn": TASK})
        datasync.add_response("describe_task_execution", failed, {"TaskExecutionArn": _execution(1)})
        datasync.add_response("describe_task_execution", stuck, {"TaskExecutionArn": _execution(2)})

    first = _executions_tick(automation, instance)
    second = _executions_tick(automation, instance, cursor=first.cursor)

    statuses = {o["execution_id"]: (o["status"], o["error"]) for o in _observed(first)}
    assert statuses == {_execution(1): ("ERROR", "PermissionDenied: cannot read /MiSeq/Output"),
                        _execution(2): ("TIMED_OUT", "")}
    assert _observed(second) == []
