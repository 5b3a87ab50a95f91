"""LakeResource.local_copy on S3: a cached download is reused only while the object's ETag is the same. A rewritten
object of the same size (the samples table after a status change) must not be served from the old copy: the
cohort's sample tokens are read through it."""


def test_a_rewritten_object_of_the_same_size_is_downloaded_again(aws_resources):
    lake = aws_resources["lake"]
    store = lake.store()
    store.write_bytes("samples/part-00000.parquet", b"version one")
    first = lake.local_copy("samples/part-00000.parquet")
    assert first.read_bytes() == b"version one"

    assert lake.local_copy("samples/part-00000.parquet").read_bytes() == b"version one"  # cached, same ETag
    store.write_bytes("samples/part-00000.parquet", b"version two")  # same size, new content
    assert lake.local_copy("samples/part-00000.parquet").read_bytes() == b"version two"
