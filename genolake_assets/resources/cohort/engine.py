"""Where the cohort update runs, as a resource (docs/cohort-layout.md, "Where the update runs").

``engine="in-process"``: the streaming update in the orchestrator's process (lib/cohort/layout.py), the
default on one machine and up to a few hundred whole genomes a run. ``engine="spark"``: the distributed
update, ``spark/cohort_update.py``, here on local Spark in a child process; the aws profile runs the same
job on a transient EMR cluster (:mod:`genolake_assets.resources.cohort.emr_spark`). Either way the update's
files land under ``cohort/`` and lib/cohort/build.py publishes the manifest.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from genolake_assets.lib.cohort.build import CohortUpdater, update_in_process
from genolake_assets.lib.cohort.distributed import CohortJob, DistributedUpdate, SampleFiles
from genolake_assets.lib.cohort.layout import CohortState, CohortUpdate
from genolake_assets.lib.lake.layout import (
    COHORT_PREFIX,
    REFERENCE_BLOCKS_TABLE,
    STAGING_COHORT_PREFIX,
    VARIANTS_TABLE,
    partition_key,
)
from genolake_assets.resources.conversion.engine import EngineUnavailable, run_logged
from genolake_assets.settings import COHORT_ENGINES

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


class CohortEngine(dg.ConfigurableResource):
    """Runs one cohort update (lib/cohort/build.py publishes it)."""

    engine: str = "in-process"
    spark_master: str = "local[2]"
    """``engine=spark`` only: the local Spark master."""
    driver_memory: str = "1g"
    timeout_seconds: int = 6 * 3600

    def updater(self, context, log: Callable[[str], None]) -> CohortUpdater:
        """The update this engine runs; ``context``: the Dagster run's (None from the command line)."""
        run_id = context.run_id if context is not None else ""
        if self.engine == "in-process":
            return update_in_process
        if self.engine == "spark":
            return lambda store, fetch, state, samples, drop, work_dir, max_files: self._update_with_local_spark(
                store, cohort_job(store, state, samples, drop, max_files, _job_id(run_id)), log)
        raise ValueError(f"unknown cohort engine {self.engine!r} (available: {', '.join(COHORT_ENGINES)})")

    def _update_with_local_spark(self, store, job: CohortJob, log: Callable[[str], None]) -> CohortUpdate:
        if importlib.util.find_spec("pyspark") is None:
            raise EngineUnavailable("the spark cohort engine needs pyspark on this machine: pip install -e '.[hail]' "
                                    "(it pins pyspark 3.5; Java 11+)")
        if not SPARK_JOB.is_file():
            raise EngineUnavailable(f"the cohort job {SPARK_JOB} is missing: run genolake from a checkout")
        job_key = job.result_key.rsplit("/", 1)[0] + "/job.json"
        store.write_bytes(job_key, job.to_json().encode())
        store.delete(job.result_key)
        try:
            with tempfile.TemporaryDirectory(prefix="genolake-cohort-spark-") as tmp:
                command = [sys.executable, str(SPARK_JOB), "--job", store.uri(job_key), "--master", self.spark_master,
                           "--driver-memory", self.driver_memory, "--local-dir", tmp]
                exit_code, tail = run_logged(command, log, self.timeout_seconds, what="the cohort job")
            if exit_code != 0 or not store.exists(job.result_key):
                raise RuntimeError(f"the cohort job exited with {exit_code} without a result; last lines:\n"
                                   + "\n".join(tail))
            return read_result(store, job)
        finally:
            store.delete_prefix(job_key.rsplit("/", 1)[0] + "/")


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


def _job_id(run_id: str) -> str:
    return f"{run_id}-{uuid.uuid4().hex[:8]}" if run_id else uuid.uuid4().hex


__all__ = ["COHORT_ENGINES", "CohortEngine", "cohort_job", "read_result"]
