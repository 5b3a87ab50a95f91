"""Issue 22: a cohort update SIGKILLed mid-upload. The next run goes through without manual steps, the lake
equals an uninterrupted run's, and reading the cohort folders directly gives exactly the manifest's rows.

The killed run is a real Dagster run in a child process (the instance on disk, pools limited to 1); its
upload is slowed after the first file so the kill lands while files are half in the live folders.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pytest

from genolake_assets.lib.cohort.state import STATE_KEY, CohortState
from genolake_assets.resources.profile import build_resources
from genolake_assets.run_recovery import fail_dead_runs
from tests.pipeline.helpers import ingest, refresh_tables, tick
from tests.runs.helpers import wait_for_marker

REPO = Path(__file__).resolve().parents[2]
COHORT_RUN = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import dagster as dg
    from genolake_assets.assets.variants import cohort_variants
    from genolake_assets.resources.lake.local_store import LocalObjectStore
    from genolake_assets.resources.profile import build_resources

    marker, pause = Path(sys.argv[1]), float(sys.argv[2])
    upload = LocalObjectStore.upload
    uploaded = []

    def slow_upload(self, path, key):
        stored = upload(self, path, key)
        if key.startswith("cohort/"):
            uploaded.append(key)
            if len(uploaded) == 1 and pause:
                marker.write_text(key)
                time.sleep(pause)
        return stored

    LocalObjectStore.upload = slow_upload
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([cohort_variants], instance=instance, resources=build_resources())
        sys.exit(0 if result.success else 1)
''')


def manifest_rows(lake: Path) -> int:
    state = CohortState.from_json((lake / STATE_KEY).read_bytes())
    return sum(p.rows for p in state.partitions.values())


def folder_rows(lake: Path) -> int:
    """What Glue/Athena or anyone reading the partition folders sees."""
    return ds.dataset(lake / "cohort", format="parquet", partitioning="hive").count_rows()


def cohort_run(tmp_path: Path, name: str, pause: float) -> subprocess.Popen:
    script = tmp_path / "cohort_run.py"
    script.write_text(COHORT_RUN)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / name), str(pause)], cwd=REPO,
                            env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_cohort_update_killed_mid_upload_recovers_on_the_next_run(tmp_path, lake_home, monkeypatch, land,
                                                                     data_vcf, pooled_dagster_home):
    resources = build_resources()
    lake = lake_home / "lake"
    with dg.DagsterInstance.get() as instance:
        for sample in ("HG00187", "HG00190"):
            land(data_vcf / f"{sample}.hg38.g.vcf.gz")
        for request in tick(instance, resources).run_requests:
            assert ingest(instance, resources, request.partition_key).success
        assert refresh_tables(instance, resources).success
    first = cohort_run(tmp_path, "unused", pause=0)
    assert first.wait(timeout=300) == 0, first.stderr.read().decode()[-2000:]
    with dg.DagsterInstance.get() as instance:
        for sample in ("HG01377", "NA12249"):
            land(data_vcf / f"{sample}.hg38.g.vcf.gz")
        for request in tick(instance, resources).run_requests:
            if request.partition_key in ("HG01377", "NA12249"):
                assert ingest(instance, resources, request.partition_key).success
        assert refresh_tables(instance, resources).success
    uninterrupted = tmp_path / "uninterrupted"
    shutil.copytree(lake_home, uninterrupted)

    killed = cohort_run(tmp_path, "killed.marker", pause=600)
    wait_for_marker(killed, tmp_path / "killed.marker")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert folder_rows(lake) > manifest_rows(lake), "the kill should leave an uploaded file the manifest lacks"

    with dg.DagsterInstance.get() as instance:
        assert len(fail_dead_runs(instance)) == 1  # what genolake demo and dead_run_sensor do
    rerun = cohort_run(tmp_path, "unused", pause=0)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()[-2000:]

    assert folder_rows(lake) == manifest_rows(lake)
    monkeypatch.setenv("GENOLAKE_HOME", str(uninterrupted))
    reference = cohort_run(tmp_path, "unused", pause=0)
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()[-2000:]
    assert manifest_rows(lake) == manifest_rows(uninterrupted / "lake") == folder_rows(uninterrupted / "lake")
    for sample in ("HG00187", "HG00190", "HG01377", "NA12249"):
        assert sample in CohortState.from_json((lake / STATE_KEY).read_bytes()).samples
