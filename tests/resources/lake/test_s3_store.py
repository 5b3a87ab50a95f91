"""S3ObjectStore against a real moto server, and the ObjectStore contract for every store.

The contract tests take the parametrized ``store`` fixture (local directory, S3, S3 under a
prefix), so both implementations are held to the same behaviour: the local store
must honour every rule the S3 store does.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from genolake_assets.lib.lake.identifiers import InvalidIdentifierError
from genolake_assets.resources.lake.s3_store import S3ObjectStore, aws_client, s3_client

UNSAFE_KEYS = ["../x", "/abs", "a//b"]


def keys_of(objects) -> list[str]:
    return [obj.key for obj in objects]


def write_file(path, data: bytes):
    path.write_bytes(data)
    return path


# -- the ObjectStore contract ---------------------------------------------------------------


def test_write_bytes_then_read_bytes_returns_the_same_bytes(store):
    data = bytes(range(256)) * 10

    stored = store.write_bytes("raw/vcf/sample.vcf.gz", data)

    assert store.read_bytes("raw/vcf/sample.vcf.gz") == data
    assert stored.key == "raw/vcf/sample.vcf.gz"
    assert stored.size == len(data)
    assert abs(stored.last_modified - time.time()) < 60
    assert store.head("raw/vcf/sample.vcf.gz") == stored


def test_upload_then_download_round_trips_a_file(store, tmp_path):
    data = os.urandom(300_000)
    src = write_file(tmp_path / "src.bin", data)

    stored = store.upload(src, "raw/bam/s1.bam")
    dest = store.download("raw/bam/s1.bam", tmp_path / "out" / "nested" / "s1.bam")

    assert dest == tmp_path / "out" / "nested" / "s1.bam"
    assert dest.read_bytes() == data
    assert stored.size == len(data)
    assert store.head("raw/bam/s1.bam").etag == stored.etag


def test_open_read_streams_in_parts_and_is_a_context_manager(store):
    store.write_bytes("a/stream.txt", b"0123456789")

    with store.open_read("a/stream.txt") as handle:
        first = handle.read(4)
        rest = handle.read()

    assert (first, rest) == (b"0123", b"456789")
    assert handle.closed


def test_head_of_a_missing_key_is_none(store):
    store.write_bytes("a/present.txt", b"x")

    assert store.head("a/missing.txt") is None
    assert store.head("no/such/folder.txt") is None
    assert not store.exists("a/missing.txt")
    assert store.exists("a/present.txt")


def test_reading_a_missing_key_raises_file_not_found(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.open_read("a/missing.txt")
    with pytest.raises(FileNotFoundError):
        store.download("a/missing.txt", tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError):
        store.copy("a/missing.txt", "b/copy.txt")
    assert not (tmp_path / "missing.txt").exists()
    assert store.head("b/copy.txt") is None


def test_list_objects_gives_relative_keys_in_key_order_under_the_folder(store):
    for key in ["b/2.txt", "a/z.txt", "a/sub/1.txt", "a/b.txt", "ab/x.txt", "top.txt"]:
        store.write_bytes(key, key.encode())

    listed = list(store.list_objects("a/"))

    assert keys_of(listed) == ["a/b.txt", "a/sub/1.txt", "a/z.txt"]
    assert [obj.size for obj in listed] == [len(b"a/b.txt"), len(b"a/sub/1.txt"), len(b"a/z.txt")]
    assert listed == [store.head(obj.key) for obj in listed]
    assert keys_of(store.list_objects("")) == ["a/b.txt", "a/sub/1.txt", "a/z.txt", "ab/x.txt", "b/2.txt", "top.txt"]


def test_list_objects_treats_a_prefix_without_slash_as_a_folder(store):
    store.write_bytes("a/1.txt", b"1")
    store.write_bytes("ab/2.txt", b"2")

    assert keys_of(store.list_objects("a")) == ["a/1.txt"]
    assert keys_of(store.list_objects("a/sub/")) == []
    assert keys_of(store.list_objects("nothing/")) == []


def test_list_objects_hides_keys_with_a_dot_segment(store):
    store.write_bytes("a/visible.txt", b"v")
    store.write_bytes("a/.in-flight", b"h")
    store.write_bytes("a/.staging/part.txt", b"h")

    assert keys_of(store.list_objects("a/")) == ["a/visible.txt"]


def test_overwrite_replaces_the_object(store):
    store.write_bytes("a/obj.txt", b"first version")
    first = store.head("a/obj.txt")
    time.sleep(0.01)

    second = store.write_bytes("a/obj.txt", b"second, longer version")

    assert store.read_bytes("a/obj.txt") == b"second, longer version"
    assert second.size == len(b"second, longer version")
    assert second.etag != first.etag
    assert keys_of(store.list_objects("a/")) == ["a/obj.txt"]


def test_upload_over_an_existing_object_replaces_it(store, tmp_path):
    store.write_bytes("a/obj.bin", b"old" * 1000)

    store.upload(write_file(tmp_path / "new.bin", b"new"), "a/obj.bin")

    assert store.read_bytes("a/obj.bin") == b"new"
    assert keys_of(store.list_objects("a/")) == ["a/obj.bin"]


def test_delete_removes_the_object_and_ignores_a_missing_one(store):
    store.write_bytes("a/doomed.txt", b"x")
    store.write_bytes("a/kept.txt", b"y")

    store.delete("a/doomed.txt")
    store.delete("a/never-existed.txt")

    assert store.head("a/doomed.txt") is None
    assert keys_of(store.list_objects("a/")) == ["a/kept.txt"]


def test_delete_prefix_removes_only_that_folder(store):
    for key in ["run1/a.txt", "run1/sub/b.txt", "run10/c.txt", "run2/d.txt"]:
        store.write_bytes(key, b"x")

    deleted = store.delete_prefix("run1/")

    assert deleted == 2
    assert keys_of(store.list_objects("")) == ["run10/c.txt", "run2/d.txt"]
    assert store.delete_prefix("run1/") == 0


def test_delete_prefix_refuses_to_empty_the_whole_lake(store):
    store.write_bytes("a/keep.txt", b"x")

    with pytest.raises(ValueError):
        store.delete_prefix("")

    assert store.exists("a/keep.txt")


def test_copy_duplicates_the_content_and_keeps_the_source(store):
    store.write_bytes("staging/s1.parquet", b"parquet bytes")

    copied = store.copy("staging/s1.parquet", "curated/s1.parquet")

    assert store.read_bytes("curated/s1.parquet") == b"parquet bytes"
    assert store.read_bytes("staging/s1.parquet") == b"parquet bytes"
    assert copied.key == "curated/s1.parquet"
    assert copied.size == len(b"parquet bytes")
    assert store.head("curated/s1.parquet") == copied


def test_tags_round_trip_and_put_tags_replaces_the_whole_set(store):
    store.write_bytes("a/obj.txt", b"x")
    assert store.get_tags("a/obj.txt") == {}

    store.put_tags("a/obj.txt", {"consent": "research", "sample_id": "HG00096"})
    assert store.get_tags("a/obj.txt") == {"consent": "research", "sample_id": "HG00096"}

    store.put_tags("a/obj.txt", {"qc": "passed"})
    assert store.get_tags("a/obj.txt") == {"qc": "passed"}


def test_upload_with_tags_tags_the_object(store, tmp_path):
    src = write_file(tmp_path / "s1.vcf.gz", b"vcf")

    store.upload(src, "raw/s1.vcf.gz", tags={"consent": "restricted", "source": "lab-a"})

    assert store.get_tags("raw/s1.vcf.gz") == {"consent": "restricted", "source": "lab-a"}


def test_deleting_an_object_deletes_its_tags(store):
    store.write_bytes("a/obj.txt", b"x")
    store.put_tags("a/obj.txt", {"qc": "failed"})

    store.delete("a/obj.txt")
    store.write_bytes("a/obj.txt", b"y")

    assert store.get_tags("a/obj.txt") == {}


def test_overwriting_an_object_drops_its_old_tags(store):
    store.write_bytes("a/obj.txt", b"x")
    store.put_tags("a/obj.txt", {"qc": "failed"})

    store.write_bytes("a/obj.txt", b"fixed")

    assert store.get_tags("a/obj.txt") == {}


def test_copy_carries_the_source_tags(store):
    store.write_bytes("staging/s1.txt", b"x")
    store.put_tags("staging/s1.txt", {"consent": "restricted"})

    store.copy("staging/s1.txt", "curated/s1.txt")

    assert store.get_tags("curated/s1.txt") == {"consent": "restricted"}


def test_tags_of_a_missing_object_raise_file_not_found(store):
    with pytest.raises(FileNotFoundError):
        store.get_tags("a/missing.txt")
    with pytest.raises(FileNotFoundError):
        store.put_tags("a/missing.txt", {"qc": "passed"})


@pytest.mark.parametrize("unsafe", UNSAFE_KEYS)
def test_unsafe_keys_are_rejected_by_every_method(store, tmp_path, unsafe):
    src = write_file(tmp_path / "src.txt", b"x")
    store.write_bytes("a/ok.txt", b"x")
    calls = {
        "uri": lambda: store.uri(unsafe),
        "head": lambda: store.head(unsafe),
        "open_read": lambda: store.open_read(unsafe),
        "download": lambda: store.download(unsafe, tmp_path / "dest.txt"),
        "upload": lambda: store.upload(src, unsafe),
        "write_bytes": lambda: store.write_bytes(unsafe, b"x"),
        "delete": lambda: store.delete(unsafe),
        "copy from": lambda: store.copy(unsafe, "a/copy.txt"),
        "copy to": lambda: store.copy("a/ok.txt", unsafe),
        "get_tags": lambda: store.get_tags(unsafe),
        "put_tags": lambda: store.put_tags(unsafe, {"k": "v"}),
    }

    accepted = []
    for name, call in calls.items():
        try:
            call()
        except InvalidIdentifierError:
            continue
        accepted.append(name)

    assert accepted == []
    assert keys_of(store.list_objects("")) == ["a/ok.txt"]


def test_uri_is_the_root_uri_plus_the_key(store):
    assert store.uri("a/b.txt") == store.root_uri.rstrip("/") + "/a/b.txt"


# -- S3 specifics ---------------------------------------------------------------------------


def test_client_retries_adaptively_with_path_style_addressing(moto_endpoint):
    client = s3_client(endpoint_url=moto_endpoint)

    # botocore reports max_attempts=10 (retries) as 11 attempts in total.
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    assert client.meta.config.s3["addressing_style"] == "path"
    assert client.meta.endpoint_url == moto_endpoint


def test_root_uri_and_uri_name_the_bucket_and_prefix(make_s3_store, bucket):
    assert make_s3_store().root_uri == f"s3://{bucket}"
    assert make_s3_store("/lake/v1/").root_uri == f"s3://{bucket}/lake/v1"
    assert make_s3_store("lake/v1").uri("raw/x.vcf") == f"s3://{bucket}/lake/v1/raw/x.vcf"


@pytest.mark.parametrize("prefix", ["../lake", "lake//v1", "lake/../x"])
def test_an_unsafe_store_prefix_is_rejected(make_s3_store, prefix):
    with pytest.raises(InvalidIdentifierError):
        make_s3_store(prefix)


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a//b/"])
def test_an_unsafe_listing_prefix_is_rejected(make_s3_store, prefix):
    with pytest.raises(InvalidIdentifierError):
        list(make_s3_store().list_objects(prefix))


def test_a_store_prefix_confines_keys_to_its_folder(make_s3_store, raw_s3, bucket):
    raw_s3.put_object(Bucket=bucket, Key="other/outside.txt", Body=b"o")
    raw_s3.put_object(Bucket=bucket, Key="lake/v10/sibling.txt", Body=b"s")
    store = make_s3_store("lake/v1")

    store.write_bytes("raw/inside.txt", b"i")

    bucket_keys = [o["Key"] for o in raw_s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "lake/v1/raw/inside.txt" in bucket_keys
    assert keys_of(store.list_objects("")) == ["raw/inside.txt"]
    assert keys_of(store.list_objects("raw/")) == ["raw/inside.txt"]
    assert store.head("other/outside.txt") is None


def test_list_objects_follows_pages(make_s3_store, count_calls):
    store = make_s3_store("lake", page_size=3)
    keys = [f"part/{i:02d}.txt" for i in range(10)]
    for key in keys:
        store.write_bytes(key, b"x")
    list_calls = count_calls(store.client, "ListObjectsV2")

    listed = keys_of(store.list_objects("part/"))

    assert listed == keys
    assert len(list_calls) == 4


def test_more_than_a_thousand_objects_are_listed_and_deleted_in_batches(
    make_s3_store, raw_s3, bucket, count_calls
):
    store = make_s3_store("lake")
    keys = [f"many/{i:04d}.txt" for i in range(1100)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: raw_s3.put_object(Bucket=bucket, Key=f"lake/{key}", Body=b"x"), keys))
    list_calls = count_calls(store.client, "ListObjectsV2")
    delete_calls = count_calls(store.client, "DeleteObjects")

    assert keys_of(store.list_objects("many/")) == keys
    assert len(list_calls) == 2

    assert store.delete_prefix("many/") == 1100
    assert len(delete_calls) == 2
    assert raw_s3.list_objects_v2(Bucket=bucket, Prefix="lake/many/")["KeyCount"] == 0


def test_writes_use_sse_s3_by_default(make_s3_store, raw_s3, bucket, tmp_path):
    store = make_s3_store("lake")
    store.write_bytes("a/bytes.txt", b"x")
    store.upload(write_file(tmp_path / "f.txt", b"f"), "a/uploaded.txt")
    raw_s3.put_object(Bucket=bucket, Key="lake/a/unencrypted.txt", Body=b"u")
    store.copy("a/unencrypted.txt", "a/copied.txt")

    for key in ["a/bytes.txt", "a/uploaded.txt", "a/copied.txt"]:
        head = raw_s3.head_object(Bucket=bucket, Key=f"lake/{key}")
        assert head.get("ServerSideEncryption") == "AES256", key


def test_writes_use_the_configured_kms_key(moto_endpoint, make_s3_store, raw_s3, bucket, tmp_path):
    kms = aws_client("kms", endpoint_url=moto_endpoint)
    key_id = kms.create_key(Description="genolake test")["KeyMetadata"]["Arn"]
    store = make_s3_store("lake", sse_kms_key_id=key_id)
    multipart_size = 9 * 1024 * 1024  # above the transfer manager's 8 MiB multipart threshold

    store.write_bytes("a/bytes.txt", b"x")
    store.upload(write_file(tmp_path / "big.bin", os.urandom(multipart_size)), "a/big.bin", tags={"qc": "passed"})
    store.copy("a/big.bin", "a/big-copy.bin")

    for key in ["a/bytes.txt", "a/big.bin", "a/big-copy.bin"]:
        head = raw_s3.head_object(Bucket=bucket, Key=f"lake/{key}")
        assert head.get("ServerSideEncryption") == "aws:kms", key
        assert head.get("SSEKMSKeyId") == key_id, key
    assert store.get_tags("a/big.bin") == {"qc": "passed"}
    assert store.get_tags("a/big-copy.bin") == {"qc": "passed"}
    assert store.head("a/big-copy.bin").size == multipart_size


def test_etag_is_unquoted_and_last_modified_is_epoch_seconds(make_s3_store, raw_s3, bucket):
    store = make_s3_store()

    stored = store.write_bytes("a/obj.txt", b"hello")

    raw_etag = raw_s3.head_object(Bucket=bucket, Key="a/obj.txt")["ETag"]
    assert raw_etag == f'"{stored.etag}"'
    assert stored.etag == "5d41402abc4b2a76b9719d911017c592"  # MD5 of b"hello"
    assert isinstance(stored.last_modified, float)
    assert abs(stored.last_modified - time.time()) < 60


def test_an_injected_client_is_used(moto_endpoint, bucket, count_calls):
    client = s3_client(endpoint_url=moto_endpoint)
    put_calls = count_calls(client, "PutObject")
    store = S3ObjectStore(bucket, client=client)

    store.write_bytes("a/x.txt", b"x")

    assert store.client is client
    assert len(put_calls) == 1
