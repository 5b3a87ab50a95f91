"""Issue 22: an ingest run SIGKILLed inside its pooled step (sample_variants, pool genolake_conversion) while it
publishes. The recovery that `genolake demo` and `dead_run_sensor` do frees the slot and removes what the run
left; the next run completes without manual steps and the lake equals an uninterrupted run's.

The killed run is a real Dagster run in a child process (the instance on disk, pools limited to 1); its
publish is held after the first table's file is in the lake, so the kill lands half-way through the sample.
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
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.lake.records import load_record
from genolake_assets.resources.profile import build_resources
from genolake_assets.run_recovery import fail_dead_runs, remove_dead_runs_scratch
from tests.pipeline.helpers import ingest, tick
from tests.runs.helpers import wait_for_marker

REPO = Path(__file__).resolve().parents[2]
POOL = "genolake_conversion"
INGEST_RUN = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import dagster as dg
    from genolake_assets.resources.lake.local_store import LocalObjectStore
    from genolake_assets.resources.profile import build_resources
    from tests.pipeline.helpers import INGEST_ASSETS

    marker, sample, pause = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    upload = LocalObjectStore.upload

    def held_upload(self, path, key, **kwargs):
        stored = upload(self, path, key, **kwargs)
        if key.startswith("variants/") and pause:
            marker.write_text(key)
            time.sleep(pause)
        return stored

    LocalObjectStore.upload = held_upload
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(INGEST_ASSETS, partition_key=sample, instance=instance, resources=build_resources())
        sys.exit(0 if result.success else 1)
''')
SAMPLE = "HG00190"


def ingest_run(tmp_path: Path, marker: str, pause: float) -> subprocess.Popen:
    script = tmp_path / "ingest_run.py"
    script.write_text(INGEST_RUN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / marker), SAMPLE, str(pause)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def tables_of(lake: Path) -> dict[str, object]:
    return {table: pq.read_table(lake / table / f"sample_id={SAMPLE}" / "part-00000.parquet")
            for table in ("variants", "reference_blocks")}


def leftovers(home: Path) -> list[Path]:
    return [path for path in home.rglob("*") if path.name.startswith(".tmp-") or
            (path.parent.name == "scratch" and path.name.startswith("convert-"))]


@pytest.mark.slow
def test_an_ingest_run_killed_while_publishing_recovers_and_equals_an_uninterrupted_run(tmp_path, lake_home,
                                                                                         monkeypatch, land, data_vcf,
                                                                                         pooled_dagster_home):
    resources = build_resources()
    with dg.DagsterInstance.get() as instance:
        for sample in ("HG00187", SAMPLE):
            land(data_vcf / f"{sample}.hg38.g.vcf.gz")
        for request in tick(instance, resources).run_requests:
            if request.partition_key != SAMPLE:
                assert ingest(instance, resources, request.partition_key).success
    uninterrupted = tmp_path / "uninterrupted"
    shutil.copytree(lake_home, uninterrupted)

    killed = ingest_run(tmp_path, "killed.marker", pause=600)
    wait_for_marker(killed, tmp_path / "killed.marker")
    with dg.DagsterInstance.get() as instance:
        [holder] = [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    lake = lake_home / "lake"
    assert (lake / "variants" / f"sample_id={SAMPLE}").exists()  # half published: one table, no record
    assert load_record(resources["lake"].store(), SAMPLE).status != "converted"
    assert leftovers(lake_home), "the kill should leave the conversion's scratch behind"

    with dg.DagsterInstance.get() as instance:  # what genolake demo and dead_run_sensor do
        [dead] = fail_dead_runs(instance)
        assert dead.run_id == holder and dead.freed_pools == (POOL,)
        remove_dead_runs_scratch(instance, resources["lake"].scratch, resources["lake"].local_root)
        assert leftovers(lake_home) == []
        assert ingest(instance, resources, SAMPLE).success  # not blocked by the dead run's slot

    monkeypatch.setenv("GENOLAKE_HOME", str(uninterrupted))
    reference = ingest_run(tmp_path, "unused", pause=0)
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()[-2000:]
    recovered, expected = tables_of(lake), tables_of(uninterrupted / "lake")
    assert all(recovered[table].equals(expected[table]) for table in expected)
    assert load_record(resources["lake"].store(), SAMPLE).status == "converted"
    assert sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")) == \
        sorted(p.relative_to(uninterrupted / "lake").as_posix() for p in (uninterrupted / "lake").rglob("*.parquet"))
