"""The distributed cohort update (spark/cohort_update.py on local Spark, local[2]) builds the table the in-process
update builds: same manifest, same files with the same rows in the same order, row-group statistics present.

Three updates on real conversions (five 1000 Genomes gVCFs and the 100-sample cohort VCF): a first build, new
samples, and two re-converted samples with a file limit that forces compaction (the drop-and-compact path).
The Spark job runs as the local profile runs it (``GENOLAKE_COHORT_ENGINE=spark``): through the resource, in a
child process, its files written straight into the lake and the manifest published by lib/cohort/build.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from genolake_assets.lib.cohort.build import build_cohort, load_state
from genolake_assets.lib.lake.layout import STAGING_COHORT_PREFIX, VARIANTS_TABLE
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.cohort.engine import CohortEngine
from genolake_assets.resources.lake.local_store import LocalObjectStore
from tests.conftest import require_spark
from tests.lib.cohort.cohort_equality import assert_same_cohort

require_spark("the distributed cohort update runs on Spark")

GVCFS = ["HG00187", "HG00190", "HG01377", "NA12249", "NA20317"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory, data_vcf) -> tuple[Path, list[str]]:
    lake = tmp_path_factory.mktemp("cohort-spark") / "lake"
    for name in GVCFS:
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
    convert_vcf(data_vcf / "1kg_chr20_100samples_GRCh37.vcf", lake)
    return lake, sorted(path.name.removeprefix("sample_id=") for path in (lake / VARIANTS_TABLE).iterdir())


def test_spark_builds_the_in_process_cohort_table(converted, tmp_path):
    lake, samples = converted
    stores = {}
    for engine in ("in-process", "spark"):
        shutil.copytree(lake, tmp_path / engine)
        stores[engine] = LocalObjectStore(tmp_path / engine)
    spark_lines: list[str] = []
    updaters = {"in-process": CohortEngine().updater(None, print),
                "spark": CohortEngine(engine="spark", spark_master="local[2]").updater(None, spark_lines.append)}
    plan = [({s: "v1" for s in samples[:60]}, 8), ({s: "v1" for s in samples[:90]}, 8),
            ({**{s: "v1" for s in samples}, samples[3]: "v2", samples[70]: "v2"}, 2)]
    for tokens, max_files in plan:
        builds = {engine: build_cohort(store, store.local_path, tmp_path / f"work-{engine}", tokens,
                                       max_files=max_files, updater=updaters[engine])
                  for engine, store in stores.items()}
        a, b = builds["in-process"], builds["spark"]
        assert (b.samples_added, b.samples_reconverted, b.update.rows_added, b.update.rows_removed) == (
            a.samples_added, a.samples_reconverted, a.update.rows_added, a.update.rows_removed)
        rows = assert_same_cohort(stores["in-process"], load_state(stores["in-process"]),
                                  stores["spark"], load_state(stores["spark"]))
        assert rows == b.rows
        # file names are random: the same number of objects, none unlisted but the retired folders' (see build.py)
        assert len(list(stores["spark"].list_objects("cohort/"))) == len(
            list(stores["in-process"].list_objects("cohort/")))
        assert list(stores["spark"].list_objects(STAGING_COHORT_PREFIX)) == []  # the job's files are removed
    assert b.update.compacted_partitions and b.update.rows_removed > 0 and len(b.state.samples) == 105
    assert any('"partitions"' in line for line in spark_lines), spark_lines[-5:]  # the job's own summary line
