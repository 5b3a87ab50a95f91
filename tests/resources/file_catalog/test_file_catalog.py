"""The FileCatalog contract, run against a real SQLite file and a real moto DynamoDB server."""

import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from genolake_assets.resources.file_catalog.dynamodb import DynamoDbFileCatalog
from genolake_assets.resources.file_catalog.file_catalog import FileCatalogConflict, FileCatalogEntry
from genolake_assets.resources.file_catalog.sqlite import SqliteFileCatalog

SHA_A = "a" * 64
SHA_B = "b" * 64


def make_entry(name: str = "NA12878.cram", sha256: str = SHA_A, file_type: str = "cram", **changes) -> FileCatalogEntry:
    key = f"alignments/cram/{sha256[:2]}/{sha256}/{name}"
    values = dict(
        file_uri=f"s3://lake-bucket/{key}",
        file_name=name,
        file_type=file_type,
        size=12_345_678_901,  # over 2**32: a whole-genome CRAM
        sha256=sha256,
        md5="0" * 32,
        created="2026-11-21T08:00:00Z",
        bucket="lake-bucket",
        key=key,
        reference_uri="s3://lake-bucket/references/ff/ce.fa.gz",
        reference_md5="1" * 32,
        source_uri="s3://lake-bucket/raw/bam/cd/NA12878.bam",
        source_sha256="c" * 64,
        content_checksum="d" * 16,
        status="verified",
        details={"ratio": 0.4213, "tool_versions": {"samtools": "1.21", "pysam": "0.23.0"},
                 "timings": {"compress_s": 1.5, "verify_s": 0.25}, "records": 1000},
    )
    values.update(changes)
    return FileCatalogEntry(**values)


@pytest.fixture
def dynamodb_catalog(moto_endpoint) -> DynamoDbFileCatalog:
    catalog = DynamoDbFileCatalog(table_name=f"genolake-files-{uuid.uuid4().hex[:12]}", region="us-east-1",
                                  endpoint_url=moto_endpoint)
    catalog.create_table_if_missing()
    return catalog


@pytest.fixture(params=["sqlite", "dynamodb"])
def catalog(request, tmp_path):
    """Each implementation of the FileCatalog contract, freshly empty."""
    if request.param == "sqlite":
        return SqliteFileCatalog(path=str(tmp_path / "catalog" / "files.sqlite"))
    return request.getfixturevalue("dynamodb_catalog")


# -- the contract ------------------------------------------------------------------------------


def test_put_then_get_round_trips_every_field(catalog):
    entry = make_entry()
    assert catalog.put(entry) is True
    assert catalog.get(entry.file_uri) == entry
    assert catalog.get("s3://lake-bucket/nothing-here.cram") is None


def test_optional_fields_round_trip_as_none(catalog):
    entry = make_entry(file_uri="file:///data/local.bam", file_type="bam", bucket=None, reference_uri=None,
                       reference_md5=None, source_uri=None, source_sha256=None, content_checksum=None, details={})
    assert catalog.put(entry) is True
    assert catalog.get(entry.file_uri) == entry


def test_a_retry_with_the_same_sha256_is_a_no_op(catalog):
    first = make_entry()
    assert catalog.put(first) is True
    retry = dataclasses.replace(first, created="2026-11-22T09:30:00Z", status="archive-ready", details={"ratio": 0.5})
    assert catalog.put(retry) is False
    assert catalog.get(first.file_uri) == first  # created, status and details of the first write survive


def test_a_different_file_under_the_same_uri_is_a_conflict(catalog):
    first = make_entry()
    catalog.put(first)
    with pytest.raises(FileCatalogConflict) as raised:
        catalog.put(make_entry(sha256=SHA_B, file_uri=first.file_uri, size=1))
    message = str(raised.value)
    assert first.file_uri in message and SHA_A in message and SHA_B in message
    assert (raised.value.existing_sha256, raised.value.new_sha256) == (SHA_A, SHA_B)
    assert catalog.get(first.file_uri) == first


def test_set_status_when_the_sha256_matches(catalog):
    entry = make_entry()
    catalog.put(entry)
    catalog.set_status(entry.file_uri, "archive-ready", expected_sha256=SHA_A)
    assert catalog.get(entry.file_uri) == dataclasses.replace(entry, status="archive-ready")


def test_set_status_refuses_another_sha256(catalog):
    entry = make_entry()
    catalog.put(entry)
    with pytest.raises(FileCatalogConflict) as raised:
        catalog.set_status(entry.file_uri, "archive-ready", expected_sha256=SHA_B)
    assert SHA_A in str(raised.value) and SHA_B in str(raised.value)
    assert catalog.get(entry.file_uri) == entry


def test_set_status_of_a_missing_entry_raises_key_error_and_creates_nothing(catalog):
    with pytest.raises(KeyError):
        catalog.set_status("s3://lake-bucket/missing.cram", "archive-ready", expected_sha256=SHA_A)
    assert catalog.get("s3://lake-bucket/missing.cram") is None
    assert catalog.entries() == []


def test_entries_filter_by_type_and_sort_by_uri(catalog):
    cram_z = make_entry("z.cram", sha256="9" * 64)
    cram_a = make_entry("a.cram", sha256="1" * 64)
    bam = make_entry("m.bam", sha256="5" * 64, file_type="bam")
    fasta = make_entry("ce.fa.gz", sha256="7" * 64, file_type="fasta")
    for entry in (cram_z, bam, fasta, cram_a):
        catalog.put(entry)
    assert catalog.entries() == sorted([cram_z, cram_a, bam, fasta], key=lambda e: e.file_uri)
    assert catalog.entries("cram") == sorted([cram_a, cram_z], key=lambda e: e.file_uri)
    assert catalog.entries("bam") == [bam]
    assert catalog.entries("fasta") == [fasta]


def test_concurrent_puts_of_different_files_under_one_uri_leave_exactly_one_winner(catalog):
    uri = "s3://lake-bucket/alignments/cram/race.cram"
    candidates = [make_entry(file_uri=uri, sha256=f"{i:x}" * 64) for i in range(8)]

    def attempt(entry: FileCatalogEntry) -> str:
        try:
            return "written" if catalog.put(entry) else "retry"
        except FileCatalogConflict:
            return "conflict"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, candidates))
    assert sorted(outcomes) == ["conflict"] * 7 + ["written"]
    assert catalog.get(uri) == candidates[outcomes.index("written")]


def test_describe_names_the_backend(catalog):
    assert catalog.describe().split(":", 1)[0] in {"sqlite", "dynamodb"}


def test_entries_reject_unknown_file_types():
    with pytest.raises(ValueError, match="file_type"):
        make_entry(file_type="vcf")


# -- SQLite --------------------------------------------------------------------------------------


def test_two_sqlite_catalogs_on_one_file_see_each_others_writes(tmp_path):
    path = str(tmp_path / "files.sqlite")
    first, second = SqliteFileCatalog(path=path), SqliteFileCatalog(path=path)
    entry = make_entry()
    assert first.put(entry) is True
    assert second.get(entry.file_uri) == entry
    assert second.put(entry) is False
    with pytest.raises(FileCatalogConflict):
        second.put(make_entry(sha256=SHA_B, file_uri=entry.file_uri))
    second.set_status(entry.file_uri, "archive-ready", SHA_A)
    assert first.get(entry.file_uri).status == "archive-ready"
    assert first.describe() == f"sqlite:///{tmp_path.resolve() / 'files.sqlite'}"


# -- DynamoDB ------------------------------------------------------------------------------------


@pytest.fixture
def api_calls(dynamodb_catalog) -> list[str]:
    calls: list[str] = []
    dynamodb_catalog._dynamodb().meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def test_a_dynamodb_retry_is_one_conditional_put_not_read_then_write(dynamodb_catalog, api_calls):
    entry = make_entry()
    assert dynamodb_catalog.put(entry) is True
    assert dynamodb_catalog.put(entry) is False
    with pytest.raises(FileCatalogConflict):
        dynamodb_catalog.put(make_entry(sha256=SHA_B, file_uri=entry.file_uri))
    # The condition check returns the stored item (ALL_OLD), so no GetItem is needed to decide.
    assert api_calls == ["PutItem", "PutItem", "PutItem"]


def test_dynamodb_item_holds_no_floats_and_details_as_json(dynamodb_catalog):
    entry = make_entry()
    dynamodb_catalog.put(entry)
    item = dynamodb_catalog._dynamodb().get_item(TableName=dynamodb_catalog.table_name,
                                                 Key={"file_uri": {"S": entry.file_uri}})["Item"]
    assert item["size"] == {"N": "12345678901"}
    assert "S" in item["details"] and '"ratio": 0.4213' in item["details"]["S"]
    assert FileCatalogEntry.from_item(item) == entry


def test_create_table_is_idempotent_and_encrypted(dynamodb_catalog):
    dynamodb_catalog.create_table_if_missing()
    table = dynamodb_catalog._dynamodb().describe_table(TableName=dynamodb_catalog.table_name)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "file_uri", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert dynamodb_catalog.describe() == f"dynamodb://{dynamodb_catalog.table_name}"


def test_dynamodb_entries_page_through_the_scan(dynamodb_catalog):
    # Real pages end at 1 MB; a Limit of 10 items per page makes 25 entries span three pages.
    for i in range(25):
        dynamodb_catalog.put(make_entry(f"f{i:02d}.cram", sha256=f"{i:02x}" * 32))
    calls: list[str] = []
    client = dynamodb_catalog._dynamodb()

    def small_pages(params, **_):
        calls.append("Scan")
        params["Limit"] = 10

    client.meta.events.register("provide-client-params.dynamodb.Scan", small_pages)
    found = dynamodb_catalog.entries("cram")
    assert [e.file_name for e in found] == [f"f{i:02d}.cram" for i in range(25)]
    assert len(calls) >= 3
