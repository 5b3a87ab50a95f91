"""Hostile and awkward landed files (issue 21, item 3): one bad file never stalls a landing sensor.

Real files in a temporary lake, real ticks of both landing sensors on an ephemeral instance. Every
refused file leaves a reason under ``quarantine/`` (a copy too, when it can be copied safely), the other
files of the same tick are requested, and the cursor moves past all of them.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from genolake_assets.lib.alignments.registry import load_alignment
from genolake_assets.lib.lake.identifiers import is_safe_sample_id, require_safe_key
from genolake_assets.lib.lake.records import load_record
from tests.pipeline.helpers import INGEST_ASSETS, ingest, tick
from tests.pipeline.helpers import alignment_tick as bam_tick

REPO = Path(__file__).resolve().parents[2]
DATA_BAM = REPO / "tests" / "data" / "bam"
AWKWARD_VCF_NAMES = ["my sample.g.vcf.gz", "x(1).g.vcf.gz", "résumé.g.vcf.gz"]
AWKWARD_BAM_NAMES = ["my sample.bam", "x(1).bam", "résumé.bam"]


def put(store, source: Path, name: str) -> Path:
    """A file put into landing/ behind the store's back, as an uploader or a shared folder does."""
    target = store.root / "landing" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def reasons(store) -> dict[str, dict]:
    """Every reason.json under quarantine/, by the landed key it is about."""
    found = {}
    for obj in store.list_objects("quarantine"):
        if obj.key.endswith("/reason.json"):
            reason = json.loads(store.read_bytes(obj.key))
            found[reason["source_key"]] = {**reason, "_key": obj.key}
    return found


def seen(result: dg.SensorResult) -> set[str]:
    return set(json.loads(result.cursor)["seen"])


# -- names people really use ------------------------------------------------------------------------


def test_vcfs_named_with_spaces_parentheses_and_accents_ingest_under_safe_keys(instance, resources, store, data_vcf):
    sources = ["HG00187", "HG00190", "HG01377"]
    for name, sample in zip(AWKWARD_VCF_NAMES, sources, strict=True):
        put(store, data_vcf / f"{sample}.hg38.g.vcf.gz", name)

    result = tick(instance, resources)

    assert sorted(r.partition_key for r in result.run_requests) == sources
    assert seen(result) == {f"landing/{name}" for name in AWKWARD_VCF_NAMES}
    assert not reasons(store)
    # The original name stays visible where it was shown: run tags and the landing index.
    shown = {r.partition_key: r.tags["genolake/source_uri"] for r in result.run_requests}
    assert shown["HG00187"].endswith("/landing/my sample.g.vcf.gz")
    assert shown["HG01377"].endswith("/landing/résumé.g.vcf.gz")

    run = ingest(instance, resources, "HG01377")
    assert run.success
    record = load_record(store, "HG01377")
    assert record.source_uri.endswith("/landing/résumé.g.vcf.gz") and record.source_key == "landing/résumé.g.vcf.gz"
    require_safe_key(record.raw_key)  # the lake's own copy is named safely
    assert record.raw_key.endswith("/resume.g.vcf.gz")
    assert store.get_tags("landing/résumé.g.vcf.gz") == {"genolake-copied": "true"}


def test_bams_named_with_spaces_parentheses_and_accents_get_safe_ids_and_compress(instance, resources, store):
    for name in AWKWARD_BAM_NAMES:
        put(store, DATA_BAM / "ce1000.bam", name)
    for suffix in ("", ".fai", ".gzi"):
        store.upload(DATA_BAM / "ref" / f"ce.fa.gz{suffix}", f"landing/references/ce.fa.gz{suffix}")

    result = bam_tick(instance, resources)

    compressions = [r for r in result.run_requests if r.job_name == "compress_alignments"]
    assert len(compressions) == 3 and all(is_safe_sample_id(r.partition_key) for r in compressions)
    assert seen(result) >= {f"landing/{name}" for name in AWKWARD_BAM_NAMES}
    by_name = {load_alignment(store, r.partition_key).source_key: r.partition_key for r in compressions}
    assert set(by_name) == {f"landing/{name}" for name in AWKWARD_BAM_NAMES}
    alignment_id = by_name["landing/x(1).bam"]
    assert alignment_id.startswith("x_1-")

    from genolake_assets.assets.alignments import alignment_file_catalog, compressed_bam, raw_bam, reference_genomes

    assert dg.materialize([reference_genomes], instance=instance, resources=resources).success
    run = dg.materialize([raw_bam, compressed_bam, alignment_file_catalog], partition_key=alignment_id,
                         instance=instance, resources=resources, raise_on_error=False)
    assert run.success
    record = load_alignment(store, alignment_id)
    assert record.status == "archive-tagged" and record.source_uri.endswith("/landing/x(1).bam")
    require_safe_key(record.raw_key)
    require_safe_key(record.cram_key)


@pytest.mark.parametrize("key", ["landing/my sample.vcf.gz", "landing/x(1).bam", "landing/résumé.vcf.gz",
                                 "landing/run 1/O'Brien [2] #3.g.vcf.gz", "landing/样本.vcf"])
def test_landed_names_people_use_are_readable_keys_and_map_to_safe_names(key):
    from genolake_assets.lib.lake.quarantine import safe_file_name

    assert require_safe_key(key) == key
    assert require_safe_key(f"raw/{safe_file_name(key)}")


@pytest.mark.parametrize("key", ["landing/a\nb.vcf", "landing/a\x00b.vcf", "landing/a\u202eb.vcf", "landing/r\udce9.vcf",
                                 "landing/a\\b.vcf", "landing/../registry/x.json", "raw/my sample.vcf", "variants/a b"])
def test_keys_with_control_characters_or_outside_landing_stay_refused(key):
    from genolake_assets.lib.lake.identifiers import InvalidIdentifierError

    with pytest.raises(InvalidIdentifierError):
        require_safe_key(key)


# -- one bad file, the others still go ----------------------------------------------------------------


def tick_beside_good_files(instance, resources, store, data_vcf):
    """Land a good VCF and a good BAM beside the bad files, tick both sensors: the good ones are requested."""
    put(store, data_vcf / "HG00187.hg38.g.vcf.gz", "b-good.g.vcf.gz")
    put(store, DATA_BAM / "ce1000.bam", "b-good.bam")
    vcfs = tick(instance, resources)
    bams = bam_tick(instance, resources)
    assert [r.partition_key for r in vcfs.run_requests] == ["HG00187"]
    assert [r.partition_key for r in bams.run_requests] == ["b-good"]
    return vcfs, bams


def test_a_symlink_leading_out_of_the_lake_is_refused_not_followed_and_the_tick_goes_on(
        instance, resources, store, data_vcf, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret_vcf = outside / "secret.g.vcf.gz"
    shutil.copyfile(data_vcf / "HG00190.hg38.g.vcf.gz", secret_vcf)
    secret_bam = outside / "secret.bam"
    shutil.copyfile(DATA_BAM / "ce1000.bam", secret_bam)
    (store.root / "landing").mkdir(parents=True, exist_ok=True)
    os.symlink(secret_vcf, store.root / "landing" / "a-link.g.vcf.gz")
    os.symlink(secret_bam, store.root / "landing" / "a-link.bam")
    vcfs, bams = tick_beside_good_files(instance, resources, store, data_vcf)
    assert "landing/a-link.g.vcf.gz" in seen(vcfs) and "landing/a-link.bam" in seen(bams)
    found = reasons(store)
    for key in ("landing/a-link.g.vcf.gz", "landing/a-link.bam"):
        assert found[key]["code"] == "unreadable_landed_file"
        assert "outside the lake" in found[key]["problem"]
        assert found[key]["quarantined_copy"] is None
    # Nothing from outside was read into the lake.
    secrets = {secret_vcf.read_bytes(), secret_bam.read_bytes()}
    assert not [p for p in store.root.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() in secrets
                and "landing" not in p.relative_to(store.root).parts[:1]]
    # A later tick does not try again (the cursor moved), and does not fail.
    assert not tick(instance, resources, cursor=vcfs.cursor).run_requests


def test_a_name_the_store_cannot_take_is_recorded_and_the_tick_goes_on(instance, resources, store, data_vcf):
    put(store, data_vcf / "HG00190.hg38.g.vcf.gz", "a\nnewline.g.vcf.gz")
    put(store, data_vcf / "HG00190.hg38.g.vcf.gz", "a\nnewline.bam")
    vcfs, bams = tick_beside_good_files(instance, resources, store, data_vcf)
    found = reasons(store)
    assert found["landing/a\nnewline.g.vcf.gz"]["code"] == "unsafe_landed_name"
    assert found["landing/a\nnewline.bam"]["code"] == "unsafe_landed_name"
    assert all(require_safe_key(reason["_key"]) for reason in found.values())


def test_a_fifo_in_landing_does_not_hang_the_tick(instance, resources, store, data_vcf):
    (store.root / "landing").mkdir(parents=True, exist_ok=True)
    os.mkfifo(store.root / "landing" / "a-pipe.vcf")
    put(store, data_vcf / "HG00187.hg38.g.vcf.gz", "b-good.g.vcf.gz")

    result = tick(instance, resources)

    assert [r.partition_key for r in result.run_requests] == ["HG00187"]
    assert reasons(store)["landing/a-pipe.vcf"]["code"] == "unreadable_landed_file"


def test_anything_raising_on_one_file_quarantines_it_and_the_tick_goes_on(instance, resources, store, data_vcf,
                                                                         monkeypatch):
    from genolake_assets.sensors import landing

    real = landing.parse_header

    def breaks_on_one_file(lines, path):
        if "a-breaks" in path:
            raise RuntimeError("something nobody thought of")
        return real(lines, path)

    monkeypatch.setattr(landing, "parse_header", breaks_on_one_file)
    put(store, data_vcf / "HG00190.hg38.g.vcf.gz", "a-breaks.g.vcf.gz")
    put(store, data_vcf / "HG00187.hg38.g.vcf.gz", "b-good.g.vcf.gz")

    result = tick(instance, resources)

    assert [r.partition_key for r in result.run_requests] == ["HG00187"]
    reason = reasons(store)["landing/a-breaks.g.vcf.gz"]
    assert reason["code"] == "unreadable_landed_file" and "something nobody thought of" in reason["problem"]
    assert reason["quarantined_copy"].endswith("/a-breaks.g.vcf.gz")  # a regular file: copied aside


def test_a_quarantine_never_overwrites_another_files_reason(instance, resources, store, data_vcf):
    bad = (data_vcf / "bad" / "bad_flag_number.vcf").read_bytes()
    for folder in ("run1", "run2"):  # same name, same bytes, same mtime: the same quarantine folder before
        target = store.root / "landing" / folder / "bad.vcf"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bad)
        os.utime(target, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))

    tick(instance, resources)

    assert set(reasons(store)) == {"landing/run1/bad.vcf", "landing/run2/bad.vcf"}


# -- a 4 GB header line in a small file ------------------------------------------------------------


def _gzip_with_a_long_meta_line(path: Path, line_bytes: int) -> None:
    """A gzip VCF whose second line is a ``##`` line of ``line_bytes`` bytes, written lazily (level 1)."""
    piece = b"A" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b"##fileformat=VCFv4.2\n##junk=")
        for _ in range(line_bytes // len(piece)):
            out.write(piece)
        out.write(b"\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n")


_TICK_IN_A_FRESH_PROCESS = textwrap.dedent("""
    import json, resource, sys
    import dagster as dg
    from genolake_assets.resources.profile import build_resources
    from genolake_assets.settings import Settings
    from genolake_assets.sensors.landing import landing_sensor

    resources = build_resources(Settings.from_env())
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"lake": resources["lake"]})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = landing_sensor(context)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kib": after - before, "requested": [r.partition_key for r in result.run_requests],
                      "seen": sorted(json.loads(result.cursor)["seen"])}))
""")


@pytest.mark.parametrize("limit", [None, 1 << 20], ids=["default-64MiB", "env-1MiB"])
def test_a_huge_header_line_is_refused_after_reading_at_most_the_limit(lake_home, store, data_vcf, tmp_path, limit):
    line_bytes = 320 << 20  # 320 MiB of one line, ~0.3 MB gzipped: reading it whole is what must not happen
    (store.root / "landing").mkdir(parents=True, exist_ok=True)
    _gzip_with_a_long_meta_line(store.root / "landing" / "a-long-line.vcf.gz", line_bytes)
    put(store, data_vcf / "HG00187.hg38.g.vcf.gz", "b-good.g.vcf.gz")
    env = {**os.environ, "GENOLAKE_HOME": str(lake_home), "GENOLAKE_PROFILE": "local"}
    env.pop("GENOLAKE_MAX_LINE_BYTES", None)
    if limit:
        env["GENOLAKE_MAX_LINE_BYTES"] = str(limit)

    done = subprocess.run([sys.executable, "-c", _TICK_IN_A_FRESH_PROCESS], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["requested"] == ["HG00187"]
    assert outcome["seen"] == ["landing/a-long-line.vcf.gz", "landing/b-good.g.vcf.gz"]
    allowed = (limit or 64 << 20) * 3 + (48 << 20)  # the limit, a decoded copy, one chunk, some slack
    assert outcome["growth_kib"] * 1024 < min(allowed, line_bytes // 2), outcome
    reason = reasons(store)["landing/a-long-line.vcf.gz"]
    assert reason["code"] == "line_too_long" and reason["line"] == 2


def test_awkward_names_landed_in_s3_ingest_and_a_bad_one_does_not_stop_the_tick(moto_endpoint, bucket, raw_s3,
                                                                               tmp_path, data_vcf, instance):
    from genolake_assets.resources.catalog.duckdb_catalog import DuckDbCatalog
    from genolake_assets.resources.conversion.engine import ConverterResource
    from genolake_assets.resources.lake.lake import LakeResource

    lake = LakeResource(profile="aws", home=str(tmp_path / "home"), s3_bucket=bucket, s3_prefix="lake",
                        endpoint_url=moto_endpoint, region="us-east-1")
    resources = {"lake": lake, "converter": ConverterResource(),
                 "catalog": DuckDbCatalog(database=str(tmp_path / "catalog.duckdb"), lake_root=str(tmp_path / "x"))}
    raw_s3.upload_file(str(data_vcf / "HG00187.hg38.g.vcf.gz"), bucket, "lake/landing/run 1/my sample (1).g.vcf.gz")
    raw_s3.put_object(Bucket=bucket, Key="lake/landing/a\u202ebroken.vcf", Body=b"##fileformat=VCFv4.2\n")
    raw_s3.upload_file(str(data_vcf / "HG00190.hg38.g.vcf.gz"), bucket, "lake/landing/résumé.g.vcf.gz")

    result = tick(instance, resources)

    assert sorted(r.partition_key for r in result.run_requests) == ["HG00187", "HG00190"]
    assert len(seen(result)) == 3
    store = lake.store()
    assert reasons(store)["landing/a\u202ebroken.vcf"]["code"] == "unsafe_landed_name"
    run = dg.materialize(INGEST_ASSETS, partition_key="HG00187", instance=instance, resources=resources)
    assert run.success
    record = load_record(store, "HG00187")
    assert record.source_key == "landing/run 1/my sample (1).g.vcf.gz"
    assert record.raw_key.endswith("/my_sample__1_.g.vcf.gz")
    assert store.exists("variants/sample_id=HG00187/part-00000.parquet")
