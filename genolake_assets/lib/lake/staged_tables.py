"""Finishing a Spark engine's output into the lake's per-sample Parquet files.

The Hail job computes the rows; this module writes them with the same schema, writer settings and
layout as the in-process converter (:mod:`genolake_assets.lib.lake.parquet_output`), so the two engines'
files differ in nothing but the bytes Parquet's encoder chooses. It runs on Spark executors (one task
per sample and table), so it imports only pyarrow and numpy.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from genolake_assets.lib.lake.layout import PART_NAME
from genolake_assets.lib.lake.parquet_output import SortedParquetWriter

READ_BATCH_ROWS = 65_536


@dataclass
class StagedFile:
    uri: str
    rows: int
    bytes: int
    sha256: str
    sorted: bool


def staged_uri(staging_uri: str, table: str, sample_id: str) -> str:
    """Where a sample's table is staged: the lake layout under ``staging_uri``."""
    return f"{staging_uri.rstrip('/')}/{table}/sample_id={sample_id}/{PART_NAME}"


def filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """(file system, path in it) for a local path or a URI pyarrow knows (s3://…)."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def _conform(batch: pa.RecordBatch, schema: pa.Schema, constants: dict[str, str]) -> pa.Table:
    """Select and cast the engine's columns into ``schema`` (sample columns filled from ``constants``)."""
    columns = []
    for field in schema:
        if field.name in constants:
            columns.append(pa.repeat(pa.scalar(constants[field.name], field.type), batch.num_rows))
            continue
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            raise ValueError(f"the engine's output has no column {field.name!r}")
        columns.append(pc.cast(batch.column(index), field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def finish_sample_table(source_uri: str, target_uri: str, schema: pa.Schema, contig_rank: dict[str, int],
                        constants: dict[str, str]) -> StagedFile:
    """Rewrite the engine's files for one sample and table (``source_uri``: a folder, possibly absent
    when the sample has no rows) into one verified Parquet file at ``target_uri``."""
    source_fs, source_path = filesystem_for(source_uri)
    info = source_fs.get_file_info(source_path)
    target_fs, target_path = filesystem_for(target_uri)
    with tempfile.TemporaryDirectory(prefix="genolake-finish-") as tmp:
        local = Path(tmp) / PART_NAME
        writer = SortedParquetWriter(local, schema, contig_rank)
        if info.type != pafs.FileType.NotFound:
            dataset = ds.dataset(source_path, filesystem=source_fs, format="parquet")
            for batch in dataset.to_batches(batch_size=READ_BATCH_ROWS):
                writer.append(_conform(batch, schema, constants))
        writer.close()
        footer = pq.read_metadata(local)
        if footer.num_rows != writer.rows:
            raise OSError(f"{target_uri}: {footer.num_rows} rows in the written file, {writer.rows} appended")
        digest = hashlib.sha256()
        with open(local, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        size = local.stat().st_size
        if isinstance(target_fs, pafs.LocalFileSystem):  # object stores have no folders (S3 would get markers)
            target_fs.create_dir(target_path.rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(str(local), target_path, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=target_fs)
    return StagedFile(target_uri, writer.rows, size, digest.hexdigest(), writer.sorted)
