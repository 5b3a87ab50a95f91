"""The transfer resources: the local copier on real files, and DataSync on moto (Stubber for the rest).

moto's DataSync keeps tasks and executions but ignores StartTaskExecution's Includes and Tags, reports
only TaskExecutionArn and Status (INITIALIZING, PREPARING, TRANSFERRING, VERIFYING, SUCCESS: one step per
DescribeTaskExecution call) and lacks ListTaskExecutions; the rest (the listing, an ERROR with its
detail, timestamps and counters) comes from a botocore Stubber on an injected client.
"""

import json
import os
import shutil
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pytest
from botocore.stub import Stubber

from genolake_assets.lib.transfers.rules import SequencerPath, TransferConfig, dated_include_patterns
from genolake_assets.resources.transfer import local as local_transfer
from genolake_assets.resources.lake.s3_store import aws_client
from genolake_assets.resources.transfer.datasync import DataSyncTransfer
from genolake_assets.resources.transfer.local import LocalTransfer
from genolake_assets.resources.transfer.transfer import TransferExecution, TransferResource

DATA = Path(__file__).resolve().parents[2] / "data"
MISEQ_RUN = "/MiSeq/Output/231014_M00123_0001_000000000-ABCDE"
MISEQ_OLD_RUN = "/MiSeq/Output/231001_M00123_0000_000000000-AAAAA"
NEXTSEQ_RUN = "/NextSeq2000/Output/20231013_VH00123_12_AAAAAAAM5"
SHARE_FILES = {  # share-relative path -> real data file
    f"{MISEQ_RUN}/Alignment_1/20231015_101010/HG00187.hg38.g.vcf.gz": DATA / "vcf/HG00187.hg38.g.vcf.gz",
    f"{MISEQ_RUN}/Alignment_1/20231015_101010/ce1000.bam": DATA / "bam/ce1000.bam",
    f"{MISEQ_RUN}/RunInfo.xml": None,
    f"{MISEQ_OLD_RUN}/Alignment_1/20231002_090000/HG00190.hg38.g.vcf.gz": DATA / "vcf/HG00190.hg38.g.vcf.gz",
    f"{NEXTSEQ_RUN}/Analysis/1/Data/NA12249.hg38.g.vcf.gz": DATA / "vcf/NA12249.hg38.g.vcf.gz",
}
IN_WINDOW = [p for p in SHARE_FILES if not p.startswith(MISEQ_OLD_RUN)]
CONFIG = TransferConfig(sequencer_paths=(SequencerPath("miseq", "/MiSeq/Output"),
                                         SequencerPath("nextseq2000", "/NextSeq2000/Output", "%Y%m%d")))
TODAY = date(2023, 10, 15)  # window: 2023-10-13 .. 2023-10-15


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


@pytest.fixture
def share(tmp_path) -> Path:
    """A fake sequencer share written an hour ago: two MiSeq runs (one outside the window) and a NextSeq 2000 run."""
    root = tmp_path / "share"
    for relative, data in SHARE_FILES.items():
        target = root / relative.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            target.write_text('<?xml version="1.0"?>\n<RunInfo Version="2"/>\n')
        else:
            shutil.copyfile(data, target)
        _age(target, 3600)
    return root


@pytest.fixture
def make_local(share, tmp_path):
    def make(**options) -> LocalTransfer:
        return LocalTransfer(source_root=str(share), lake_root=str(tmp_path / "lake"),
                             state_dir=str(tmp_path / "state"), **options)

    return make


def _landed(transfer_: LocalTransfer, relative: str) -> Path:
    return Path(transfer_.lake_root) / "landing/sequencers" / relative.lstrip("/")


def _lake_files(transfer_: LocalTransfer) -> list[str]:
    root = Path(transfer_.lake_root) / "landing/sequencers"
    return sorted("/" + p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- LocalTransfer ---------------------------------------------------------------------------------------


def test_local_copies_the_dated_run_folders_and_verifies_them(make_local, share):
    local = make_local()
    includes = dated_include_patterns(CONFIG, TODAY)
    before = time.time()
    execution = local.start(includes, reason="schedule tick 2023-10-15T12:00")

    assert execution.status == "SUCCESS" and execution.terminal and not execution.active
    assert execution.error is None and execution.reason == "schedule tick 2023-10-15T12:00"
    assert execution.includes == includes
    assert sorted(execution.files) == sorted(IN_WINDOW) == _lake_files(local)  # not the 231001 run
    sizes = sum((share / p.lstrip("/")).stat().st_size for p in IN_WINDOW)
    assert (execution.bytes_transferred, execution.files_transferred, execution.files_verified) == (sizes, 4, 4)
    assert before <= execution.started_at <= execution.finished_at <= time.time()
    assert execution.duration_seconds == execution.finished_at - execution.started_at
    for relative in IN_WINDOW:
        source, copy = share / relative.lstrip("/"), _landed(local, relative)
        assert copy.read_bytes() == source.read_bytes()
        assert copy.stat().st_mtime_ns == source.stat().st_mtime_ns  # like DataSync's Mtime=PRESERVE
    assert not [p for p in Path(local.lake_root).rglob(".*")]  # no temp files left behind
    assert execution.execution_id.startswith("exec-local-")
    assert local.describe(execution.execution_id) == execution
    assert local.active() == []  # start() returns only once its copy has ended
    recorded = json.loads((Path(local.state_dir) / "copied.json").read_text())
    assert sorted(recorded) == sorted(IN_WINDOW)


def test_local_manifest_folder_include_takes_everything_under_it(make_local):
    local = make_local()
    execution = local.start([MISEQ_OLD_RUN], reason="manifest adhoc/rerun.txt")
    assert execution.status == "SUCCESS"
    assert _lake_files(local) == [p for p in SHARE_FILES if p.startswith(MISEQ_OLD_RUN)]


def test_local_second_start_copies_only_changed_files(make_local, share):
    local = make_local()
    includes = [f"{MISEQ_RUN}*"]
    first = local.start(includes, reason="first")
    assert first.files_transferred == 3

    again = local.start(includes, reason="nothing changed")
    assert again.status == "SUCCESS"
    assert (again.files_transferred, again.bytes_transferred, again.files) == (0, 0, [])

    # The sequencer rewrites one file; another copy is deleted from the lake: both move again, nothing else.
    bam = f"{MISEQ_RUN}/Alignment_1/20231015_101010/ce1000.bam"
    vcf = f"{MISEQ_RUN}/Alignment_1/20231015_101010/HG00187.hg38.g.vcf.gz"
    shutil.copyfile(DATA / "bam/NA12878.chr22.tiny.bam", share / bam.lstrip("/"))
    _age(share / bam.lstrip("/"), 1800)
    _landed(local, vcf).unlink()
    third = local.start(includes, reason="one changed, one lost")
    assert sorted(third.files) == sorted([bam, vcf])
    assert _landed(local, bam).read_bytes() == (DATA / "bam/NA12878.chr22.tiny.bam").read_bytes()
    assert third.bytes_transferred == sum((share / p.lstrip("/")).stat().st_size for p in (bam, vcf))

    # A same-size file with a new mtime counts as changed (DataSync compares metadata too).
    _age(share / vcf.lstrip("/"), 900)
    assert local.start(includes, reason="touched").files == [vcf]


def test_local_quiet_period_leaves_files_still_being_written(make_local, share):
    local = make_local(quiet_seconds=60)
    growing = share / MISEQ_RUN.lstrip("/") / "Alignment_1/20231015_101010/HG01377.hg38.g.vcf.gz"
    data = (DATA / "vcf/HG01377.hg38.g.vcf.gz").read_bytes()
    growing.write_bytes(data[: len(data) // 2])  # written just now
    relative = "/" + growing.relative_to(share).as_posix()

    first = local.start([MISEQ_RUN], reason="while writing")
    assert first.status == "SUCCESS" and relative not in first.files and first.files_transferred == 3
    assert not _landed(local, relative).exists()

    growing.write_bytes(data)  # the sequencer finishes the file; a minute later it is quiet
    _age(growing, 61)
    second = local.start([MISEQ_RUN], reason="after writing")
    assert second.files == [relative]
    assert _landed(local, relative).read_bytes() == data

    assert make_local(quiet_seconds=0).start([MISEQ_RUN], reason="no change").files_transferred == 0


def test_local_verification_failure_fails_the_execution_and_removes_the_copy(make_local, share, monkeypatch):
    local = make_local()
    bad = f"{MISEQ_RUN}/Alignment_1/20231015_101010/ce1000.bam"
    real_copy = local_transfer._copy_file

    def corrupting_copy(source: Path, target: Path) -> str:
        digest = real_copy(source, target)
        if source.name == "ce1000.bam":  # flip one byte of this copy, as a faulty disk or network would
            with open(target, "r+b") as handle:
                handle.seek(1000)
                byte = handle.read(1)
                handle.seek(1000)
                handle.write(bytes([byte[0] ^ 0xFF]))
        return digest

    monkeypatch.setattr(local_transfer, "_copy_file", corrupting_copy)
    execution = local.start([MISEQ_RUN], reason="bad disk")
    assert execution.status == "ERROR" and execution.terminal
    assert bad in execution.error and "sha256" in execution.error
    assert not _landed(local, bad).exists()  # the bad copy is gone, never published
    assert not [p for p in Path(local.lake_root).rglob(".*")]
    assert bad not in execution.files and execution.files_verified == execution.files_transferred == 2
    assert local.describe(execution.execution_id).status == "ERROR"

    monkeypatch.setattr(local_transfer, "_copy_file", real_copy)
    retry = local.start([MISEQ_RUN], reason="retry")
    assert retry.status == "SUCCESS" and retry.files == [bad]
    assert _landed(local, bad).read_bytes() == (DATA / "bam/ce1000.bam").read_bytes()


def test_local_state_survives_a_restart(make_local, share):
    first = make_local().start([MISEQ_RUN], reason="before restart")
    time.sleep(0.01)
    second = make_local().start([NEXTSEQ_RUN], reason="before restart too")

    restarted = make_local()  # a new process: only the state directory carries over
    assert [e.execution_id for e in restarted.recent()] == [second.execution_id, first.execution_id]
    assert restarted.recent(limit=1) == [second]
    assert restarted.describe(first.execution_id) == first
    assert restarted.start([MISEQ_RUN, NEXTSEQ_RUN], reason="after restart").files_transferred == 0
    assert len(restarted.recent()) == 3


def test_local_refuses_bad_requests(make_local, tmp_path):
    local = make_local()
    with pytest.raises(ValueError, match="no include patterns"):
        local.start([], reason="would copy the whole share")
    with pytest.raises(LookupError):
        local.describe("exec-local-20231015T120000000000Z-1")
    with pytest.raises(LookupError):
        local.describe("../copied")
    assert local.recent() == []

    missing = LocalTransfer(source_root=str(tmp_path / "nowhere"), lake_root=str(tmp_path / "lake"),
                            state_dir=str(tmp_path / "state"))
    execution = missing.start([MISEQ_RUN], reason="share not mounted")
    assert execution.status == "ERROR" and "nowhere" in execution.error


# -- DataSyncTransfer on moto ------------------------------------------------------------------------------


@pytest.fixture
def datasync_task(moto_endpoint, bucket) -> str:
    """A DataSync task on moto. moto has no NFS locations, so an S3 location plays the share."""
    client = aws_client("datasync", endpoint_url=moto_endpoint, region_name="us-east-1")
    role = "arn:aws:iam::123456789012:role/genolake-datasync"
    source = client.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", Subdirectory="/share",
                                       S3Config={"BucketAccessRoleArn": role})["LocationArn"]
    destination = client.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", Subdirectory="/landing/sequencers",
                                            S3Config={"BucketAccessRoleArn": role})["LocationArn"]
    return client.create_task(SourceLocationArn=source, DestinationLocationArn=destination,
                              Name=f"genolake-{uuid.uuid4().hex[:8]}")["TaskArn"]


def test_datasync_start_sends_the_include_filter_and_steps_to_success(moto_endpoint, datasync_task):
    resource = DataSyncTransfer(task_arn=datasync_task, region="us-east-1", endpoint_url=moto_endpoint)
    sent: list[dict] = []
    resource._datasync().meta.events.register(
        "before-send.datasync.StartTaskExecution", lambda request, **_: sent.append(json.loads(request.body)))
    includes = dated_include_patterns(CONFIG, TODAY)

    started = resource.start(includes, reason="schedule tick 2023-10-15T12:00:00+00:00 (20 min)")
    assert started.execution_id.startswith(f"{datasync_task}/execution/exec-")
    assert started.status == "QUEUED" and started.active and started.includes == includes
    [body] = sent  # what went over the wire (moto accepts the filter and tags, then ignores them)
    assert body["TaskArn"] == datasync_task
    assert body["Includes"] == [{"FilterType": "SIMPLE_PATTERN", "Value": "|".join(includes)}]
    assert body["Includes"][0]["Value"].split("|") == [
        "/MiSeq/Output/231015_*", "/MiSeq/Output/231014_*", "/MiSeq/Output/231013_*",
        "/NextSeq2000/Output/20231015_*", "/NextSeq2000/Output/20231014_*", "/NextSeq2000/Output/20231013_*"]
    # DataSync's tag-value alphabet has no parentheses.
    assert body["Tags"] == [{"Key": "genolake:reason", "Value": "schedule tick 2023-10-15T12:00:00+00:00 _20 min_"}]

    statuses = []
    while not (execution := resource.describe(started.execution_id)).terminal:
        assert execution.active and execution.error is None
        statuses.append(execution.status)
        assert len(statuses) < 10
    assert statuses == ["INITIALIZING", "PREPARING", "TRANSFERRING", "VERIFYING"]  # moto's sequence
    assert execution.status == "SUCCESS" and execution.error is None
    assert execution.reason == started.reason  # known to the resource that started it


def test_datasync_refuses_an_empty_filter_or_a_missing_task_before_calling_aws(moto_endpoint, datasync_task):
    resource = DataSyncTransfer(task_arn=datasync_task, endpoint_url=moto_endpoint, region="us-east-1")
    with pytest.raises(ValueError, match="no include patterns"):
        resource.start([], reason="whole share")
    unconfigured = DataSyncTransfer(task_arn="", endpoint_url=moto_endpoint, region="us-east-1")
    for call in (lambda: unconfigured.start([MISEQ_RUN], reason="r"), unconfigured.active, unconfigured.recent):
        with pytest.raises(ValueError, match="task_arn"):
            call()


# -- DataSync calls moto lacks (botocore Stubber) ---------------------------------------------------------

TASK = "arn:aws:datasync:us-east-1:123456789012:task/task-0123456789abcdef0"


def _arn(n: int) -> str:
    return f"{TASK}/execution/exec-{n:017x}"


def _at(minute: int) -> datetime:
    return datetime(2023, 10, 15, 12, tzinfo=UTC) + timedelta(minutes=minute)


@pytest.fixture
def stubbed():
    client = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                   region_name="us-east-1").client("datasync")
    with Stubber(client) as stub:
        yield DataSyncTransfer(task_arn=TASK).with_client(client), stub
        stub.assert_no_pending_responses()


def _expect_list(stub: Stubber, entries: list[tuple[int, str]], token_in: str | None, token_out: str | None):
    response = {"TaskExecutions": [{"TaskExecutionArn": _arn(n), "Status": s} for n, s in entries]}
    if token_out:
        response["NextToken"] = token_out
    stub.add_response("list_task_executions", response,
                      {"TaskArn": TASK, **({"NextToken": token_in} if token_in else {})})


def _expect_describe(stub: Stubber, n: int, status: str, minute: int | None, **extra):
    response = {"TaskExecutionArn": _arn(n), "Status": status, **extra}
    if minute is not None:
        response["StartTime"] = _at(minute)
    stub.add_response("describe_task_execution", response, {"TaskExecutionArn": _arn(n)})


def test_active_pages_through_the_listing_and_describes_only_unfinished_ones(stubbed):
    resource, stub = stubbed
    _expect_list(stub, [(1, "SUCCESS"), (2, "TRANSFERRING")], None, "page-2")
    _expect_list(stub, [(3, "ERROR"), (4, "QUEUED")], "page-2", None)
    _expect_describe(stub, 2, "TRANSFERRING", 20, BytesTransferred=1024, FilesTransferred=3)
    _expect_describe(stub, 4, "QUEUED", None)  # no StartTime yet

    active = resource.active()
    assert [(e.execution_id, e.status) for e in active] == [(_arn(4), "QUEUED"), (_arn(2), "TRANSFERRING")]
    assert all(e.active and not e.terminal for e in active)
    assert active[1].bytes_transferred == 1024 and active[1].files_transferred == 3
    assert active[1].duration_seconds > 0 and active[0].duration_seconds is None


def test_active_is_empty_when_everything_finished(stubbed):
    resource, stub = stubbed
    _expect_list(stub, [(1, "SUCCESS"), (2, "ERROR")], None, None)
    assert resource.active() == []


def test_recent_is_newest_first_and_describes_only_both_ends_of_the_listing(stubbed):
    resource, stub = stubbed
    _expect_list(stub, [(1, "SUCCESS"), (2, "SUCCESS"), (3, "SUCCESS")], None, "t1")
    _expect_list(stub, [(4, "SUCCESS"), (5, "VERIFYING"), (6, "QUEUED")], "t1", None)
    for n, status, minute in [(1, "SUCCESS", 0), (2, "SUCCESS", 20), (5, "VERIFYING", 80), (6, "QUEUED", None)]:
        _expect_describe(stub, n, status, minute)  # the first two and the last two listed

    recent = resource.recent(limit=2)
    assert [e.execution_id for e in recent] == [_arn(6), _arn(5)]
    assert resource.recent(limit=0) == []  # without a call


def test_recent_describes_everything_when_the_listing_is_short(stubbed):
    resource, stub = stubbed
    _expect_list(stub, [(7, "SUCCESS"), (8, "ERROR"), (9, "SUCCESS")], None, None)
    _expect_describe(stub, 7, "SUCCESS", 40)
    _expect_describe(stub, 8, "ERROR", 0)
    _expect_describe(stub, 9, "SUCCESS", 20)
    assert [e.execution_id for e in resource.recent()] == [_arn(7), _arn(9), _arn(8)]


def test_describe_maps_a_success_and_an_error(stubbed):
    resource, stub = stubbed
    includes = [{"FilterType": "SIMPLE_PATTERN", "Value": f"{MISEQ_RUN}|{NEXTSEQ_RUN}"}]
    _expect_describe(stub, 1, "SUCCESS", 0, EndTime=_at(7), BytesTransferred=5_000_000, FilesTransferred=12,
                     FilesVerified=12, Includes=includes,
                     Result={"TotalDuration": 400_000, "TransferStatus": "SUCCESS"})
    _expect_describe(stub, 2, "ERROR", 20, Result={
        "TotalDuration": 90_500, "ErrorCode": "OpNotSupp",
        "ErrorDetail": "Transfer and verification completed. Selected files transferred except for files skipped"})
    _expect_describe(stub, 3, "ERROR", None, Result={})

    ok = resource.describe(_arn(1))
    assert ok.terminal and ok.error is None and ok.includes == [MISEQ_RUN, NEXTSEQ_RUN]
    assert (ok.bytes_transferred, ok.files_transferred, ok.files_verified) == (5_000_000, 12, 12)
    assert ok.started_at == _at(0).timestamp() and ok.duration_seconds == 420.0  # EndTime wins over TotalDuration

    failed = resource.describe(_arn(2))
    assert failed.status == "ERROR" and failed.terminal and not failed.active
    assert failed.error.startswith("OpNotSupp: Transfer and verification completed")
    assert failed.duration_seconds == 90.5  # no EndTime: StartTime + Result.TotalDuration (ms)
    assert failed.reason == ""  # a tag, which DescribeTaskExecution does not return

    bare = resource.describe(_arn(3))
    assert bare.error and "ERROR" in bare.error and bare.started_at is None and bare.duration_seconds is None


def test_start_tags_the_reason_and_remembers_it(stubbed):
    resource, stub = stubbed
    stub.add_response("start_task_execution", {"TaskExecutionArn": _arn(10)}, {
        "TaskArn": TASK, "Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": MISEQ_OLD_RUN}],
        "Tags": [{"Key": "genolake:reason", "Value": "manifest s3://lake/adhoc/rerun_1_.txt"}]})
    _expect_describe(stub, 10, "LAUNCHING", 5)
    started = resource.start([MISEQ_OLD_RUN], reason="manifest s3://lake/adhoc/rerun(1).txt")
    assert started.execution_id == _arn(10)
    assert resource.describe(_arn(10)).reason == "manifest s3://lake/adhoc/rerun(1).txt"


def test_local_transfer_is_a_dagster_resource(make_local):
    @dg.asset
    def landed_runs(transfer: TransferResource) -> dg.MaterializeResult:
        execution = transfer.start([MISEQ_RUN], reason="asset")
        return dg.MaterializeResult(metadata={"files": execution.files_transferred, "status": execution.status})

    result = dg.materialize([landed_runs], resources={"transfer": make_local()})
    assert result.success
    [materialization] = result.asset_materializations_for_node("landed_runs")
    assert materialization.metadata["files"].value == 3 and materialization.metadata["status"].text == "SUCCESS"


def test_execution_roundtrips_through_a_dict():
    execution = TransferExecution("exec-local-20231015T120000000000Z-1", "SUCCESS", ["/a"], 1.0, 3.5,
                                  bytes_transferred=10, files_transferred=1, files_verified=1, reason="r")
    from dataclasses import asdict

    assert TransferExecution.from_dict({**asdict(execution), "unknown": 1}) == execution
    assert execution.duration_seconds == 2.5
