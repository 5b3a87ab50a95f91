"""The alignment assets in the aws profile on a moto server: S3 lake, AWS Batch, DynamoDB file catalog.

moto's Batch never runs a container (jobs "succeed" at once without Docker). The one thing this test
stands in for is the container runtime: when the production runner submits the job, a botocore hook
runs the image's ENTRYPOINT with the submitted command against moto S3, as Batch would. Everything
else (the assets, the runner's submit/poll/result path, the S3 store, DynamoDB conditional puts,
the lifecycle rules) is the production code.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest

from genolake_assets.assets.alignments import alignment_file_catalog, compressed_bam, raw_bam, reference_genomes
from genolake_assets.assets.alignments import lake_lifecycle_policy
from genolake_assets.lib.alignments.registry import load_alignment
from genolake_assets.resources.compression import batch as compression_batch
from genolake_assets.resources.compression.batch import AwsBatchCompressionRunner
from genolake_assets.resources.file_catalog.dynamodb import DynamoDbFileCatalog
from genolake_assets.resources.lake.s3_store import aws_client
from genolake_assets.sensors.alignments import alignment_landing_sensor
from tests.moto_api import create_batch_queue

DATA_BAM = Path(__file__).resolve().parents[1] / "data" / "bam"
COMPRESS_ASSETS = [raw_bam, compressed_bam, alignment_file_catalog]


@pytest.fixture(scope="module")
def batch_environment(moto_endpoint):
    return create_batch_queue(moto_endpoint)


@pytest.fixture
def aws_alignment_resources(aws_resources, batch_environment, moto_endpoint, monkeypatch):
    containers: list[subprocess.CompletedProcess] = []
    batch = aws_client("batch", endpoint_url=moto_endpoint, region_name="us-east-1")

    def run_container(params, **_):
        # Be the Batch compute environment: the image's ENTRYPOINT with the submitted command.
        command = params["containerOverrides"]["command"]
        containers.append(subprocess.run([sys.executable, "-m", "genolake_assets.programs.bam_compress", *command],
                                         env={**os.environ, "AWS_ENDPOINT_URL": moto_endpoint},
                                         capture_output=True, text=True, timeout=600))

    batch.meta.events.register("before-parameter-build.batch.SubmitJob", run_container)
    # Dagster rebuilds resources from their config for each run, so hand the hooked client to the
    # runner through its client factory.
    factory = compression_batch.aws_client
    monkeypatch.setattr(compression_batch, "aws_client",
                        lambda service, **kwargs: batch if service == "batch" else factory(service, **kwargs))
    runner = AwsBatchCompressionRunner(job_queue=batch_environment["queue"], job_definition=batch_environment["definition"],
                                       region="us-east-1", endpoint_url=moto_endpoint, poll_interval_seconds=0.05)
    catalog = DynamoDbFileCatalog(table_name=f"genolake-files-{uuid.uuid4().hex[:8]}", region="us-east-1",
                                  endpoint_url=moto_endpoint)
    catalog.create_table_if_missing()
    resources = {**aws_resources, "compression_runner": runner, "file_catalog": catalog}
    resources["containers"] = containers
    return resources


def _dagster_resources(resources: dict) -> dict:
    return {key: value for key, value in resources.items() if key != "containers"}


def _land(store, instance, resources, *names: str) -> None:
    for name in names:
        store.upload(DATA_BAM / name, f"landing/{name}")
    for suffix in ("", ".fai", ".gzi"):
        store.upload(DATA_BAM / "ref" / f"q.fa.gz{suffix}", f"landing/references/q.fa.gz{suffix}")
    context = dg.build_sensor_context(instance=instance, resources={"lake": resources["lake"]})
    for request in alignment_landing_sensor(context).dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_a_bam_in_s3_is_compressed_on_batch_catalogued_in_dynamodb_and_tagged(
        aws_alignment_resources, instance, raw_s3, bucket):
    resources = aws_alignment_resources
    store = resources["lake"].store()
    _land(store, instance, resources, "NA12878.chr22.tiny.bam")

    result = dg.materialize([reference_genomes, *COMPRESS_ASSETS], partition_key="NA12878.chr22.tiny",
                            selection=COMPRESS_ASSETS, instance=instance, resources=_dagster_resources(resources))

    assert result.success
    (container,) = resources["containers"]
    assert container.returncode == 0, container.stderr
    record = load_alignment(store, "NA12878.chr22.tiny")
    assert record.status == "archive-tagged"
    cram = raw_s3.head_object(Bucket=bucket, Key=f"lake/{record.cram_key}")
    assert cram["ServerSideEncryption"] in ("AES256", "aws:kms")
    tags = {t["Key"]: t["Value"] for t in raw_s3.get_object_tagging(Bucket=bucket, Key=f"lake/{record.raw_key}")["TagSet"]}
    assert tags == {"genolake-archive": "verified", "genolake-cram": record.cram_key}
    entries = {entry.file_type: entry for entry in resources["file_catalog"].entries()}
    assert entries["cram"].file_uri == f"s3://{bucket}/lake/{record.cram_key}"
    assert entries["cram"].bucket == bucket and entries["cram"].size == cram["ContentLength"]
    assert entries["cram"].source_sha256 == entries["bam"].sha256 == record.sha256
    assert entries["bam"].status == "archive-tagged"


def test_a_truncated_bam_in_s3_never_reaches_batch(aws_alignment_resources, instance, raw_s3, bucket, tmp_path):
    resources = aws_alignment_resources
    store = resources["lake"].store()
    cut = tmp_path / "cut.bam"
    cut.write_bytes((DATA_BAM / "NA12878.chr22.tiny.bam").read_bytes()[:100_000])
    store.upload(cut, "landing/cut.bam")
    _land(store, instance, resources)

    result = dg.materialize(COMPRESS_ASSETS, partition_key="cut", instance=instance,
                            resources=_dagster_resources(resources), raise_on_error=False)

    assert not result.success
    assert resources["containers"] == []
    assert load_alignment(store, "cut").status == "quarantined"
    assert resources["file_catalog"].entries() == []


def test_the_lifecycle_rules_are_applied_to_the_lake_bucket(aws_alignment_resources, instance, raw_s3, bucket):
    result = dg.materialize([lake_lifecycle_policy], instance=instance,
                            resources=_dagster_resources(aws_alignment_resources))

    assert result.success
    rules = {rule["ID"]: rule for rule in raw_s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    archive = rules["genolake-archive-verified-bam"]
    assert archive["Filter"]["And"]["Prefix"] == "lake/raw/bam/"
    assert archive["Filter"]["And"]["Tags"] == [{"Key": "genolake-archive", "Value": "verified"}]
    assert archive["Transitions"][0]["StorageClass"] == "DEEP_ARCHIVE"
