"""GlueCatalog against a real moto server: tables and partitions from real converted gVCFs.

Each test gets its own bucket and Glue database. API calls are counted with botocore event hooks
on the catalog's own clients, so the counts are of requests really sent to the server.
"""

from __future__ import annotations

import io
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.catalog.glue_catalog import (
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    GlueCatalog,
    glue_type,
)
from genolake_assets.resources.lake.s3_store import S3ObjectStore, aws_client
from tests.conftest import DATA_VCF

LAKE_PREFIX = "lake/v1"
GVCF_SAMPLES = ("HG00187", "HG00190", "NA12249")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """The lake layout of three real gVCFs, converted once for the module."""
    root = tmp_path_factory.mktemp("converted")
    for sample in GVCF_SAMPLES:
        convert_vcf(DATA_VCF / f"{sample}.hg38.g.vcf.gz", root)
    return root


@pytest.fixture
def lake(moto_endpoint, bucket) -> S3ObjectStore:
    return S3ObjectStore(bucket, LAKE_PREFIX, endpoint_url=moto_endpoint)


@pytest.fixture
def glue(moto_endpoint):
    return aws_client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def catalog(moto_endpoint, bucket) -> GlueCatalog:
    return GlueCatalog(database=f"genolake_{uuid.uuid4().hex[:10]}", s3_bucket=bucket, s3_prefix=LAKE_PREFIX,
                       region="us-east-1", endpoint_url=moto_endpoint)


@pytest.fixture
def api_calls(catalog) -> Counter:
    """Requests the catalog sends, by operation name (Glue and S3)."""
    calls: Counter = Counter()

    def record(model, **_):
        calls[model.name] += 1

    catalog._glue().meta.events.register("before-call.glue", record)
    catalog._lake().client.meta.events.register("before-call.s3", record)
    return calls


def upload_samples(lake: S3ObjectStore, converted: Path, table: str = "variants", samples=GVCF_SAMPLES) -> dict:
    """Upload converted partitions; returns sample → Parquet footer row count."""
    rows = {}
    for sample in samples:
        local = converted / table / f"sample_id={sample}" / "part-00000.parquet"
        lake.upload(local, f"{table}/sample_id={sample}/part-00000.parquet")
        rows[sample] = pq.read_metadata(local).num_rows
    return rows


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def put_parquet(lake: S3ObjectStore, key: str, table: pa.Table) -> None:
    lake.write_bytes(key, parquet_bytes(table))


def variant_file(converted: Path, sample: str) -> pa.Table:
    return pq.read_table(converted / "variants" / f"sample_id={sample}" / "part-00000.parquet")


def all_partitions(glue, catalog: GlueCatalog, table: str, expression: str | None = None) -> list[dict]:
    arguments = {"DatabaseName": catalog.database, "TableName": table}
    if expression:
        arguments["Expression"] = expression
    pages = glue.get_paginator("get_partitions").paginate(**arguments)
    return [p for page in pages for p in page["Partitions"]]


def glue_table(glue, catalog: GlueCatalog, name: str) -> dict:
    return glue.get_table(DatabaseName=catalog.database, Name=name)["Table"]


# -- per-sample tables ------------------------------------------------------------------------


def test_real_gvcfs_become_a_parquet_table_partitioned_by_sample(catalog, lake, glue, converted, bucket):
    rows = upload_samples(lake, converted)

    registration = catalog.register_table("variants", "variants")

    table = glue_table(glue, catalog, "variants")
    descriptor = table["StorageDescriptor"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"]["classification"] == "parquet"
    assert descriptor["Location"] == f"s3://{bucket}/{LAKE_PREFIX}/variants/"
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert (descriptor["InputFormat"], descriptor["OutputFormat"]) == (PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT)
    assert table["PartitionKeys"] == [{"Name": "sample_id", "Type": "string"}]
    data_columns = {c["Name"]: c["Type"] for c in descriptor["Columns"]}
    assert "sample_id" not in data_columns  # Athena rejects a column that is also a partition key
    assert data_columns["pos"] == "int"
    assert data_columns["qual"] == "double"
    assert data_columns["allele_index"] == "smallint"
    assert data_columns["was_split"] == "boolean"
    assert data_columns["filters"] == "array<string>"
    assert data_columns["gt"] == "array<smallint>"
    assert data_columns["fmt_pl"] == "array<int>"
    assert registration.files == 3
    assert registration.rows == sum(rows.values())
    assert registration.location == descriptor["Location"]
    assert dict(registration.columns) == catalog.table_columns("variants")


def test_partitions_are_really_in_glue_and_answer_partition_expressions(catalog, lake, glue, converted, bucket):
    rows = upload_samples(lake, converted)

    catalog.register_table("variants", "variants")

    [one] = all_partitions(glue, catalog, "variants", "sample_id = 'HG00190'")
    assert one["Values"] == ["HG00190"]
    assert one["StorageDescriptor"]["Location"] == f"s3://{bucket}/{LAKE_PREFIX}/variants/sample_id=HG00190/"
    assert one["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert one["Parameters"]["genolake.rows"] == str(rows["HG00190"])
    two = all_partitions(glue, catalog, "variants", "sample_id IN ('HG00187', 'NA12249')")
    assert sorted(p["Values"][0] for p in two) == ["HG00187", "NA12249"]
    assert len(all_partitions(glue, catalog, "variants")) == 3


def test_partitions_are_created_in_batches_of_the_configured_size(catalog, lake, glue, api_calls):
    small = pa.table({"sample_id": ["x"], "contig": ["chr1"], "pos": pa.array([1], pa.int32())})
    data = parquet_bytes(small)
    samples = [f"S{i:04d}" for i in range(250)]
    for sample in samples:
        lake.write_bytes(f"variants/sample_id={sample}/part-00000.parquet", data)

    registration = catalog.register_table("variants", "variants")

    assert api_calls["BatchCreatePartition"] == 3  # 100 + 100 + 50
    assert api_calls["GetObject"] == 250  # one ranged read per footer
    assert registration.files == 250 and registration.rows == 250
    assert sorted(p["Values"][0] for p in all_partitions(glue, catalog, "variants")) == samples


def test_registering_again_writes_nothing_and_reads_no_footer(catalog, lake, converted, api_calls):
    rows = upload_samples(lake, converted)
    first = catalog.register_table("variants", "variants")
    api_calls.clear()

    again = catalog.register_table("variants", "variants")

    writes = {"CreateTable", "UpdateTable", "BatchCreatePartition", "BatchUpdatePartition", "GetObject"}
    assert not writes & set(api_calls), api_calls
    assert again == first
    assert again.rows == sum(rows.values())


def test_a_new_sample_adds_its_partition_and_only_its_footer_is_read(catalog, lake, converted, api_calls):
    first_rows = upload_samples(lake, converted, samples=GVCF_SAMPLES[:2])
    catalog.register_table("variants", "variants")
    api_calls.clear()

    new_rows = upload_samples(lake, converted, samples=GVCF_SAMPLES[2:])
    registration = catalog.register_table("variants", "variants")

    assert api_calls["GetObject"] == 1
    assert api_calls["BatchCreatePartition"] == 1
    assert api_calls["UpdateTable"] == 0  # the three gVCFs declare the same INFO/FORMAT keys
    assert registration.files == 3
    assert registration.rows == sum(first_rows.values()) + sum(new_rows.values())


def test_a_rematerialised_sample_replaces_its_row_count(catalog, lake, glue, converted, api_calls):
    rows = upload_samples(lake, converted)
    catalog.register_table("variants", "variants")
    api_calls.clear()

    fewer = variant_file(converted, "HG00187").slice(0, 5)
    put_parquet(lake, "variants/sample_id=HG00187/part-00000.parquet", fewer)
    registration = catalog.register_table("variants", "variants")

    assert registration.rows == sum(rows.values()) - rows["HG00187"] + 5
    assert registration.files == 3
    assert api_calls["BatchUpdatePartition"] == 1 and api_calls["BatchCreatePartition"] == 0
    [partition] = all_partitions(glue, catalog, "variants", "sample_id = 'HG00187'")
    assert partition["Parameters"]["genolake.rows"] == "5"


def test_a_new_column_is_appended_and_old_partitions_are_left_alone(catalog, lake, glue, converted, api_calls):
    upload_samples(lake, converted, samples=["HG00187"])
    catalog.register_table("variants", "variants")
    columns_before = catalog.table_columns("variants")
    [old_partition] = all_partitions(glue, catalog, "variants")
    api_calls.clear()

    drifted = variant_file(converted, "HG00190")
    drifted = drifted.append_column("info_new_key", pa.array([[1.5]] * drifted.num_rows, pa.list_(pa.float32())))
    put_parquet(lake, "variants/sample_id=HG00190/part-00000.parquet", drifted)
    registration = catalog.register_table("variants", "variants")

    columns = catalog.table_columns("variants")
    assert columns == {**{k: v for k, v in columns_before.items() if k != "sample_id"},
                       "info_new_key": "array<float>", "sample_id": "string"}
    assert list(columns)[-2:] == ["info_new_key", "sample_id"]  # appended; the partition key stays last
    assert api_calls["UpdateTable"] == 1 and api_calls["BatchUpdatePartition"] == 0
    [unchanged] = all_partitions(glue, catalog, "variants", "sample_id = 'HG00187'")
    assert unchanged["StorageDescriptor"] == old_partition["StorageDescriptor"]
    assert unchanged["Parameters"] == old_partition["Parameters"]
    [new] = all_partitions(glue, catalog, "variants", "sample_id = 'HG00190'")
    assert {"Name": "info_new_key", "Type": "array<float>"} in new["StorageDescriptor"]["Columns"]
    assert registration.rows == pq.read_metadata(
        converted / "variants" / "sample_id=HG00187" / "part-00000.parquet").num_rows + drifted.num_rows


def test_a_type_conflict_names_table_column_types_and_sample_and_registers_the_rest(catalog, lake, glue, converted):
    upload_samples(lake, converted, samples=["HG00187"])
    catalog.register_table("variants", "variants")
    columns_before = catalog.table_columns("variants")

    clashing = variant_file(converted, "HG00190")
    position = clashing.schema.get_field_index("info_dp")
    clashing = clashing.set_column(position, "info_dp", pa.compute.cast(clashing["info_dp"], pa.string()))
    put_parquet(lake, "variants/sample_id=HG00190/part-00000.parquet", clashing)
    upload_samples(lake, converted, samples=["NA12249"])

    with pytest.raises(ValueError) as raised:
        catalog.register_table("variants", "variants")

    message = str(raised.value)
    for part in ("variants", "info_dp", "int", "string", "sample_id=HG00190"):
        assert part in message
    assert catalog.table_columns("variants") == columns_before  # never retyped
    assert sorted(p["Values"][0] for p in all_partitions(glue, catalog, "variants")) == ["HG00187", "NA12249"]


def test_a_partition_error_reported_by_glue_is_raised(catalog, lake, converted):
    upload_samples(lake, converted)

    def fail_one(parsed, **_):
        parsed.setdefault("Errors", []).append({
            "PartitionValues": ["HG00190"],
            "ErrorDetail": {"ErrorCode": "InternalServiceException", "ErrorMessage": "try again"}})

    catalog._glue().meta.events.register("after-call.glue.BatchCreatePartition", fail_one)

    with pytest.raises(RuntimeError, match=r"HG00190.*InternalServiceException"):
        catalog.register_table("variants", "variants")


def test_an_empty_prefix_registers_nothing(catalog):
    registration = catalog.register_table("variants", "variants")

    assert (registration.files, registration.rows, registration.columns) == (0, 0, [])
    assert catalog.table_columns("variants") is None


def test_partition_batch_size_above_glues_limit_is_refused(catalog, lake, converted):
    upload_samples(lake, converted, samples=["HG00187"])
    too_big = catalog.model_copy(update={"partition_batch_size": 101})

    with pytest.raises(ValueError, match="partition_batch_size"):
        too_big.register_table("variants", "variants")


# -- single-file and snapshot tables ----------------------------------------------------------


def test_the_samples_file_becomes_an_unpartitioned_table_over_its_folder(catalog, lake, glue, bucket):
    samples = pa.table({"sample_id": ["HG00187", "HG00190"], "size_bytes": pa.array([37687, 37209], pa.int64()),
                        "conversion_seconds": [0.1, 0.2], "status": ["converted", "quarantined"]})
    put_parquet(lake, "samples/part-00000.parquet", samples)

    registration = catalog.register_file_table("samples", "samples/part-00000.parquet")

    table = glue_table(glue, catalog, "samples")
    assert table["PartitionKeys"] == []
    assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/{LAKE_PREFIX}/samples/"
    assert catalog.table_columns("samples") == {"sample_id": "string", "size_bytes": "bigint",
                                                "conversion_seconds": "double", "status": "string"}
    assert (registration.files, registration.rows) == (1, 2)


def clinvar_part(assembly: str, chromosome: str, extra: bool = False) -> pa.Table:
    columns = {"variation_id": pa.array([15041, 15042], pa.int64()), "clinicalsignificance": ["drug response"] * 2,
               "assembly": [assembly] * 2, "chromosome": [chromosome] * 2}
    if extra:
        columns["review_stars"] = pa.array([2, 3], pa.int8())
    return pa.table(columns)


def put_snapshot(lake: S3ObjectStore, snapshot: str, parts: list[tuple[str, str]], extra: bool = False) -> str:
    prefix = f"clinvar_variants/snapshot={snapshot}"
    for assembly, chromosome in parts:
        put_parquet(lake, f"{prefix}/assembly={assembly}/chromosome={chromosome}/part-00000.parquet",
                    clinvar_part(assembly, chromosome, extra))
    return prefix


def test_a_snapshot_table_uses_partition_projection(catalog, lake, glue, bucket):
    prefix = put_snapshot(lake, "2026-11-01", [("GRCh37", "1"), ("GRCh38", "1"), ("GRCh38", "X")])

    registration = catalog.register_snapshot("clinvar", prefix, ["assembly", "chromosome"])

    table = glue_table(glue, catalog, "clinvar")
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.assembly.type"] == "enum"
    assert parameters["projection.assembly.values"] == "GRCh37,GRCh38"
    assert parameters["projection.chromosome.values"] == "1,X"
    assert parameters["storage.location.template"] == (
        f"s3://{bucket}/{LAKE_PREFIX}/{prefix}/assembly=${{assembly}}/chromosome=${{chromosome}}/")
    assert table["PartitionKeys"] == [{"Name": "assembly", "Type": "string"}, {"Name": "chromosome", "Type": "string"}]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["variation_id", "clinicalsignificance"]
    assert (registration.files, registration.rows) == (3, 6)


def test_a_new_snapshot_is_flipped_in_with_one_update_call(catalog, lake, glue, bucket, api_calls):
    first = put_snapshot(lake, "2026-11-01", [("GRCh37", "1"), ("GRCh38", "1")])
    catalog.register_snapshot("clinvar", first, ["assembly", "chromosome"])
    api_calls.clear()

    second = put_snapshot(lake, "2026-11-08", [("GRCh38", "1"), ("GRCh38", "2"), ("GRCh38", "MT")], extra=True)
    catalog.register_snapshot("clinvar", second, ["assembly", "chromosome"])

    assert api_calls["UpdateTable"] == 1
    assert not {"CreateTable", "BatchCreatePartition", "DeleteTable"} & set(api_calls)
    parameters = glue_table(glue, catalog, "clinvar")["Parameters"]
    assert parameters["storage.location.template"].startswith(f"s3://{bucket}/{LAKE_PREFIX}/{second}/")
    assert parameters["projection.assembly.values"] == "GRCh38"
    assert parameters["projection.chromosome.values"] == "1,2,MT"
    assert catalog.table_columns("clinvar") == {"variation_id": "bigint", "clinicalsignificance": "string",
                                                "review_stars": "tinyint", "assembly": "string",
                                                "chromosome": "string"}


def test_an_empty_snapshot_is_refused_and_the_table_keeps_the_old_one(catalog, lake, glue):
    first = put_snapshot(lake, "2026-11-01", [("GRCh38", "1")])
    catalog.register_snapshot("clinvar", first, ["assembly", "chromosome"])
    before = glue_table(glue, catalog, "clinvar")["Parameters"]

    with pytest.raises(FileNotFoundError, match="no Parquet files"):
        catalog.register_snapshot("clinvar", "clinvar_variants/snapshot=2026-11-08", ["assembly", "chromosome"])

    assert glue_table(glue, catalog, "clinvar")["Parameters"] == before


# -- columns and types ------------------------------------------------------------------------


def test_table_columns_is_none_without_database_or_table(catalog, lake, converted):
    assert catalog.table_columns("variants") is None  # no database yet
    upload_samples(lake, converted, samples=["HG00187"])
    catalog.register_table("variants", "variants")

    assert catalog.table_columns("reference_blocks") is None
    assert catalog.table_columns("variants")["sample_id"] == "string"


@pytest.mark.parametrize("arrow_type, expected", [
    (pa.int8(), "tinyint"), (pa.int16(), "smallint"), (pa.int32(), "int"), (pa.int64(), "bigint"),
    (pa.uint8(), "smallint"), (pa.uint16(), "int"), (pa.uint32(), "bigint"),
    (pa.float32(), "float"), (pa.float64(), "double"), (pa.bool_(), "boolean"),
    (pa.string(), "string"), (pa.large_string(), "string"), (pa.binary(), "binary"), (pa.date32(), "date"),
    (pa.timestamp("us"), "timestamp"), (pa.timestamp("ms", tz="UTC"), "timestamp"),
    (pa.decimal128(12, 3), "decimal(12,3)"),
    (pa.list_(pa.int16()), "array<smallint>"), (pa.large_list(pa.string()), "array<string>"),
    (pa.struct([("allele", pa.int16()), ("phased", pa.bool_())]), "struct<allele:smallint,phased:boolean>"),
    (pa.map_(pa.string(), pa.list_(pa.float64())), "map<string,array<double>>"),
    (pa.dictionary(pa.int32(), pa.string()), "string"),
])
def test_arrow_types_map_to_glue_types(catalog, arrow_type, expected):
    assert glue_type(arrow_type) == expected
    assert catalog.sql_type_of(pa.schema([("c", arrow_type)])) == {"c": expected}


@pytest.mark.parametrize("arrow_type", [pa.uint64(), pa.float16(), pa.duration("s"), pa.time32("s"), pa.null(),
                                        pa.decimal256(50, 2)])
def test_arrow_types_without_a_glue_type_are_refused(arrow_type):
    with pytest.raises(ValueError, match="Glue"):
        glue_type(arrow_type)


def test_nested_and_dictionary_columns_from_a_real_file_get_glue_types(catalog, lake):
    table = pa.table({
        "sample_id": ["a", "a"],
        "genotype": pa.array([{"allele": 0, "phased": True}, {"allele": 1, "phased": False}],
                             pa.struct([("allele", pa.int16()), ("phased", pa.bool_())])),
        "annotations": pa.array([[("gene", "CYP2C19")], []], pa.map_(pa.string(), pa.string())),
        "filter": pa.array(["PASS", "PASS"]).dictionary_encode(),
        "af": pa.array([Decimal("0.125"), None], pa.decimal128(6, 3)),
    })
    put_parquet(lake, "annotated/sample_id=a/part-00000.parquet", table)

    catalog.register_table("annotated", "annotated")

    assert catalog.table_columns("annotated") == {
        "genotype": "struct<allele:smallint,phased:boolean>", "annotations": "map<string,string>",
        "filter": "string", "af": "decimal(6,3)", "sample_id": "string"}


# -- the asset, through the aws profile's resources -------------------------------------------


def test_the_variants_table_asset_registers_glue_partitions_with_the_aws_profile(
        moto_endpoint, bucket, converted, glue, tmp_path):
    from genolake_assets.assets.variants import variants_table
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.settings import Settings

    database = f"genolake_{uuid.uuid4().hex[:10]}"
    settings = Settings(profile="aws", home=tmp_path / "home", s3_bucket=bucket, s3_prefix=LAKE_PREFIX,
                        endpoint_url=moto_endpoint, region="us-east-1", kms_key_id=None, glue_database=database)
    resources = build_resources(settings)
    rows = upload_samples(resources["lake"].store(), converted)

    result = dg.materialize([variants_table], resources=resources)

    assert result.success
    metadata = result.asset_materializations_for_node("variants_table")[0].metadata
    assert metadata["rows"].value == sum(rows.values())
    assert metadata["partitions"].value == 3
    partitions = glue.get_partitions(DatabaseName=database, TableName="variants")["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == sorted(GVCF_SAMPLES)
