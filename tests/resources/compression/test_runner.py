"""The compression runners: a real subprocess of the real program, and AWS Batch (moto; Stubber for the rest).

moto runs no containers: its Batch jobs go to SUCCEEDED as soon as they are described. The moto tests
play the container themselves by running the image's ENTRYPOINT (``python -m
genolake_assets.programs.bam_compress``) with the command the job was submitted with, against moto S3.
States moto never reaches (RUNNABLE/RUNNING, FAILED with an exit code, a job that never ends) come
from a botocore Stubber.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import dagster as dg
import pytest
from botocore.stub import ANY, Stubber

from genolake_assets.resources.compression import batch as compression_batch
from genolake_assets.resources.compression import runner as compression_runner
from genolake_assets.resources.compression.batch import AwsBatchCompressionRunner, batch_job_name
from genolake_assets.resources.compression.local import LocalCompressionRunner
from genolake_assets.resources.compression.runner import ENTRYPOINT_MODULE
from genolake_assets.resources.lake.s3_store import aws_client
from tests.moto_api import create_batch_queue

DATA_BAM = Path(__file__).resolve().parents[2] / "data" / "bam"
# The program's default accepted differences (CRAM adds UR/M5 to @SQ lines; unmapped reads' CIGAR).
OPTIONS = {"cram_version": "3.1", "profile": "normal", "threads": 1, "ignore_md5": False, "strict": False}


@pytest.fixture(scope="module")
def ce_bam() -> tuple[Path, Path]:
    """The real C. elegans BAM and its reference (with .fai and .gzi siblings), carried in tests/data."""
    return DATA_BAM / "ce1000.bam", DATA_BAM / "ref" / "ce.fa.gz"


def _reference_files(reference: Path) -> list[Path]:
    return [p for p in (reference, Path(f"{reference}.fai"), Path(f"{reference}.gzi")) if p.exists()]


def _read_json_file(uri: str) -> dict | None:
    path = Path(uri.removeprefix("file://"))
    return json.loads(path.read_text()) if path.exists() else None


# -- job names ----------------------------------------------------------------------------------------


def test_batch_job_name_is_derived_from_the_input_and_valid_for_batch():
    assert batch_job_name({"input_uri": "s3://b/raw/bam/ab/123/NA12878.chr22 tiny.bam"}) == \
        "bam-compress-NA12878_chr22_tiny_bam"
    assert batch_job_name({"input_uri": "file:///data/x.bam"}) == "bam-compress-x_bam"
    long = batch_job_name({"input_uri": "/d/" + "é" * 300 + ".bam"})
    assert len(long) == 128 and set(long) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


# -- local runner --------------------------------------------------------------------------------------


def _local_work_order(tmp_path: Path, bam: Path, reference: Path) -> tuple[dict, str]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for file in [bam, *_reference_files(reference)]:
        shutil.copyfile(file, inputs / file.name)
    work_order = {"work_order_version": 1, "input_uri": str(inputs / bam.name),
                  "reference_uri": str(inputs / reference.name),
                  "output_uri": str(tmp_path / "out" / "ce1000.cram"),
                  "result_uri": str(tmp_path / "out" / "ce1000.result.json"), "options": OPTIONS}
    path = tmp_path / "work_order.json"
    path.write_text(json.dumps(work_order))
    return work_order, str(path)


def test_local_runner_runs_the_program_and_reads_a_verified_result(tmp_path, ce_bam):
    work_order, uri = _local_work_order(tmp_path, *ce_bam)
    lines: list[str] = []
    outcome = LocalCompressionRunner(timeout_seconds=600).run(work_order, uri, _read_json_file, lines.append)
    assert outcome.status == "SUCCEEDED", (outcome.reason, outcome.log_tail)
    assert outcome.exit_code == 0 and outcome.reason is None
    assert outcome.job_id.startswith("local-")
    assert outcome.result["status"] == "verified"
    assert outcome.result["input"]["records"] == outcome.result["output"]["records"] > 0
    assert Path(work_order["output_uri"]).stat().st_size == outcome.result["output"]["size"]
    assert any(line.startswith("verified ") for line in lines)
    assert outcome.log_tail == lines[-50:]


def test_local_runner_reports_a_truncated_bam_as_failed_with_the_programs_exit_code(tmp_path, ce_bam):
    work_order, uri = _local_work_order(tmp_path, *ce_bam)
    bam = Path(work_order["input_uri"])
    bam.write_bytes(bam.read_bytes()[: bam.stat().st_size // 2])
    outcome = LocalCompressionRunner(timeout_seconds=600).run(work_order, uri, _read_json_file, lambda _: None)
    assert outcome.status == "FAILED"
    assert outcome.exit_code == 3, (outcome.reason, outcome.log_tail)
    assert "exited with status 3" in outcome.reason
    assert outcome.result["status"] == "failed" and outcome.result["error"]
    assert not Path(work_order["output_uri"]).exists()


def _fake_python(tmp_path: Path, body: str) -> str:
    """A stand-in for the interpreter (it ignores ``-m ... --work-order ...``), to test the runner itself."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_local_runner_streams_lines_and_isolates_htslib_from_the_network(tmp_path):
    python = _fake_python(tmp_path, 'echo "args: $*"\necho "REF_PATH=$REF_PATH"\necho "REF_CACHE=$REF_CACHE"\n'
                                    'echo "on stderr" >&2\nexit 2\n')
    work_order = {"input_uri": "/x.bam", "result_uri": str(tmp_path / "absent.json")}
    lines: list[str] = []
    outcome = LocalCompressionRunner(python=python).run(work_order, "/wo.json", _read_json_file, lines.append)
    assert lines[0] == f"args: -m {ENTRYPOINT_MODULE} --work-order /wo.json"
    ref_path = lines[1].removeprefix("REF_PATH=")
    scratch, _, pattern = ref_path.partition("/ref-cache/")
    assert Path(scratch).name.startswith("genolake-compress-") and pattern == "%2s/%2s/%s"
    assert not Path(scratch).exists()  # the run's scratch directory is removed afterwards
    assert lines[2] == f"REF_CACHE={ref_path}"
    assert lines[3] == "on stderr"
    assert outcome.log_tail == lines
    assert (outcome.status, outcome.exit_code, outcome.result) == ("FAILED", 2, None)


@pytest.fixture
def pid_file(tmp_path):
    """Where a fake program writes its own child's pid; the child is killed after the test in any case."""
    path = tmp_path / "grandchild.pid"
    yield path
    if path.exists() and _alive(pid := int(path.read_text())):
        os.kill(pid, signal.SIGKILL)


def test_local_runner_kills_the_process_group_on_timeout(tmp_path, pid_file):
    python = _fake_python(tmp_path, f'sleep 300 &\necho $! > {pid_file}\necho started\nwait\n')
    work_order = {"input_uri": "/x.bam", "result_uri": str(tmp_path / "absent.json")}
    started = time.monotonic()
    outcome = LocalCompressionRunner(python=python, timeout_seconds=1).run(
        work_order, "/wo.json", _read_json_file, lambda _: None)
    assert time.monotonic() - started < 30
    assert outcome.status == "FAILED" and outcome.exit_code is None
    assert "timed out after 1 s" in outcome.reason and outcome.job_id in outcome.reason
    assert outcome.log_tail == ["started"]
    assert _wait_dead(int(pid_file.read_text()))


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, dg.DagsterExecutionInterruptedError])
def test_local_runner_kills_the_program_when_the_run_is_interrupted(tmp_path, pid_file, interrupt):
    python = _fake_python(tmp_path, f'sleep 300 &\necho $! > {pid_file}\necho started\nwait\n')
    work_order = {"input_uri": "/x.bam", "result_uri": str(tmp_path / "absent.json")}

    def log(line: str) -> None:
        raise interrupt()

    with pytest.raises(interrupt):
        LocalCompressionRunner(python=python).run(work_order, "/wo.json", _read_json_file, log)
    assert _wait_dead(int(pid_file.read_text()))


def test_local_runner_does_not_wait_for_a_leftover_child_holding_the_output(tmp_path, pid_file):
    python = _fake_python(tmp_path, f'sleep 300 &\necho $! > {pid_file}\necho done\nexit 0\n')
    started = time.monotonic()
    outcome = LocalCompressionRunner(python=python, timeout_seconds=120).run(
        {"result_uri": str(tmp_path / "r.json")}, "/wo.json", _read_json_file, lambda _: None)
    assert time.monotonic() - started < 20
    assert (outcome.status, outcome.exit_code, outcome.log_tail) == ("SUCCEEDED", 0, ["done"])
    assert _wait_dead(int(pid_file.read_text()))


def test_local_runner_reports_a_program_stopped_by_a_signal_as_cancelled(tmp_path):
    python = _fake_python(tmp_path, "echo stopping\nkill -TERM $$\nsleep 5\n")
    outcome = LocalCompressionRunner(python=python).run(
        {"result_uri": str(tmp_path / "r.json")}, "/wo.json", _read_json_file, lambda _: None)
    assert (outcome.status, outcome.exit_code) == ("CANCELLED", None)
    assert outcome.reason == f"{outcome.job_id} killed by SIGTERM"


def test_the_program_can_be_stopped_even_when_the_worker_ignores_sigterm(tmp_path):
    """Dagster maps SIGTERM onto SIGINT's disposition, and SIGINT is ignored in a background job: the worker
    then holds SIGTERM ignored, which a child would inherit through exec and so outlive every stop."""
    import signal

    python = _fake_python(tmp_path, "echo stopping\nkill -TERM $$\nsleep 5\n")
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        outcome = LocalCompressionRunner(python=python).run(
            {"result_uri": str(tmp_path / "r.json")}, "/wo.json", _read_json_file, lambda _: None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (outcome.status, outcome.exit_code) == ("CANCELLED", None)


def test_local_runner_keeps_a_long_log_to_its_last_lines(tmp_path):
    python = _fake_python(tmp_path, "i=0\nwhile [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done\n")
    outcome = LocalCompressionRunner(python=python).run(
        {"result_uri": str(tmp_path / "r.json")}, "/wo.json", _read_json_file, lambda _: None)
    assert outcome.status == "SUCCEEDED"
    assert outcome.log_tail == [f"line {i}" for i in range(150, 200)]


def test_local_runner_as_a_dagster_resource_logs_to_the_run(tmp_path):
    python = _fake_python(tmp_path, 'echo "compressing"\necho "verified"\n')
    result_file = tmp_path / "result.json"
    result_file.write_text('{"status": "verified"}')

    @dg.asset
    def compressed(context: dg.AssetExecutionContext, runner: compression_runner.CompressionRunner) -> dict:
        outcome = runner.run({"result_uri": str(result_file)}, "/wo.json", _read_json_file, context.log.info)
        return outcome.result

    with dg.DagsterInstance.ephemeral() as instance:
        run = dg.materialize([compressed], instance=instance,
                             resources={"runner": LocalCompressionRunner(python=python, timeout_seconds=60)})
        assert run.success and run.output_for_node("compressed") == {"status": "verified"}
        messages = [r.user_message for r in instance.all_logs(run.run_id)]
    assert messages.index("compressing") < messages.index("verified")


# -- AWS Batch on moto ----------------------------------------------------------------------------------


@pytest.fixture
def batch_setup(moto_endpoint):
    """Batch on moto without Docker, with a queue of its own (so a test can find its own job)."""
    return {**create_batch_queue(moto_endpoint),
            "batch": aws_client("batch", endpoint_url=moto_endpoint, region_name="us-east-1")}


@pytest.fixture
def batch_runner(batch_setup, moto_endpoint):
    return AwsBatchCompressionRunner(job_queue=batch_setup["queue"], job_definition=batch_setup["definition"],
                                     region="us-east-1", endpoint_url=moto_endpoint, poll_interval_seconds=0.05,
                                     timeout_seconds=120)


def _only_job(batch, queue: str) -> dict:
    summaries = [s for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
                 for s in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]]
    assert len(summaries) == 1, summaries
    return batch.describe_jobs(jobs=[summaries[0]["jobId"]])["jobs"][0]


def _s3_json(raw_s3, uri: str) -> dict | None:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        return json.loads(raw_s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except raw_s3.exceptions.NoSuchKey:
        return None


def test_batch_runner_submits_the_work_order_and_reads_the_programs_result(
        batch_runner, batch_setup, raw_s3, bucket, moto_endpoint, ce_bam, monkeypatch):
    bam, reference = ce_bam
    digest = uuid.uuid4().hex
    raw_s3.upload_file(str(bam), bucket, f"raw/bam/{digest[:2]}/{digest}/{bam.name}")
    for file in _reference_files(reference):
        raw_s3.upload_file(str(file), bucket, f"references/{digest}/{file.name}")
    work_order = {"work_order_version": 1, "input_uri": f"s3://{bucket}/raw/bam/{digest[:2]}/{digest}/{bam.name}",
                  "reference_uri": f"s3://{bucket}/references/{digest}/{reference.name}",
                  "output_uri": f"s3://{bucket}/alignments/cram/{digest}/ce1000.cram",
                  "result_uri": f"s3://{bucket}/alignments/results/{digest}.json", "options": OPTIONS}
    work_order_uri = f"s3://{bucket}/work-orders/{digest}.json"
    raw_s3.put_object(Bucket=bucket, Key=f"work-orders/{digest}.json", Body=json.dumps(work_order).encode())
    batch = batch_setup["batch"]
    container_runs: list[subprocess.CompletedProcess] = []

    def read_result(uri: str) -> dict | None:
        # moto's job "succeeded" without running anything: be the container now, running the image's
        # ENTRYPOINT with the command the job was submitted with, against moto S3.
        job = _only_job(batch, batch_runner.job_queue)
        env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint}
        container_runs.append(subprocess.run([sys.executable, "-m", ENTRYPOINT_MODULE, *job["container"]["command"]],
                                             env=env, capture_output=True, text=True, timeout=600))
        return _s3_json(raw_s3, uri)

    lines: list[str] = []
    outcome = batch_runner.run(work_order, work_order_uri, read_result, lines.append)

    job = _only_job(batch, batch_runner.job_queue)
    assert job["jobId"] == outcome.job_id
    assert job["jobName"] == "bam-compress-ce1000_bam"
    assert job["jobQueue"].endswith(f":job-queue/{batch_runner.job_queue}")
    assert f":job-definition/{batch_setup['definition']}:" in job["jobDefinition"]
    assert job["container"]["command"] == ["--work-order", work_order_uri]
    assert job["tags"] == {"genolake:job": "bam-compress"}
    assert outcome.status == "SUCCEEDED"
    assert any(line.endswith(f"{outcome.job_id}: SUCCEEDED") for line in lines)
    assert outcome.log_tail == []  # moto writes no CloudWatch log stream; its absence is tolerated

    (container,) = container_runs
    assert container.returncode == 0, container.stdout + container.stderr
    assert outcome.result["status"] == "verified"
    assert outcome.result["output"]["uri"] == work_order["output_uri"]
    head = raw_s3.head_object(Bucket=bucket, Key=f"alignments/cram/{digest}/ce1000.cram")
    assert head["ContentLength"] == outcome.result["output"]["size"]


# -- AWS Batch states moto lacks (botocore Stubber) -------------------------------------------------------


JOB_ID = "0b0e4bd6-8d1e-4c36-9a41-1f4f3c2b7d10"
WORK_ORDER = {"work_order_version": 1, "input_uri": "s3://lake/raw/bam/ab/abc/NA12878.bam",
              "reference_uri": "s3://lake/references/r/ce.fa.gz", "output_uri": "s3://lake/alignments/cram/x.cram",
              "result_uri": "s3://lake/alignments/results/x.json", "options": OPTIONS}
WORK_ORDER_URI = "s3://lake/work-orders/x.json"
STREAM = f"genolake-bam-compress/default/{JOB_ID}"


def _client(service: str):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    return session.client(service)


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(compression_batch, "_monotonic", fake.monotonic)
    monkeypatch.setattr(compression_batch, "_sleep", fake.sleep)
    return fake


@pytest.fixture
def stubbed():
    """(runner, batch Stubber, logs Stubber); both stubbers must be fully consumed by the test."""
    batch, logs = _client("batch"), _client("logs")
    runner = AwsBatchCompressionRunner(job_queue="genolake-queue", job_definition="genolake-bam-compress:3",
                                       poll_interval_seconds=10.0, timeout_seconds=3600.0)
    with Stubber(batch) as batch_stub, Stubber(logs) as logs_stub:
        yield runner.with_clients(batch=batch, logs=logs), batch_stub, logs_stub
        batch_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()


def _expect_submit(batch_stub: Stubber, attempt_seconds: int = 3600) -> None:
    batch_stub.add_response("submit_job", {"jobName": "bam-compress-NA12878_bam", "jobId": JOB_ID}, {
        "jobName": "bam-compress-NA12878_bam", "jobQueue": "genolake-queue",
        "jobDefinition": "genolake-bam-compress:3",
        "containerOverrides": {"command": ["--work-order", WORK_ORDER_URI]},
        "timeout": {"attemptDurationSeconds": attempt_seconds}, "tags": {"genolake:job": "bam-compress"}})


def _expect_describe(batch_stub: Stubber, status: str, stream: str | None = None, **extra) -> None:
    job = {"jobName": "bam-compress-NA12878_bam", "jobId": JOB_ID, "jobQueue": "genolake-queue", "status": status,
           "startedAt": 0, "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/x:3", **extra}
    if stream:
        job["container"] = {"logStreamName": stream}
    batch_stub.add_response("describe_jobs", {"jobs": [job]}, {"jobs": [JOB_ID]})


def _expect_log_page(logs_stub: Stubber, messages: list[str], token_in: str | None, token_out: str) -> None:
    expected = {"logGroupName": "/aws/batch/job", "logStreamName": STREAM, "startFromHead": True}
    if token_in:
        expected["nextToken"] = token_in
    events = [{"timestamp": 1, "message": m, "ingestionTime": 2} for m in messages]
    logs_stub.add_response("get_log_events", {"events": events, "nextForwardToken": token_out,
                                              "nextBackwardToken": "b"}, expected)


def _expect_terminate(batch_stub: Stubber, reason) -> None:
    batch_stub.add_response("terminate_job", {}, {"jobId": JOB_ID, "reason": reason})


def test_batch_runner_streams_the_log_in_order_through_runnable_running_succeeded(stubbed, clock):
    runner, batch_stub, logs_stub = stubbed
    _expect_submit(batch_stub)
    _expect_describe(batch_stub, "RUNNABLE")
    _expect_describe(batch_stub, "RUNNING", STREAM)
    logs_stub.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.")
    _expect_describe(batch_stub, "RUNNING", STREAM)
    _expect_log_page(logs_stub, ["fetching input", "compressing"], None, "f1")
    _expect_log_page(logs_stub, ["verifying"], "f1", "f2")
    _expect_log_page(logs_stub, [], "f2", "f2")
    _expect_describe(batch_stub, "SUCCEEDED", STREAM,
                     attempts=[{"container": {"exitCode": 0, "logStreamName": STREAM}}])
    _expect_log_page(logs_stub, ["published"], "f2", "f3")
    _expect_log_page(logs_stub, [], "f3", "f3")
    result = {"status": "verified"}
    read = []
    lines: list[str] = []

    outcome = runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: read.append(uri) or result, lines.append)

    container_lines = ["fetching input", "compressing", "verifying", "published"]
    assert [line for line in lines if line in container_lines] == container_lines
    assert lines.index(f"Batch job {JOB_ID}: RUNNING") < lines.index("fetching input")
    assert lines.index("verifying") < lines.index(f"Batch job {JOB_ID}: SUCCEEDED") < lines.index("published")
    assert outcome.log_tail == container_lines
    assert (outcome.job_id, outcome.status, outcome.exit_code, outcome.reason) == (JOB_ID, "SUCCEEDED", 0, None)
    assert outcome.result == result and read == [WORK_ORDER["result_uri"]]
    assert clock.sleeps == [10.0, 10.0, 10.0]


def test_batch_runner_reports_a_verification_mismatch_with_exit_code_and_reason(stubbed, clock):
    runner, batch_stub, logs_stub = stubbed
    _expect_submit(batch_stub)
    _expect_describe(batch_stub, "FAILED", STREAM, statusReason="Essential container in task exited", attempts=[
        {"container": {"exitCode": 2, "logStreamName": STREAM}, "statusReason": "Essential container in task exited"}])
    _expect_log_page(logs_stub, ["verification failed: 3 records differ"], None, "f1")
    _expect_log_page(logs_stub, [], "f1", "f1")
    result = {"status": "failed", "error_code": "verification_mismatch"}

    outcome = runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: result, lambda _: None)

    assert (outcome.status, outcome.exit_code) == ("FAILED", 2)
    assert outcome.reason == "Essential container in task exited"
    assert outcome.result == result
    assert outcome.log_tail == ["verification failed: 3 records differ"]


def test_batch_runner_includes_the_containers_reason(stubbed, clock):
    runner, batch_stub, logs_stub = stubbed
    _expect_submit(batch_stub)
    _expect_describe(batch_stub, "FAILED", statusReason="Essential container in task exited", attempts=[
        {"container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}}])

    outcome = runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: None, lambda _: None)

    assert (outcome.status, outcome.exit_code, outcome.result) == ("FAILED", 137, None)
    assert outcome.reason == "Essential container in task exited; OutOfMemoryError: Container killed due to memory usage"


def test_batch_runner_reports_a_job_cancelled_while_queued(stubbed, clock):
    runner, batch_stub, _ = stubbed
    _expect_submit(batch_stub)
    _expect_describe(batch_stub, "FAILED", statusReason="Cancelled by operator", isCancelled=True)

    outcome = runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: None, lambda _: None)

    assert (outcome.status, outcome.exit_code, outcome.reason) == ("CANCELLED", None, "Cancelled by operator")


def test_batch_runner_terminates_a_job_that_runs_past_its_timeout(stubbed, clock):
    runner, batch_stub, _ = stubbed
    runner = runner.model_copy(update={"timeout_seconds": 30.0})
    _expect_submit(batch_stub, attempt_seconds=60)  # Batch's minimum
    for _ in range(4):  # at 0, 10, 20 and 30 s
        _expect_describe(batch_stub, "RUNNING")
    _expect_terminate(batch_stub, f"Batch job {JOB_ID} timed out after 30 s")
    read = []

    outcome = runner.run(WORK_ORDER, WORK_ORDER_URI, read.append, lambda _: None)

    assert (outcome.status, outcome.exit_code, outcome.result) == ("FAILED", None, None)
    assert JOB_ID in outcome.reason and "timed out after 30 s" in outcome.reason
    assert read == []  # no result is read from a job that was stopped


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, dg.DagsterExecutionInterruptedError])
def test_batch_runner_terminates_the_job_when_interrupted_while_waiting(stubbed, monkeypatch, interrupt):
    runner, batch_stub, _ = stubbed
    _expect_submit(batch_stub)
    _expect_describe(batch_stub, "RUNNABLE")
    _expect_terminate(batch_stub, "Dagster run terminated")

    def sleep(seconds):
        raise interrupt()

    monkeypatch.setattr(compression_batch, "_sleep", sleep)
    with pytest.raises(interrupt):
        runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: None, lambda _: None)


def test_batch_runner_terminates_the_job_when_interrupted_inside_log(stubbed, clock):
    runner, batch_stub, logs_stub = stubbed
    _expect_submit(batch_stub)
    _expect_describe(batch_stub, "RUNNING", STREAM)
    _expect_log_page(logs_stub, ["compressing"], None, "f1")
    _expect_terminate(batch_stub, "Dagster run terminated")

    def log(line: str) -> None:
        if line == "compressing":
            raise dg.DagsterExecutionInterruptedError()

    with pytest.raises(dg.DagsterExecutionInterruptedError):
        runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: None, log)


def test_batch_runner_terminates_the_job_when_polling_fails(stubbed, clock):
    runner, batch_stub, _ = stubbed
    _expect_submit(batch_stub)
    batch_stub.add_client_error("describe_jobs", "AccessDeniedException", "not allowed", http_status_code=403)
    _expect_terminate(batch_stub, ANY)
    lines: list[str] = []

    with pytest.raises(Exception, match="AccessDeniedException"):
        runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: None, lines.append)


def test_batch_runner_carries_on_when_the_log_cannot_be_read(stubbed, clock):
    runner, batch_stub, logs_stub = stubbed
    _expect_submit(batch_stub)
    _expect_describe(batch_stub, "RUNNING", STREAM)
    logs_stub.add_client_error("get_log_events", "AccessDeniedException", "no logs:GetLogEvents", http_status_code=400)
    _expect_describe(batch_stub, "SUCCEEDED", STREAM, attempts=[{"container": {"exitCode": 0, "logStreamName": STREAM}}])
    lines: list[str] = []

    outcome = runner.run(WORK_ORDER, WORK_ORDER_URI, lambda uri: {"status": "verified"}, lines.append)

    assert outcome.status == "SUCCEEDED" and outcome.result == {"status": "verified"}
    assert sum("cannot read log stream" in line for line in lines) == 1  # said once, not every poll


def test_the_program_dies_with_a_killed_run_worker(tmp_path):
    """A run worker SIGKILLed (out of memory) must not leave its compression running on: it would publish a
    CRAM that no run records."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "program.pid"
    python = _fake_python(tmp_path, f"echo $$ > {pid_file}\nsleep 600\n")
    worker = subprocess.Popen([sys.executable, "-c", (
        "from genolake_assets.resources.compression.local import LocalCompressionRunner\n"
        f"LocalCompressionRunner(python={str(python)!r}).run({{'result_uri': 'r.json'}}, '/wo.json', "
        "lambda _: None, lambda _: None)\n")])
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    program = int(pid_file.read_text())

    worker.send_signal(signal.SIGKILL)
    worker.wait()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(program, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{program}/stat") as stat:
            if stat.read().split(") ")[1].startswith("Z"):
                break  # exited, waiting for a parent to reap it
        time.sleep(0.1)
    else:
        os.kill(program, signal.SIGKILL)
        raise AssertionError("the compression program outlived its killed run worker")
