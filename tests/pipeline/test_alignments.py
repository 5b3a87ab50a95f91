"""The alignment assets in the local profile, driven like the daemon drives them: sensor tick, then runs.

Real BAMs and references (tests/data/bam), the real compression program as a subprocess, a real
SQLite file catalog, real tags in the local lake.
"""

import json
from pathlib import Path

import dagster as dg
import pysam
import pytest

from genolake_assets.assets.alignments import alignment_file_catalog, compressed_bam, raw_bam, reference_genomes
from genolake_assets.assets.alignments import lake_lifecycle_policy
from genolake_assets.lib.alignments.registry import load_alignment
from genolake_assets.lib.lake.layout import cram_key
from genolake_assets.lib.lake.lifecycle import ARCHIVE_TAG_KEY
from tests.pipeline.helpers import alignment_tick as tick

DATA_BAM = Path(__file__).resolve().parents[1] / "data" / "bam"
COMPRESS_ASSETS = [raw_bam, compressed_bam, alignment_file_catalog]
NA12878 = "NA12878.chr22.tiny"
HTSNEXUS = "htsnexus_NA12878.chr11_5.0-5.1Mb"


def land_reference(store, name: str) -> None:
    for suffix in ("", ".fai", ".gzi"):
        store.upload(DATA_BAM / "ref" / f"{name}{suffix}", f"landing/references/{name}{suffix}")


def compress(instance, resources, partition: str, **config) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"compressed_bam": {"config": config}}} if config else None
    return dg.materialize(COMPRESS_ASSETS, partition_key=partition, instance=instance, resources=resources,
                          run_config=run_config, raise_on_error=False)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {key: value.value for key, value in event.materialization.metadata.items()}
    raise AssertionError(f"{asset} was not materialised")


@pytest.fixture
def landed(instance, resources, store):
    """Two real BAMs and their real references landed, the sensor ticked once."""
    for name in ("ce1000.bam", f"{NA12878}.bam"):
        store.upload(DATA_BAM / name, f"landing/{name}")
    land_reference(store, "ce.fa.gz")
    land_reference(store, "q.fa.gz")
    return tick(instance, resources)


def test_the_sensor_requests_one_compression_run_per_bam_and_one_reference_registration(landed, instance):
    jobs = sorted((request.job_name, request.partition_key) for request in landed.run_requests)
    assert jobs == [("compress_alignments", NA12878), ("compress_alignments", "ce1000"), ("register_references", None)]
    assert set(instance.get_dynamic_partitions("alignments")) == {"ce1000", NA12878}


def test_a_second_tick_requests_nothing_and_a_replay_reuses_the_run_keys(landed, instance, resources):
    again = tick(instance, resources, cursor=landed.cursor)
    replay = tick(instance, resources, cursor=None)

    assert not again.run_requests
    assert {r.run_key for r in replay.run_requests} == {r.run_key for r in landed.run_requests}


def test_landed_bams_become_verified_catalogued_crams_and_the_originals_are_tagged(landed, instance, resources, store):
    assert dg.materialize([reference_genomes], instance=instance, resources=resources).success

    for partition, records in (("ce1000", 1000), (NA12878, 3333)):
        result = compress(instance, resources, partition)
        assert result.success, partition
        compressed = metadata(result, "compressed_bam")
        assert compressed["records"] == records
        assert compressed["ratio"] > 1.4
        record = load_alignment(store, partition)
        assert record.status == "archive-tagged"
        # The published CRAM decodes to as many reads as the BAM holds (counted independently here).
        cram = store.local_path(record.cram_key)
        reference = store.local_path(record.reference_key)
        with pysam.AlignmentFile(str(cram), "rc", reference_filename=str(reference)) as handle:
            assert sum(1 for _ in handle.fetch(until_eof=True)) == records
        tags = store.get_tags(record.raw_key)
        assert tags[ARCHIVE_TAG_KEY] == "verified" and tags["genolake-cram"] == record.cram_key
        # Its bytes are in raw/bam/: the landed copy may now expire (lifecycle rule).
        assert store.get_tags(record.source_key) == {"genolake-copied": "true"}

    catalog = resources["file_catalog"]
    crams = catalog.entries("cram")
    assert {entry.file_name for entry in crams} == {"ce1000.cram", f"{NA12878}.cram"}
    na12878 = next(entry for entry in crams if entry.file_name == f"{NA12878}.cram")
    assert na12878.reference_uri.endswith("/q.fa.gz") and na12878.reference_md5
    assert na12878.source_uri == store.uri(load_alignment(store, NA12878).raw_key)
    assert {entry.status for entry in catalog.entries("bam")} == {"archive-tagged"}
    assert len(catalog.entries("fasta")) == 2


def test_rematerialising_is_idempotent_and_writes_no_second_entry(landed, instance, resources, store):
    first = compress(instance, resources, "ce1000")
    second = compress(instance, resources, "ce1000")

    assert first.success and second.success
    assert metadata(second, "alignment_file_catalog")["entries_written"] == {"cram": False, "bam": False, "fasta": False}
    assert len(resources["file_catalog"].entries()) == 3


def test_the_same_bam_landed_again_is_recognised_not_copied_compressed_or_catalogued_again(landed, instance,
                                                                                           resources, store):
    assert compress(instance, resources, "ce1000").success
    first = load_alignment(store, "ce1000")
    store.upload(DATA_BAM / "ce1000.bam", "landing/ce1000.bam")  # copied again: a new mtime, a new etag
    assert store.head("landing/ce1000.bam").etag != first.source_etag

    again = tick(instance, resources, cursor=landed.cursor)
    assert [request.partition_key for request in again.run_requests] == ["ce1000"]
    result = compress(instance, resources, "ce1000")

    assert result.success
    assert metadata(result, "raw_bam")["copied"] is False and metadata(result, "raw_bam")["version"] == first.version
    assert metadata(result, "compressed_bam")["job_id"] == "reused"
    assert metadata(result, "alignment_file_catalog")["entries_written"] == {"cram": False, "bam": False,
                                                                             "fasta": False}
    assert [obj.key for obj in store.list_objects("raw/bam/ce1000/")] == [first.raw_key]
    assert [obj.key for obj in store.list_objects("alignments/cram/ce1000/")] == [first.cram_key,
                                                                                  first.cram_key + ".crai"]
    assert load_alignment(store, "ce1000").status == "archive-tagged"


def test_a_cram_a_killed_compression_published_is_finished_by_the_next_run(landed, instance, resources, store):
    assert dg.materialize([raw_bam], partition_key="ce1000", instance=instance, resources=resources).success
    record = load_alignment(store, "ce1000")
    orphan = cram_key("ce1000", record.version, "ce1000.bam")
    store.write_bytes(orphan, b"a CRAM published by a compression killed before it wrote its result")

    result = compress(instance, resources, "ce1000")

    assert result.success
    finished = load_alignment(store, "ce1000")
    assert finished.cram_key == orphan and finished.status == "archive-tagged"
    assert store.head(orphan).size == metadata(result, "compressed_bam")["cram_bytes"]
    assert resources["file_catalog"].get(store.uri(orphan)).status == "verified"


def test_a_cram_nothing_vouches_for_is_removed_when_a_new_version_of_its_bam_lands(landed, instance, resources,
                                                                                    store):
    assert dg.materialize([raw_bam], partition_key="ce1000", instance=instance, resources=resources).success
    old = load_alignment(store, "ce1000")
    orphan = cram_key("ce1000", old.version, "ce1000.bam")
    store.write_bytes(orphan, b"a CRAM published by a compression killed before it wrote its result")
    store.write_bytes(orphan + ".crai", b"its index")
    store.upload(DATA_BAM / f"{NA12878}.bam", "landing/ce1000.bam")  # other bytes under the same name
    tick(instance, resources, cursor=landed.cursor)

    result = compress(instance, resources, "ce1000")

    assert result.success
    assert metadata(result, "raw_bam")["unvouched_crams_removed"] == 2
    assert not store.exists(orphan) and not store.exists(orphan + ".crai")
    assert store.exists(old.raw_key)  # the earlier upload's raw copy is the lab's data: kept
    assert load_alignment(store, "ce1000").version != old.version


def test_a_truncated_bam_is_refused_untouched_untagged_and_uncatalogued(instance, resources, store, tmp_path):
    cut = tmp_path / "cut.bam"
    cut.write_bytes((DATA_BAM / "ce1000.bam").read_bytes()[:30_000])
    store.upload(cut, "landing/cut.bam")
    land_reference(store, "ce.fa.gz")
    tick(instance, resources)
    # A good BAM in the same backfill still goes through.
    store.upload(DATA_BAM / "ce1000.bam", "landing/ce1000.bam")
    tick(instance, resources, cursor=None)

    bad = compress(instance, resources, "cut")
    good = compress(instance, resources, "ce1000")

    assert not bad.success and good.success
    record = load_alignment(store, "cut")
    assert record.status == "quarantined" and "truncated BAM" in record.reason and "cut.bam" in record.reason
    reasons = [obj.key for obj in store.list_objects("quarantine/alignments/cut")]
    assert len(reasons) == 1
    reason = json.loads(store.read_bytes(reasons[0]))
    assert reason["code"] == "truncated_input" and reason["file"].endswith("landing/cut.bam")
    assert store.read_bytes("landing/cut.bam") == cut.read_bytes()  # the upload is untouched
    assert store.get_tags("landing/cut.bam") == {}  # and never expires
    assert not list(store.list_objects("raw/bam/cut"))
    assert [entry.file_name for entry in resources["file_catalog"].entries("bam")] == ["ce1000.bam"]


def test_a_bam_whose_reference_md5s_disagree_is_refused_until_told_otherwise(instance, resources, store):
    store.upload(DATA_BAM / f"{HTSNEXUS}.bam", f"landing/{HTSNEXUS}.bam")
    land_reference(store, "htsnexus_test_NA12878.md_ref.fa.gz")
    tick(instance, resources)

    refused = compress(instance, resources, HTSNEXUS)

    assert not refused.success
    record = load_alignment(store, HTSNEXUS)
    assert record.status == "quarantined" and "M5 disagreement for sequence '11'" in record.reason
    assert store.get_tags(record.raw_key) == {}
    assert not list(store.list_objects("alignments/cram"))
    assert resources["file_catalog"].entries() == []

    # The derived reference is knowingly not the aligner's: allowed explicitly, every base still verified.
    accepted = compress(instance, resources, HTSNEXUS, ignore_md5=True)
    assert accepted.success
    differences = metadata(accepted, "compressed_bam")["accepted_differences"]
    assert differences["unmapped_read_cigar"] == 103


def test_strict_mode_refuses_the_unmapped_read_cigar_crams_cannot_keep(instance, resources, store):
    store.upload(DATA_BAM / f"{HTSNEXUS}.bam", f"landing/{HTSNEXUS}.bam")
    land_reference(store, "htsnexus_test_NA12878.md_ref.fa.gz")
    tick(instance, resources)

    result = compress(instance, resources, HTSNEXUS, ignore_md5=True, strict=True)

    assert not result.success
    record = load_alignment(store, HTSNEXUS)
    assert "does not decode to the original" in record.reason and "unmapped_read_cigar" in record.reason
    assert store.get_tags(record.raw_key) == {} and resources["file_catalog"].entries() == []
    assert not list(store.list_objects("alignments/cram"))


def test_a_bam_without_a_registered_reference_names_what_to_land(instance, resources, store):
    store.upload(DATA_BAM / "ce1000.bam", "landing/ce1000.bam")
    tick(instance, resources)

    result = compress(instance, resources, "ce1000")

    assert not result.success
    reason = load_alignment(store, "ce1000").reason
    assert "no registered reference fits" in reason and "CHROMOSOME_I" in reason and "landing/references/" in reason


def test_the_local_lifecycle_plan_reports_archive_tagged_bams_and_keeps_crams_hot(landed, instance, resources):
    assert compress(instance, resources, NA12878).success

    result = dg.materialize([lake_lifecycle_policy], instance=instance, resources=resources)

    summary = metadata(result, "lake_lifecycle_policy")["summary"]
    assert summary["scheduled → DEEP_ARCHIVE"]["objects"] == 1
    plan = metadata(result, "lake_lifecycle_policy")["plan"]
    assert f"raw/bam/{NA12878}/" in plan
