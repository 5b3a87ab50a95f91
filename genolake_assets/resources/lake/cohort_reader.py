"""Opening a lake for cohort lookups: a local directory or ``s3://bucket/prefix``.

Arrow's own filesystems are used (not boto3) so Parquet range reads go through Arrow's
coalescing pre-buffer; credentials come from the environment's usual AWS chain.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pyarrow.fs as pafs

from genolake_assets.lib.cohort.state import STATE_KEY, CohortState


def open_lake(location: str, *, endpoint_url: str | None = None,
              region: str | None = None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root) for a lake directory or ``s3://bucket[/prefix]``; keys join onto root."""
    if location.startswith("s3://"):
        return _open_s3(location, endpoint_url=endpoint_url, region=region)
    if "://" in location:
        raise ValueError(f"lake location {location!r} is neither a local directory nor s3://bucket/prefix")
    return pafs.LocalFileSystem(), os.path.abspath(location)


def _open_s3(location: str, *, endpoint_url: str | None, region: str | None) -> tuple[pafs.FileSystem, str]:
    parsed = urlparse(location)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    if not bucket:
        raise ValueError(f"lake location {location!r} names no bucket (expected s3://bucket/prefix)")
    options = {}
    if endpoint_url:
        endpoint = urlparse(endpoint_url)
        options["endpoint_override"] = endpoint.netloc or endpoint.path
        options["scheme"] = endpoint.scheme or "https"
    elif region is None:
        region = _bucket_region(bucket)
    filesystem = pafs.S3FileSystem(region=region, **options)
    return filesystem, f"{bucket}/{prefix}" if prefix else bucket


def _bucket_region(bucket: str) -> str | None:
    # Without a region the SDK falls back to us-east-1, and reads of a bucket elsewhere fail.
    try:
        return pafs.resolve_s3_region(bucket)
    except OSError:
        return None


def read_state(filesystem: pafs.FileSystem, root: str) -> CohortState:
    """The cohort manifest ``<root>/registry/cohort/state.json``."""
    path = f"{root.rstrip('/')}/{STATE_KEY}"
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        raise FileNotFoundError(f"no cohort table in this lake: {path} is missing; materialise the "
                                "`cohort_variants` asset first")
    with filesystem.open_input_stream(path) as stream:
        return CohortState.from_json(stream.read())
