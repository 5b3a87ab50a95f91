"""The same sensor and assets on an S3 lake (a real moto server): the aws object store path."""

import dagster as dg
import pyarrow.parquet as pq

from genolake_assets.resources.catalog.duckdb_catalog import DuckDbCatalog
from genolake_assets.resources.conversion.engine import ConverterResource
from genolake_assets.resources.lake.lake import LakeResource
from tests.pipeline.helpers import INGEST_ASSETS, tick


def test_a_vcf_landed_in_s3_is_registered_converted_and_published_to_s3(moto_endpoint, bucket, raw_s3, tmp_path,
                                                                         data_vcf, instance):
    lake = LakeResource(profile="aws", home=str(tmp_path / "home"), s3_bucket=bucket, s3_prefix="lake",
                        endpoint_url=moto_endpoint, region="us-east-1")
    resources = {"lake": lake, "converter": ConverterResource(),
                 "catalog": DuckDbCatalog(database=str(tmp_path / "catalog.duckdb"), lake_root=str(tmp_path / "x"))}
    raw_s3.upload_file(str(data_vcf / "HG00187.hg38.g.vcf.gz"), bucket, "lake/landing/HG00187.hg38.g.vcf.gz")

    result = tick(instance, resources)
    assert [r.partition_key for r in result.run_requests] == ["HG00187"]
    run = dg.materialize(INGEST_ASSETS, partition_key="HG00187", instance=instance, resources=resources)

    assert run.success
    keys = {o["Key"] for o in raw_s3.list_objects_v2(Bucket=bucket, Prefix="lake/")["Contents"]}
    assert "lake/variants/sample_id=HG00187/part-00000.parquet" in keys
    assert any(k.startswith("lake/raw/vcf/") and k.endswith("HG00187.hg38.g.vcf.gz") for k in keys)
    downloaded = tmp_path / "v.parquet"
    raw_s3.download_file(bucket, "lake/variants/sample_id=HG00187/part-00000.parquet", str(downloaded))
    assert pq.read_metadata(downloaded).num_rows == 41
    head = raw_s3.head_object(Bucket=bucket, Key="lake/variants/sample_id=HG00187/part-00000.parquet")
    assert head["ServerSideEncryption"] in ("AES256", "aws:kms")
