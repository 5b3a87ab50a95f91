"""The landing sensor: partitions per sample, one run per sample, restart-safe."""

import json

from genolake_assets.lib.lake.identifiers import is_safe_sample_id
from genolake_assets.lib.lake.layout import landing_index_key
from genolake_assets.lib.lake.registry import LandingEntry
from tests.pipeline.helpers import tick

COHORT = "1kg_chr20_100samples_GRCh37.vcf"


def test_new_files_become_one_partition_and_one_run_per_sample(instance, resources, land, data_vcf):
    land(data_vcf / "HG00187.hg38.g.vcf.gz")
    land(data_vcf / COHORT)

    result = tick(instance, resources)

    assert len(result.run_requests) == 101
    partitions = set(instance.get_dynamic_partitions("samples"))
    assert "HG00187" in partitions and len(partitions) == 101
    assert {r.partition_key for r in result.run_requests} == partitions
    cohort_ids = [r.partition_key for r in result.run_requests if r.tags["genolake/source_uri"].endswith(COHORT)]
    assert len(cohort_ids) == 100
    assert all(is_safe_sample_id(key) for key in cohort_ids)  # partition keys are path- and SQL-safe
    entry = LandingEntry.from_json(resources["lake"].store().read_bytes(landing_index_key("HG00187")))
    assert entry.source_key == "landing/HG00187.hg38.g.vcf.gz" and entry.samples_in_file == 1


def test_a_second_tick_with_the_stored_cursor_requests_nothing(instance, resources, land, data_vcf):
    land(data_vcf / "HG00187.hg38.g.vcf.gz")
    first = tick(instance, resources)

    second = tick(instance, resources, cursor=first.cursor)

    assert not second.run_requests
    assert second.cursor == first.cursor


def test_after_a_restart_nothing_is_missed_or_doubled(instance, resources, land, data_vcf):
    land(data_vcf / "HG00187.hg38.g.vcf.gz")
    first = tick(instance, resources)
    land(data_vcf / "HG00190.hg38.g.vcf.gz")  # arrives while the sensor is down

    # A crash before the cursor was stored replays the tick: same run keys, which Dagster de-duplicates.
    replay = tick(instance, resources, cursor=None)
    resumed = tick(instance, resources, cursor=first.cursor)

    assert {r.run_key for r in first.run_requests} <= {r.run_key for r in replay.run_requests}
    assert [r.partition_key for r in resumed.run_requests] == ["HG00190"]


def test_a_reuploaded_file_is_ingested_again_and_a_removed_one_is_forgotten(instance, resources, land, store,
                                                                             data_vcf, tmp_path):
    land(data_vcf / "HG00187.hg38.g.vcf.gz", "sample.g.vcf.gz")
    land(data_vcf / "HG00190.hg38.g.vcf.gz")
    first = tick(instance, resources)

    land(data_vcf / "HG00187.hg38.g.vcf.gz", "sample.g.vcf.gz")  # same name, new upload → new etag
    store.delete("landing/HG00190.hg38.g.vcf.gz")
    second = tick(instance, resources, cursor=first.cursor)

    assert [r.partition_key for r in second.run_requests] == ["HG00187"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert list(json.loads(second.cursor)["seen"]) == ["landing/sample.g.vcf.gz"]


def test_a_sample_name_held_by_another_file_gets_its_own_partition(instance, resources, land, data_vcf, tmp_path):
    source = data_vcf / "HG00187.hg38.g.vcf.gz"
    land(source, "run1.g.vcf.gz")
    land(source, "run2.g.vcf.gz")  # the same sample sequenced twice

    result = tick(instance, resources)

    keys = sorted(r.partition_key for r in result.run_requests)
    assert len(keys) == 2 and keys[0] == "HG00187" and keys[1].startswith("HG00187-f")


def test_non_vcf_files_are_ignored(instance, resources, store):
    store.write_bytes("landing/readme.txt", b"not a VCF")

    result = tick(instance, resources)

    assert not result.run_requests


def test_awkward_and_refused_files_under_pseudonymisation_keep_names_out_of_keys_and_logs(
        lake_home, monkeypatch, instance, data_vcf, tmp_path, capsys):
    import os
    import shutil

    from genolake_assets.lib.lake.identifiers import SampleIdPolicy, pseudonymous_id
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.settings import Settings

    key = bytes.fromhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
    monkeypatch.setenv("GENOLAKE_PSEUDONYMISE", "1")
    monkeypatch.setenv("GENOLAKE_PSEUDONYM_KEY", key.hex())
    resources = build_resources(Settings.from_env())
    store = resources["lake"].store()
    landing = store.root / "landing"
    landing.mkdir(parents=True)
    shutil.copyfile(data_vcf / "HG00187.hg38.g.vcf.gz", landing / "Émile Zola (HG00187).g.vcf.gz")
    secret = tmp_path / "NA12249.g.vcf.gz"
    shutil.copyfile(data_vcf / "NA12249.hg38.g.vcf.gz", secret)
    os.symlink(secret, landing / "NA12249 link.g.vcf.gz")

    result = tick(instance, resources)

    assert [r.partition_key for r in result.run_requests] == [pseudonymous_id("HG00187", key)]
    assert set(json.loads(result.cursor)["seen"]) == {"landing/Émile Zola (HG00187).g.vcf.gz",
                                                      "landing/NA12249 link.g.vcf.gz"}
    token = SampleIdPolicy(key=key).file_token("landing/NA12249 link.g.vcf.gz")
    quarantined = sorted(o.key for o in store.list_objects("quarantine/"))
    assert len(quarantined) == 1 and quarantined[0].startswith(f"quarantine/landing/{token}-")
    reason = json.loads(store.read_bytes(quarantined[0]))
    assert reason["code"] == "unreadable_landed_file" and reason["quarantined_copy"] is None
    assert not [k for k in quarantined if "NA12249" in k or "link" in k]
    logged = capsys.readouterr().err  # the sensor's log lines (dagster logs to stderr)
    assert "quarantined a landed file (unreadable_landed_file)" in logged and "NA12249" not in logged
