"""What the Spark jobs (spark/vcf_to_parquet.py, spark/cohort_update.py) share to talk to their launcher: their
input and result files (a local path or an s3:// URI) and Dagster Pipes when the orchestrator launched them."""

from __future__ import annotations

import pyarrow.fs as pafs

from genolake_assets.lib.lake.staged_tables import filesystem_for


def read_text(uri: str) -> str:
    fs, path = filesystem_for(uri)
    with fs.open_input_stream(path) as stream:
        return stream.read().decode()


def write_text(uri: str, text: str) -> None:
    fs, path = filesystem_for(uri)
    if isinstance(fs, pafs.LocalFileSystem):  # object stores have no folders (S3 would get markers)
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(text.encode())


def job_pipes():
    """Dagster Pipes (messages through S3) when the orchestrator launched this job on EMR, else None."""
    try:
        from dagster_pipes import PipesEnvVarParamsLoader, PipesS3MessageWriter, open_dagster_pipes
    except ImportError:
        return None
    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        return None
    import boto3

    return open_dagster_pipes(message_writer=PipesS3MessageWriter(client=boto3.client("s3")))
