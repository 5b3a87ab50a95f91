"""The aws profile with the Hail engine on EMR, end to end: landed gVCFs → raw_vcf → sample_variants, whose
batch runs on a (played) transient EMR cluster that stages its files in the lake, from where the asset
publishes them by server-side copy and then removes the staging prefix.

Everything is the production code on a moto server (S3 lake, Glue catalog, EMR's RunJobFlow) with the
resources from ``build_resources`` for ``GENOLAKE_PROFILE=aws`` + ``GENOLAKE_ENGINE=hail``. The built
EmrHailConverter is re-created with the same fields but two, which no setting reaches: ``poll_interval_seconds``
(15 s by default) and ``job_dir``, so that the job script the converter uploads to
``code/<sha256>/vcf_to_parquet.py`` and names in the step is the stand-in below rather than the Spark job.

The cluster is :class:`tests.resources.test_emr_hail.ScriptedEmr`: scripted cluster states over moto's real
``RunJobFlow``; when RUNNING it downloads the uploaded job script and package zip from the lake and runs the
script with the zip first on its path and the Pipes environment from the cluster's spark-env. The stand-in
really converts: it downloads each job's VCF from its s3:// URI, runs the in-process converter
(``convert_to_staging``, imported from the zip), uploads every staged file to the job's ``staging_uri`` and
writes the ``BatchResult`` (engine ``genolake-hail``) to the manifest's ``result_uri``; a VCF it cannot
convert is an outcome with a ``problem``, as in spark/vcf_to_parquet.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.vcf import publish
from genolake_assets.assets.ingest import raw_vcf
from genolake_assets.assets.ingest import samples_table
from genolake_assets.assets.variants import sample_variants
from genolake_assets.lib.lake.layout import STAGING_CONVERT_PREFIX
from genolake_assets.lib.vcf.batch import BatchResult, ConversionManifest
from genolake_assets.lib.lake.layout import SAMPLES_TABLE_KEY
from genolake_assets.lib.vcf.convert import convert_to_staging
from genolake_assets.resources.conversion import emr_hail as emr_hail
from genolake_assets.resources.conversion.emr_hail import EmrHailConverter
from genolake_assets.resources.profile import build_resources
from genolake_assets.resources.lake.s3_store import S3ObjectStore
from genolake_assets.settings import Settings
from tests.pipeline.helpers import tick
from tests.resources.conversion.test_emr_hail import (
    COMPLETED,
    RUNNING,
    ScriptedEmr,
    quick_pipes,  # noqa: F401 - autouse: no 60 s wait for EMR's step logs
)

REPO = Path(__file__).resolve().parents[2]
GVCF_DIR = Path(__file__).resolve().parents[2] / "data" / "vcf" / "1kg_chr22_gvcf"
GOOD = ("HG00308", "HG00313", "HG00339")
BAD = "HG00323"
TABLES = ("variants", "reference_blocks")
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

pytestmark = pytest.mark.skipif(not GVCF_DIR.is_dir(), reason=f"{GVCF_DIR} (1000 Genomes chr22 gVCFs) is missing")

# The cluster's step: the command line, Pipes calls and result of spark/vcf_to_parquet.py, with the
# in-process converter doing the conversion (no Spark). It imports genolake from the uploaded zip.
STAND_IN_JOB = r'''
import argparse, dataclasses, hashlib, json, os, sys, tempfile, time
from pathlib import Path

import boto3
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import genolake_assets
from dagster_pipes import PipesEnvVarParamsLoader, PipesS3MessageWriter, open_dagster_pipes
from genolake_assets.lib.vcf.batch import BatchResult, ConversionManifest, JobOutcome
from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.lake.staged_tables import staged_uri
from genolake_assets.lib.vcf.convert import convert_to_staging

ENGINE, ENGINE_VERSION = "genolake-hail", "1"  # what spark/vcf_to_parquet.py reports
assert ".zip" in genolake_assets.__file__, f"genolake_assets came from {genolake_assets.__file__}, not --py-files"
parser = argparse.ArgumentParser()
parser.add_argument("--manifest", required=True)
args = parser.parse_args()
s3 = boto3.client("s3")


WRITE_LIKE_THE_SPARK_JOB = os.environ.get("STAND_IN_WRITER") == "pyarrow"


def write(local_or_bytes, uri):
    """boto3 by default; with STAND_IN_WRITER=pyarrow as spark/vcf_to_parquet.py (lib/lake/job_io.write_text) and
    genolake_assets/lib/lake/staged_tables.py (finish_sample_table) write to S3: create_dir, then the object."""
    data = local_or_bytes if isinstance(local_or_bytes, bytes) else Path(local_or_bytes).read_bytes()
    if not WRITE_LIKE_THE_SPARK_JOB:
        s3.put_object(Bucket=split(uri)[0], Key=split(uri)[1], Body=data)
        return
    fs, path = pafs.FileSystem.from_uri(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def split(uri):
    assert uri.startswith("s3://"), f"{uri} is not an S3 URI: the cluster cannot read the orchestrator's disk"
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


manifest = ConversionManifest.from_json(s3.get_object(Bucket=split(args.manifest)[0],
                                                      Key=split(args.manifest)[1])["Body"].read().decode())
assert PipesEnvVarParamsLoader().is_dagster_pipes_process(), "no Pipes environment on the driver"
work = Path(tempfile.mkdtemp(prefix="stand-in-emr-"))
started, outcomes = time.perf_counter(), []
with open_dagster_pipes(message_writer=PipesS3MessageWriter(client=s3)) as pipes:
    pipes.log.info(f"converting {len(manifest.jobs)} VCFs")
    for job in manifest.jobs:
        job_started = time.perf_counter()
        local_vcf = work / job.job_id / job.vcf_uri.rsplit("/", 1)[1]
        local_vcf.parent.mkdir(parents=True)
        s3.download_file(*split(job.vcf_uri), str(local_vcf))
        staging = work / job.job_id / "staging"
        try:
            report = convert_to_staging(local_vcf, staging, list(job.samples), sample_ids=job.samples,
                                        name_columns=job.name_columns)
        except VcfFormatError as exc:  # the Hail job reads the VCF at its URI: its problem names that
            problem = dataclasses.replace(exc.detail, file=job.vcf_uri)
            outcomes.append(JobOutcome(job.job_id, job.vcf_uri, problem=problem,
                                       seconds=time.perf_counter() - job_started))
            pipes.report_custom_message({"kind": "failed", "job_id": job.job_id, "vcf_uri": job.vcf_uri,
                                         "problem": str(problem)})
            continue
        staged = {}
        for sample in report.samples.values():
            staged[sample.sample_id] = {}
            for table, local in list(sample.files.items()):
                relative = Path(local).relative_to(staging).as_posix()
                target = staged_uri(job.staging_uri, table, sample.sample_id)
                assert target == f"{job.staging_uri}/{relative}", (target, relative)
                data = Path(local).read_bytes()
                write(local, target)
                staged[sample.sample_id][table] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                                   "rows": pq.read_metadata(local).num_rows}
                sample.files[table] = target
            pipes.report_custom_message({"kind": "sample", "job_id": job.job_id, "sample_id": sample.sample_id,
                                         "rows": sample.variant_rows,
                                         "reference_block_rows": sample.reference_block_rows,
                                         "bytes": sum(sample.bytes.values()),
                                         "seconds": round(time.perf_counter() - job_started, 3)})
        report.source, report.engine, report.engine_version = job.vcf_uri, ENGINE, ENGINE_VERSION
        outcomes.append(JobOutcome(job.job_id, job.vcf_uri, report=report, staged=staged,
                                   seconds=time.perf_counter() - job_started))
    result = BatchResult(ENGINE, ENGINE_VERSION, outcomes, time.perf_counter() - started,
                         spark={"master": "yarn", "hail_version": "0.2.139"})
    write(result.to_json().encode(), manifest.result_uri)
'''


class ConvertingEmr(ScriptedEmr):
    """ScriptedEmr whose step is the converting stand-in; it keeps what the cluster saw and left behind
    (the manifest, the result, the staged objects) before the asset cleans the staging prefix up."""

    def __init__(self, endpoint: str, raw_s3, tmp_path: Path):
        super().__init__(endpoint, raw_s3, tmp_path, [*RUNNING, COMPLETED], on_running=self._convert)
        self.manifest_uri: str | None = None
        self.manifest: ConversionManifest | None = None
        self.result: BatchResult | None = None
        self.staged_objects: dict[str, str] = {}
        """s3:// URI → sha256 of each object under the batch's staging folder once the step has run."""

    def _read(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.raw_s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _convert(self, cluster: dict) -> None:
        args = self.step_args()
        self.manifest_uri = args[args.index("--manifest") + 1]
        self.manifest = ConversionManifest.from_json(self._read(self.manifest_uri).decode())
        self.run_job(cluster)
        self.result = BatchResult.from_json(self._read(self.manifest.result_uri).decode())
        bucket, _, folder = self.manifest.result_uri.removeprefix("s3://").rpartition("/")[0].partition("/")
        for page in self.raw_s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder + "/"):
            for item in page.get("Contents", []):
                self.staged_objects[f"s3://{bucket}/{item['Key']}"] = hashlib.sha256(
                    self._read(f"s3://{bucket}/{item['Key']}")).hexdigest()


@pytest.fixture
def job_dir(tmp_path) -> Path:
    folder = tmp_path / "spark"
    folder.mkdir()
    (folder / emr_hail.JOB_SCRIPT).write_text(STAND_IN_JOB)
    shutil.copy(REPO / "spark" / emr_hail.BOOTSTRAP_SCRIPT, folder / emr_hail.BOOTSTRAP_SCRIPT)
    return folder


@pytest.fixture
def hail_on_emr(aws_resources, monkeypatch, job_dir, moto_endpoint) -> dict:
    """The aws profile's resources as build_resources makes them with GENOLAKE_ENGINE=hail (moto endpoints)."""
    monkeypatch.setenv("GENOLAKE_ENGINE", "hail")
    resources = build_resources(Settings.from_env())
    converter = resources["converter"]
    assert type(converter) is EmrHailConverter and converter.stages_in_lake()
    assert (converter.endpoint_url, converter.region, converter.job_dir) == (moto_endpoint, "us-east-1", None)
    # A new resource with the built one's fields: model_copy(update=...) does not reach the resource Dagster
    # rebuilds for the run (the run would poll every 15 s and upload the repo's Spark job).
    fields = {name: getattr(converter, name) for name in EmrHailConverter.model_fields}
    resources["converter"] = EmrHailConverter(**{**fields, "poll_interval_seconds": 0.05, "job_dir": str(job_dir)})
    return resources


@pytest.fixture
def cluster(monkeypatch, moto_endpoint, raw_s3, tmp_path) -> ConvertingEmr:
    """The EMR client the converter gets from its factory (Dagster rebuilds resources per run)."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    emr = ConvertingEmr(moto_endpoint, raw_s3, folder)
    factory = emr_hail.aws_client
    monkeypatch.setattr(emr_hail, "aws_client",
                        lambda service, **kw: emr.client if service == "emr" else factory(service, **kw))
    return emr


def _type_error_vcf(tmp_path: Path, sample: str) -> tuple[Path, int]:
    """The real gVCF of ``sample`` with one FORMAT/MIN_DP value that is not the Integer its header declares:
    raw_vcf accepts it (header and compression are fine), the conversion refuses it. Returns (path, line)."""
    lines = gzip.decompress((GVCF_DIR / f"{sample}.hg38.g.vcf.gz").read_bytes()).decode().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("#CHROM")) + 1
    index = next(i for i in range(start, len(lines)) if lines[i] and lines[i].split("\t")[8] == "GT:DP:GQ:MIN_DP:PL")
    columns = lines[index].split("\t")
    values = columns[9].split(":")
    values[3] = "x1"
    columns[9] = ":".join(values)
    lines[index] = "\t".join(columns)
    path = tmp_path / f"{sample}.type_error.vcf"
    path.write_text("\n".join(lines))
    return path, index + 1


def _land_and_register(instance, resources, files: list[Path]) -> list[str]:
    """Land the files, let the landing sensor add their partitions, materialize raw_vcf over them (one run)."""
    store = resources["lake"].store()
    for path in files:
        store.upload(path, f"landing/{path.name}")
    keys = [request.partition_key for request in tick(instance, resources).run_requests]
    registered = dg.materialize([raw_vcf], instance=instance, resources=resources,
                                tags={RANGE_START: keys[0], RANGE_END: keys[-1]})
    assert registered.success
    return keys


def _convert(instance, resources, keys: list[str]) -> dg.ExecuteInProcessResult:
    """sample_variants over ``keys`` in one run: one batch, one EMR cluster."""
    return dg.materialize([raw_vcf, sample_variants], selection=[sample_variants], instance=instance,
                          resources=resources, tags={RANGE_START: keys[0], RANGE_END: keys[-1]},
                          raise_on_error=False)


def _events(instance, run, asset: str) -> dict[str, dict]:
    """Each partition's materialization metadata, from the instance's event log (a failed in-process result
    does not list the materializations fail_for_bad_partitions logged before failing the step)."""
    events = [entry.dagster_event for entry in instance.all_logs(run.run_id,
                                                                 of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)]
    return {e.partition: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in events if e.asset_key.path == [asset]}


def _object(raw_s3, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return raw_s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _keys(raw_s3, bucket: str, prefix: str) -> list[str]:
    return [item["Key"] for page in raw_s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])]


def _failure_error(run):
    error = run.get_step_failure_events()[0].event_specific_data.error
    while error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    return error


def _convert_with_a_bad_vcf(instance, resources, tmp_path, good) -> tuple[dg.ExecuteInProcessResult, Path, int]:
    """Land ``good`` and BAD's gVCF with a type error, register them, convert them in one batch."""
    bad_vcf, bad_line = _type_error_vcf(tmp_path, BAD)
    keys = _land_and_register(instance, resources, [*(GVCF_DIR / f"{name}.hg38.g.vcf.gz" for name in good), bad_vcf])
    assert sorted(keys) == sorted([*good, BAD])
    return _convert(instance, resources, keys), bad_vcf, bad_line


def test_a_batch_is_converted_on_emr_staged_in_the_lake_and_published_by_copy(
        hail_on_emr, cluster, instance, raw_s3, bucket, tmp_path):
    resources = hail_on_emr
    store = resources["lake"].store()
    keys = _land_and_register(instance, resources, [GVCF_DIR / f"{name}.hg38.g.vcf.gz" for name in GOOD])
    assert sorted(keys) == sorted(GOOD)

    run = _convert(instance, resources, keys)

    assert run.success, _failure_error(run).to_string()
    assert [r.returncode for r in cluster.job_runs] == [0]
    lake = f"s3://{bucket}/lake"
    records = {key: json.loads(store.read_bytes(f"registry/samples/{key}.json")) for key in keys}

    # The cluster got the batch's manifest: every raw VCF by its s3:// URI in the lake, staging under
    # staging/convert/<batch>/, the manifest next to the result it names.
    manifest = cluster.manifest
    batch_folder = manifest.result_uri.removesuffix("/result.json")
    assert batch_folder.startswith(f"{lake}/{STAGING_CONVERT_PREFIX}") and manifest.result_uri.endswith("/result.json")
    assert cluster.manifest_uri == f"{batch_folder}/manifest.json"
    assert len(manifest.jobs) == 3 and manifest.regions_bed_uri is None
    for index, job in enumerate(manifest.jobs):
        (name, sample_id), = job.samples.items()
        assert name == sample_id and sample_id in keys
        assert job.vcf_uri == records[sample_id]["raw_uri"] and job.vcf_uri.startswith(f"{lake}/raw/vcf/")
        assert job.staging_uri == f"{batch_folder}/vcf{index:04d}" and job.name_columns is None
    # ... on a cluster launched for the run's partition range, with the step naming that manifest
    described = cluster.moto.describe_cluster(ClusterId=cluster.cluster_id)["Cluster"]
    assert described["Name"] == f"genolake-hail {run.run_id} {keys[0]}..{keys[-1]}"
    assert {t["Key"]: t["Value"] for t in described["Tags"]}["genolake:samples"] == "3"
    assert cluster.step_args()[-2:] == ["--manifest", cluster.manifest_uri]
    script = cluster.step_args()[-3]
    assert script.startswith(f"{lake}/code/") and script.endswith("/vcf_to_parquet.py")

    # The result the cluster wrote: one outcome per VCF, every staged file in the lake with its checksum.
    result = cluster.result
    assert result.engine == "genolake-hail" and all(outcome.ok for outcome in result.outcomes)
    staged = {}
    for job, outcome in zip(manifest.jobs, result.outcomes, strict=True):
        (sample_id,) = job.samples.values()
        sample = outcome.report.samples[sample_id]
        for table in TABLES:
            uri = f"{job.staging_uri}/{table}/sample_id={sample_id}/part-00000.parquet"
            assert sample.files[table] == uri
            assert cluster.staged_objects[uri] == outcome.staged[sample_id][table]["sha256"]
            staged[sample_id, table] = (uri, outcome.staged[sample_id][table])
    assert len(cluster.staged_objects) == 2 * 3 + 2  # the staged files, the manifest and the result

    variants_events = _events(instance, run, "sample_variants")
    blocks_events = _events(instance, run, "sample_reference_blocks")
    for sample_id in keys:
        # an independent conversion of the landed file, in this process
        local = convert_to_staging(GVCF_DIR / f"{sample_id}.hg38.g.vcf.gz", tmp_path / "oracle" / sample_id,
                                   [sample_id], sample_ids={sample_id: sample_id}).samples[sample_id]
        expected_rows = {"variants": local.variant_rows, "reference_blocks": local.reference_block_rows}
        for table, events in (("variants", variants_events), ("reference_blocks", blocks_events)):
            key = f"{table}/sample_id={sample_id}/part-00000.parquet"
            published = _object(raw_s3, f"{lake}/{key}")
            uri, info = staged[sample_id, table]
            # byte-identical to what the cluster staged (a server-side copy, never re-encoded)
            assert hashlib.sha256(published).hexdigest() == info["sha256"] == cluster.staged_objects[uri]
            assert len(published) == info["bytes"]
            assert pq.read_metadata(io.BytesIO(published)).num_rows == info["rows"] == expected_rows[table] > 0
            assert pq.read_table(io.BytesIO(published)).equals(pq.read_table(local.files[table]))
            # each partition's own materialization
            metadata = events[sample_id]
            assert metadata["rows"] == expected_rows[table] and metadata["sha256"] == info["sha256"]
            assert metadata["uri"] == f"{lake}/{key}" and metadata["bytes"] == info["bytes"]
            assert metadata["engine"] == "genolake-hail 1" and metadata["sample_id"] == sample_id
        record = records[sample_id]
        assert record["status"] == "converted" and record["engine"] == "genolake-hail"
        assert record["engine_version"] == "1" and record["variant_rows"] == local.variant_rows
        assert record["reference_block_rows"] == local.reference_block_rows
        assert json.loads(store.read_bytes(f"registry/published/{sample_id}.json"))["engine"] == "genolake-hail"
    assert set(variants_events) == set(blocks_events) == set(keys)

    # The cluster's per-sample Pipes messages reached the run's log.
    messages = [entry.user_message for entry in instance.all_logs(run.run_id)]
    for sample_id in keys:
        assert any(f"sample {sample_id} converted: " in message for message in messages), sample_id

    # Nothing is left under staging/convert/ (staged files, manifest, result)
    assert _keys(raw_s3, bucket, f"lake/{STAGING_CONVERT_PREFIX}") == []

    # The samples table, as the aws profile writes it for Athena, says which engine converted each sample.
    assert dg.materialize([samples_table], instance=instance, resources=resources).success
    rows = pq.read_table(io.BytesIO(_object(raw_s3, f"{lake}/{SAMPLES_TABLE_KEY}"))).to_pylist()
    assert {r["sample_id"]: (r["status"], r["engine"]) for r in rows} == {
        key: ("converted", "genolake-hail") for key in keys}


def test_a_vcf_the_cluster_cannot_convert_is_quarantined_and_the_others_published(
        hail_on_emr, cluster, instance, raw_s3, bucket, tmp_path):
    resources = hail_on_emr
    store = resources["lake"].store()
    good = GOOD[:2]
    run, bad_vcf, bad_line = _convert_with_a_bad_vcf(instance, resources, tmp_path, good)
    bad_raw_uri = json.loads(store.read_bytes(f"registry/samples/{BAD}.json"))["raw_uri"]

    # The run fails naming the bad sample only (fail_for_bad_partitions), after the good ones were published.
    assert not run.success
    error = _failure_error(run)
    assert error.message.startswith(f"dagster._core.definitions.events.Failure: 1 of 3 samples failed "
                                    f"(quarantined): {BAD}: {bad_raw_uri}, line {bad_line}, field FORMAT/MIN_DP: "
                                    f"value 'x1' is not a valid Integer")
    failure = run.get_step_failure_events()[0].event_specific_data.user_failure_data
    assert failure.metadata["failed_samples"].value == [BAD] and failure.metadata["succeeded"].value == 2

    # What the cluster reported for the bad VCF
    outcomes = {outcome.vcf_uri: outcome for outcome in cluster.result.outcomes}
    assert [job.vcf_uri for job in cluster.manifest.jobs if BAD in job.samples] == [bad_raw_uri]
    bad_outcome = outcomes[bad_raw_uri]
    assert not bad_outcome.ok and bad_outcome.report is None and bad_outcome.staged == {}
    assert (bad_outcome.problem.file, bad_outcome.problem.line, bad_outcome.problem.field) == (
        bad_raw_uri, bad_line, "FORMAT/MIN_DP")

    # quarantined, with a reason that names the file and the problem, and a copy of the raw file
    reason = json.loads(store.read_bytes(f"quarantine/{BAD}/reason.json"))
    assert reason["file"] == bad_raw_uri and reason["line"] == bad_line and reason["field"] == "FORMAT/MIN_DP"
    assert "'x1' is not a valid Integer" in reason["problem"]
    assert reason["source_key"] == bad_raw_uri.removeprefix(store.root_uri + "/")
    assert _object(raw_s3, reason["quarantined_copy"]) == bad_vcf.read_bytes()
    record = json.loads(store.read_bytes(f"registry/samples/{BAD}.json"))
    assert record["status"] == "quarantined" and "FORMAT/MIN_DP" in record["reason"]
    assert not store.exists(f"variants/sample_id={BAD}/part-00000.parquet")
    assert not store.exists(f"reference_blocks/sample_id={BAD}/part-00000.parquet")
    messages = [entry.user_message for entry in instance.all_logs(run.run_id)]
    assert any(f"{bad_raw_uri} failed: " in message for message in messages)

    # the good samples are published, byte-identical to what was staged, and their partitions materialized
    events = {"variants": _events(instance, run, "sample_variants"),
              "reference_blocks": _events(instance, run, "sample_reference_blocks")}
    assert set(events["variants"]) == set(events["reference_blocks"]) == set(good)
    for outcome in cluster.result.outcomes:
        if not outcome.ok:
            continue
        (sample_id,) = outcome.staged
        for table in TABLES:
            published = store.read_bytes(f"{table}/sample_id={sample_id}/part-00000.parquet")
            assert hashlib.sha256(published).hexdigest() == outcome.staged[sample_id][table]["sha256"]
        metadata = events["variants"][sample_id]
        assert metadata["sha256"] == outcome.staged[sample_id]["variants"]["sha256"]
        assert metadata["rows"] == outcome.staged[sample_id]["variants"]["rows"] > 0
        assert metadata["uri"] == store.uri(f"variants/sample_id={sample_id}/part-00000.parquet")
        saved = json.loads(store.read_bytes(f"registry/samples/{sample_id}.json"))
        assert (saved["status"], saved["engine"]) == ("converted", "genolake-hail")

    assert _keys(raw_s3, bucket, f"lake/{STAGING_CONVERT_PREFIX}") == []


# -- regressions: bugs this path had ------------------------------------------------------------------------


def test_a_staged_uri_in_the_lake_maps_to_its_key(moto_endpoint, bucket):
    store = S3ObjectStore(bucket, "lake", endpoint_url=moto_endpoint)
    staged = store.uri("staging/convert/b1/vcf0000/variants/sample_id=S1/part-00000.parquet")
    assert publish._lake_key(store, staged) == "staging/convert/b1/vcf0000/variants/sample_id=S1/part-00000.parquet"


def test_the_staging_prefix_is_removed_after_a_job_that_writes_like_the_spark_job(
        hail_on_emr, cluster, instance, raw_s3, bucket, monkeypatch):
    """Tools writing to S3 (pyarrow's create_dir, EMRFS) leave zero-byte folder markers ("…/<batch>/"); the
    cleanup once refused them as unsafe keys, failed the run after publishing and left staging behind."""
    monkeypatch.setenv("STAND_IN_WRITER", "pyarrow")
    keys = _land_and_register(instance, hail_on_emr, [GVCF_DIR / f"{GOOD[0]}.hg38.g.vcf.gz"])
    run = _convert(instance, hail_on_emr, keys)
    batch_folder = cluster.manifest.result_uri.rsplit("/", 1)[0] + "/"
    assert batch_folder in [uri for uri in cluster.staged_objects if uri.endswith("/")]  # as the job leaves on EMR
    batch_prefix = batch_folder.removeprefix(f"s3://{bucket}/")
    assert run.success, _failure_error(run).to_string()
    # (create_dir's marker of the parent staging/convert/ may stay: it is no batch's and holds nothing)
    assert _keys(raw_s3, bucket, batch_prefix) == []


def test_a_partly_failed_batch_describes_each_table_with_its_own_file(
        hail_on_emr, cluster, instance, tmp_path):
    store = hail_on_emr["lake"].store()
    run, _, _ = _convert_with_a_bad_vcf(instance, hail_on_emr, tmp_path, GOOD[:1])
    assert not run.success
    (sample_id,) = _events(instance, run, "sample_reference_blocks")
    blocks = _events(instance, run, "sample_reference_blocks")[sample_id]
    staged = next(outcome.staged[sample_id] for outcome in cluster.result.outcomes if outcome.ok)
    assert blocks["uri"] == store.uri(f"reference_blocks/sample_id={sample_id}/part-00000.parquet")
    assert (blocks["rows"], blocks["sha256"]) == (staged["reference_blocks"]["rows"],
                                                  staged["reference_blocks"]["sha256"])
