"""The distributed cohort update (spark/cohort_update.py) on local Spark, in a child process; no Dagster here, so
``genolake cohort --engine spark`` runs it too. resources/cohort/engine.py is the resource around it."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from genolake_assets.lib.cohort.build import CohortUpdater
from genolake_assets.lib.cohort.distributed import CohortJob, DistributedUpdate, SampleFiles
from genolake_assets.lib.cohort.layout import CohortState, CohortUpdate
from genolake_assets.lib.lake.layout import (
    COHORT_PREFIX,
    REFERENCE_BLOCKS_TABLE,
    STAGING_COHORT_PREFIX,
    VARIANTS_TABLE,
    partition_key,
)
from genolake_assets.resources.processes import EngineUnavailable, run_logged

SPARK_JOB = Path(__file__).resolve().parents[3] / "spark" / "cohort_update.py"
"""The repo's spark/ job (genolake is used from a checkout: `make install` installs it editable)."""


def cohort_job(store, state: CohortState, samples: dict[str, str], drop: set[str], max_files: int,
               job_id: str) -> CohortJob:
    """The distributed update's input: the lake, the manifest, the samples' files (keys, never downloaded)."""
    files = []
    for sample_id, token in samples.items():
        keys = {table: partition_key(table, sample_id) for table in (VARIANTS_TABLE, REFERENCE_BLOCKS_TABLE)}
        keys = {table: key if store.exists(key) else None for table, key in keys.items()}
        files.append(SampleFiles(sample_id, token, keys[VARIANTS_TABLE], keys[REFERENCE_BLOCKS_TABLE]))
    return CohortJob(lake_root=store.root_uri, previous=state, samples=files, drop=sorted(drop),
                     max_files=max_files, result_key=f"{STAGING_COHORT_PREFIX}{job_id}/result.json")


def job_id(run_id: str) -> str:
    return f"{run_id}-{uuid.uuid4().hex[:8]}" if run_id else uuid.uuid4().hex


def read_result(store, job: CohortJob) -> CohortUpdate:
    """The job's assembled update, checked against what it was asked to do."""
    result = DistributedUpdate.from_json(store.read_bytes(job.result_key).decode())
    state = result.update.state
    expected = job.next_samples()
    if state.version != job.previous.version + 1 or state.samples != expected:
        raise RuntimeError(f"the cohort job's result is not the update it was given (version {state.version}, "
                           f"{len(state.samples)} samples; expected {job.previous.version + 1}, {len(expected)})")
    present = {obj.key for obj in store.list_objects(COHORT_PREFIX)}
    missing = [key for key in state.all_live_keys() if key not in present]
    if missing:  # the manifest must never name a file that is not there
        raise RuntimeError(f"the cohort job lists {len(missing)} file(s) it did not write, e.g. {missing[0]}")
    return result.update


def local_spark_updater(log: Callable[[str], None], master: str = "local[2]", driver_memory: str = "1g",
                        timeout_seconds: int = 6 * 3600, run_id: str = "") -> CohortUpdater:
    """A CohortUpdater that runs spark/cohort_update.py on local Spark (``master``)."""

    def update(store, fetch, state, samples, drop, work_dir, max_files) -> CohortUpdate:
        job = cohort_job(store, state, samples, drop, max_files, job_id(run_id))
        return run_local_spark_job(store, job, log, master, driver_memory, timeout_seconds)

    return update


def run_local_spark_job(store, job: CohortJob, log: Callable[[str], None], master: str, driver_memory: str,
                        timeout_seconds: int) -> CohortUpdate:
    if importlib.util.find_spec("pyspark") is None:
        raise EngineUnavailable("the spark cohort engine needs pyspark on this machine: pip install -e '.[hail]' "
                                "(it pins pyspark 3.5; Java 11+)")
    if not SPARK_JOB.is_file():
        raise EngineUnavailable(f"the cohort job {SPARK_JOB} is missing: run genolake from a checkout")
    folder = job.result_key.rsplit("/", 1)[0]
    job_key = f"{folder}/job.json"
    store.write_bytes(job_key, job.to_json().encode())
    store.delete(job.result_key)
    try:
        with tempfile.TemporaryDirectory(prefix="genolake-cohort-spark-") as tmp:
            command = [sys.executable, str(SPARK_JOB), "--job", store.uri(job_key), "--master", master,
                       "--driver-memory", driver_memory, "--local-dir", tmp]
            exit_code, tail = run_logged(command, log, timeout_seconds, what="the cohort job")
        if exit_code != 0 or not store.exists(job.result_key):
            raise RuntimeError(f"the cohort job exited with {exit_code} without a result; last lines:\n"
                               + "\n".join(tail))
        return read_result(store, job)
    finally:
        store.delete_prefix(folder + "/")
