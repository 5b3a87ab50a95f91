"""One cohort update on Spark: the distributed form of genolake's cohort build (lib/cohort/distributed.py).

    spark-submit --py-files genolake_assets.zip cohort_update.py --job s3://bucket/…/job.json   # on EMR
    python spark/cohort_update.py --job job.json --master 'local[2]'                            # local Spark

The job file (``CohortJob``) names the lake, the published manifest, the samples to fold in and the
samples to drop. Tasks read the per-sample files, Spark shuffles the rows by (contig, bin) and sorts them
(spilling to disk, so no executor holds more than a partition's rows), and fold tasks write each
partition's new delta or compacted file into the lake with the same code as the in-process update. The
driver writes the assembled update (``DistributedUpdate``) to the job's ``result_key``. The manifest is not
touched here: the orchestrator publishes it (lib/cohort/build.py), as after an in-process update.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from genolake_assets.lib.cohort.distributed import (
    OUTCOME_SCHEMA,
    TASK_ORDER,
    CohortJob,
    DistributedUpdate,
    assemble_update,
    existing_partition_markers,
    fold_sorted_rows,
    read_cohort_rows,
)
from genolake_assets.lib.cohort.layout import COHORT_SCHEMA
from genolake_assets.lib.lake.job_io import job_pipes, read_text, write_text

SPARK_TYPES = {pa.string(): T.StringType(), pa.int32(): T.IntegerType(), pa.bool_(): T.BooleanType(),
               pa.list_(pa.field("element", pa.int16())): T.ArrayType(T.ShortType())}
SOURCE_SCHEMA = T.StructType([T.StructField("sample_id", T.StringType(), False),
                              T.StructField("kind", T.StringType(), False),
                              T.StructField("key", T.StringType(), False)])


def cohort_spark_schema() -> T.StructType:
    return T.StructType([T.StructField(f.name, SPARK_TYPES[f.type], True) for f in COHORT_SCHEMA])


def run(spark: SparkSession, job: CohortJob, fold_partitions: int | None = None, pipes=None) -> DistributedUpdate:
    """The update on ``spark``: read, shuffle by partition, sort, fold; the assembled result."""
    started = time.perf_counter()
    bin_size, lake_root = job.previous.bin_size, job.lake_root
    files = job.source_files()
    schema = cohort_spark_schema()

    def read(batches):
        for batch in batches:
            for sample_id, kind, key in zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True):
                yield from read_cohort_rows(lake_root, sample_id, kind, key, bin_size)

    parts = []
    if files:
        sources = spark.createDataFrame(files, SOURCE_SCHEMA).repartition(len(files))
        parts.append(sources.mapInArrow(read, schema))
    markers = existing_partition_markers(job)
    if markers.num_rows:
        parts.append(spark.createDataFrame(markers.to_pylist(), schema))
    if not parts:
        return assemble_update(job, [])
    rows = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    width = fold_partitions or max(spark.sparkContext.defaultParallelism * 2, 1)

    def fold(batches):
        yield from fold_sorted_rows(job, batches)

    order = [F.col(name).asc_nulls_first() if direction == "ascending" else F.col(name).desc_nulls_last()
             for name, direction in TASK_ORDER]
    folded = (rows.repartition(width, "contig", "bin").sortWithinPartitions(*order)
              .mapInArrow(fold, T.StructType([T.StructField("outcome", T.StringType(), True)])))
    assert folded.schema.names == OUTCOME_SCHEMA.names
    outcomes = [row.outcome for row in folded.collect()]
    result = assemble_update(job, outcomes)
    if pipes is not None:
        update = result.update
        pipes.report_custom_message({"kind": "cohort", "partitions_folded": len(outcomes),
                                     "rows_added": update.rows_added, "rows_removed": update.rows_removed,
                                     "files_written": len(result.written), "bytes_written": update.bytes_written,
                                     "seconds": round(time.perf_counter() - started, 1)})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", required=True, help="the cohort job (path or s3:// URI)")
    parser.add_argument("--master", default=None, help="Spark master for a local run, e.g. 'local[2]'")
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--local-dir", default=None, help="local Spark's scratch, where its sort spills")
    parser.add_argument("--fold-partitions", type=int, default=None,
                        help="tasks that fold partitions (default: twice the default parallelism)")
    args = parser.parse_args(argv)
    job = CohortJob.from_json(read_text(args.job))
    builder = SparkSession.builder.appName("genolake-cohort-update")
    if args.master:
        # local workers run this interpreter, which has genolake_assets (on a cluster: --py-files)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(args.master).config("spark.driver.memory", args.driver_memory)
        if args.local_dir:
            builder = builder.config("spark.local.dir", args.local_dir)
    # Arrow batches of a partition's rows stay small; the sort spills to local disk beyond memory.
    builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", "16384")
    spark = builder.getOrCreate()
    pipes_context = job_pipes()
    try:
        pipes = pipes_context.__enter__() if pipes_context else None
        result = run(spark, job, args.fold_partitions, pipes)
        root = job.lake_root.rstrip("/")
        write_text(f"{root}/{job.result_key}", result.to_json())
    except BaseException:
        if pipes_context:
            pipes_context.__exit__(*sys.exc_info())
        raise
    else:
        if pipes_context:
            pipes_context.__exit__(None, None, None)
    finally:
        spark.stop()
    print(json.dumps({"partitions": len(result.update.state.partitions), "rows_added": result.update.rows_added,
                      "files_written": len(result.written)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
