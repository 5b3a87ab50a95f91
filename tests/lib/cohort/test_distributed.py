"""The distributed update's tasks (lib/cohort/distributed.py) without Spark: the engine's shuffle and sort are
played here with pyarrow (rows hashed to three tasks by partition, each task's rows sorted by TASK_ORDER and fed
in small batches), and the result must be the in-process update's, file for file, over three updates of real
conversions (a first build, new samples, a re-converted sample with compaction)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from genolake_assets.lib.cohort.build import build_cohort, load_state
from genolake_assets.lib.cohort.distributed import (
    TASK_ORDER,
    CohortJob,
    DistributedUpdate,
    SampleFiles,
    assemble_update,
    existing_partition_markers,
    fold_sorted_rows,
    read_cohort_rows,
)
from genolake_assets.lib.cohort.layout import COHORT_SCHEMA
from genolake_assets.lib.lake.layout import REFERENCE_BLOCKS_TABLE, VARIANTS_TABLE, partition_key
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.lake.local_store import LocalObjectStore
from tests.lib.cohort.cohort_equality import assert_same_cohort

GVCFS = ["HG00187", "HG00190", "HG01377", "NA12249", "NA20317"]
TASKS = 3


@pytest.fixture(scope="module")
def converted(tmp_path_factory, data_vcf) -> tuple[Path, list[str]]:
    """The five gVCFs and the 100-sample cohort VCF, converted (105 samples)."""
    lake = tmp_path_factory.mktemp("distributed") / "lake"
    for name in GVCFS:
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
    convert_vcf(data_vcf / "1kg_chr20_100samples_GRCh37.vcf", lake)
    samples = sorted(path.name.removeprefix("sample_id=") for path in (lake / VARIANTS_TABLE).iterdir())
    return lake, samples


def _job(store, state, samples: dict[str, str], drop: set[str], max_files: int) -> CohortJob:
    files = [SampleFiles(s, t, *(partition_key(table, s) if store.exists(partition_key(table, s)) else None
                                 for table in (VARIANTS_TABLE, REFERENCE_BLOCKS_TABLE)))
             for s, t in samples.items()]
    job = CohortJob(lake_root=str(store.root), previous=state, samples=files, drop=sorted(drop), max_files=max_files,
                    result_key="staging/cohort/test/result.json")
    return CohortJob.from_json(job.to_json())  # what a cluster would read


def played_engine(store, fetch, state, samples, drop, work_dir, max_files):
    """A CohortUpdater that runs the tasks as Spark would: read, shuffle by partition, sort, fold in batches."""
    job = _job(store, state, samples, drop, max_files)
    read = [pa.Table.from_batches(list(read_cohort_rows(job.lake_root, s, kind, key, state.bin_size)),
                                  schema=COHORT_SCHEMA) for s, kind, key in job.source_files()]
    rows = pa.concat_tables([*read, existing_partition_markers(job)])
    task_of = pc.remainder(pc.add(pc.multiply(pc.utf8_length(rows["contig"]), 7), rows["bin"]), TASKS)
    outcomes = []
    for task in range(TASKS):
        mine = rows.filter(pc.equal(task_of, task)).sort_by(TASK_ORDER)
        batches = mine.to_batches(max_chunksize=997)  # partitions straddle batches
        outcomes += [batch["outcome"][0].as_py() for batch in fold_sorted_rows(job, batches, str(work_dir))]
    result = DistributedUpdate.from_json(assemble_update(job, outcomes).to_json())
    return result.update


def test_the_tasks_build_what_the_in_process_update_builds(converted, tmp_path):
    lake, samples = converted
    stores = {}
    for engine in ("in_process", "tasks"):
        shutil.copytree(lake, tmp_path / engine)
        stores[engine] = LocalObjectStore(tmp_path / engine)
    first, second = samples[:60], samples[:90]
    third = {**{s: "v1" for s in samples}, samples[3]: "v2", samples[70]: "v2"}  # two re-converted samples
    compared = 0
    for tokens, max_files in (({s: "v1" for s in first}, 8), ({s: "v1" for s in second}, 8), (third, 2)):
        builds = {}
        for engine, store in stores.items():
            updater = {"updater": played_engine} if engine == "tasks" else {}
            builds[engine] = build_cohort(store, store.local_path, tmp_path / f"work-{engine}", tokens,
                                          max_files=max_files, **updater)
        a, b = builds["in_process"], builds["tasks"]
        assert (b.samples_added, b.samples_reconverted) == (a.samples_added, a.samples_reconverted)
        assert (b.update.rows_added, b.update.rows_removed) == (a.update.rows_added, a.update.rows_removed)
        assert sorted(b.update.appended_partitions) == sorted(a.update.appended_partitions)
        assert sorted(b.update.compacted_partitions) == sorted(a.update.compacted_partitions)
        compared = assert_same_cohort(stores["in_process"], load_state(stores["in_process"]),
                                      stores["tasks"], load_state(stores["tasks"]))
        # nothing but the listed files (and the previous version's, kept for its readers) is under cohort/
        state = load_state(stores["tasks"])
        listed = set(state.all_live_keys())
        stray = [o.key for o in stores["tasks"].list_objects("cohort/")
                 if o.key not in listed and not o.key.startswith(tuple(state.retired))]
        assert stray == []
    assert builds["tasks"].update.compacted_partitions and builds["tasks"].update.rows_removed > 0
    assert compared == builds["tasks"].rows > 30_000


def test_a_retried_task_leaves_no_file_behind(converted, tmp_path):
    """A task that wrote its files and then failed is run again by the engine: the first attempt's files are
    unlisted, and the update removes them before the switch (folder readers would count their rows)."""
    lake, samples = converted
    shutil.copytree(lake, tmp_path / "lake")
    store = LocalObjectStore(tmp_path / "lake")

    def engine_with_a_retry(store, fetch, state, samples, drop, work_dir, max_files):
        job = _job(store, state, samples, drop, max_files)
        rows = pa.concat_tables([pa.Table.from_batches(list(read_cohort_rows(job.lake_root, s, k, key, state.bin_size)),
                                                       schema=COHORT_SCHEMA) for s, k, key in job.source_files()])
        ordered = rows.sort_by(TASK_ORDER).to_batches(max_chunksize=4096)
        list(fold_sorted_rows(job, ordered, str(work_dir)))  # the attempt whose outcome is lost
        outcomes = [b["outcome"][0].as_py() for b in fold_sorted_rows(job, ordered, str(work_dir))]
        return assemble_update(job, outcomes).update

    messages: list[str] = []
    built = build_cohort(store, store.local_path, tmp_path / "work", {s: "v1" for s in samples[:20]},
                         log=messages.append, updater=engine_with_a_retry)
    assert sorted(o.key for o in store.list_objects("cohort/")) == built.state.all_live_keys()
    assert any("does not list" in message for message in messages)


def test_the_job_file_is_validated_before_a_key_is_used(converted, tmp_path):
    lake, samples = converted
    store = LocalObjectStore(lake)
    job = json.loads(_job(store, load_state(store), {samples[0]: "v1"}, set(), 8).to_json())
    job["samples"][0]["variants_key"] = "../../etc/passwd"
    with pytest.raises(ValueError, match="unsafe object key"):
        CohortJob.from_json(json.dumps(job))
    job["samples"][0]["variants_key"] = None
    job["max_files"] = 0
    with pytest.raises(ValueError, match="max_files"):
        CohortJob.from_json(json.dumps(job))
