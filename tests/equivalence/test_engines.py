"""The two engines write the same tables: the in-process converter and the Hail job on local Spark.

The same real gVCFs (all 40 bundled 1000 Genomes chr22 excerpts) and the 100-sample cohort, plus two
small hand-written files that hold the cases real data rarely has (partial and haploid calls, no-calls
in split records, undeclared INFO keys, unsorted FILTER lists, spanning deletions, missing AD depths),
are converted by both engines; every sample's two tables must be identical: schema (names, types,
nullability), row multiset (every value, lists and missing values included) and the per-sample counts.
Hail is the reference implementation (DESIGN §4): a difference is a bug in one of them.
"""

import gzip
import importlib.util
import json
import os
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.vcf.batch import ConversionJob, ConversionManifest
from genolake_assets.lib.lake.identifiers import sample_id_for
from genolake_assets.lib.vcf.schema import TABLES
from genolake_assets.lib.vcf.convert import convert_to_staging
from genolake_assets.lib.vcf.header import read_header
from genolake_assets.resources.conversion.engine import ConverterResource, EngineUnavailable

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "data" / "vcf"  # the real data make demo ingests (a copy of ../shared/data/vcf)
SHARED = REPO.parent / "shared" / "data" / "vcf"
EDGE = REPO / "tests" / "data" / "vcf" / "engines"
GVCFS = sorted((BUNDLED / "1kg_chr22_gvcf").glob("*.g.vcf.gz"))
COHORT = BUNDLED / "1kg_chr20_100samples_GRCh37.vcf"
EDGE_FILES = [EDGE / "edge_cases.g.vcf", EDGE / "edge_cases_cohort.vcf"]
BAD = SHARED / "bad" / "malformed.vcf"

if importlib.util.find_spec("hail") is None:
    if os.environ.get("GENOLAKE_REQUIRE_HAIL") == "1":
        pytest.fail("GENOLAKE_REQUIRE_HAIL=1 but hail is not installed (make install installs the hail extra)",
                    pytrace=False)
    pytest.skip("hail is not installed (pip install -e '.[hail]')", allow_module_level=True)

pytestmark = pytest.mark.slow


def _job(index: int, vcf: Path, root: Path) -> ConversionJob:
    return ConversionJob(f"vcf{index:03d}", str(vcf), {n: sample_id_for(n) for n in read_header(vcf).samples},
                         str(root / f"vcf{index:03d}"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Both engines over the same files; Hail in one batch with a malformed VCF among them."""
    root = tmp_path_factory.mktemp("engines")
    files = [*GVCFS, COHORT, *EDGE_FILES]
    assert len(GVCFS) == 40 and COHORT.is_file(), f"bundled data missing under {BUNDLED}"
    jobs = [_job(i, vcf, root / "hail") for i, vcf in enumerate([*files, BAD])]
    manifest = ConversionManifest(jobs, result_uri=str(root / "hail" / "result.json"))
    log: list[str] = []
    hail = ConverterResource(engine="hail").convert_batch(None, manifest, None, log.append)
    arrow = {job.job_id: convert_to_staging(job.vcf_uri, root / "arrow" / job.job_id, list(job.samples),
                                            sample_ids=job.samples) for job in jobs[:-1]}
    return {"jobs": jobs, "hail": {o.job_id: o for o in hail.outcomes}, "arrow": arrow, "log": log,
            "result": hail}


def _rows(path: str) -> Counter:
    table = pq.read_table(path)
    return Counter(json.dumps(row, sort_keys=True, default=str) for row in table.to_pylist())


def _pairs(converted):
    for job in converted["jobs"][:-1]:
        hail, arrow = converted["hail"][job.job_id].report, converted["arrow"][job.job_id]
        for name in job.samples:
            yield job, name, hail.samples[name], arrow.samples[name]


def test_every_good_file_converts_and_the_bad_one_is_reported_alone(converted):
    outcomes = converted["hail"]
    bad = outcomes[converted["jobs"][-1].job_id]
    assert not bad.ok and bad.problem.file == str(BAD) and bad.problem.problem
    good = [o for job_id, o in outcomes.items() if job_id != converted["jobs"][-1].job_id]
    assert len(good) == 43 and all(o.ok for o in good), [str(o.problem) for o in good if not o.ok]
    assert converted["result"].engine == "genolake-hail" and converted["result"].spark["hail_version"]
    assert sum(len(o.report.samples) for o in good) == 40 + 100 + 1 + 3


def test_schemas_are_identical(converted):
    for job, name, hail, arrow in _pairs(converted):
        for table in TABLES:
            hail_schema = pq.read_schema(hail.files[table])
            assert hail_schema.equals(pq.read_schema(arrow.files[table])), (job.vcf_uri, name, table)


def test_rows_are_identical_values_lists_and_missing_values_included(converted):
    checked = Counter()
    for job, name, hail, arrow in _pairs(converted):
        for table in TABLES:
            hail_rows, arrow_rows = _rows(hail.files[table]), _rows(arrow.files[table])
            only_hail, only_arrow = hail_rows - arrow_rows, arrow_rows - hail_rows
            assert not only_hail and not only_arrow, (
                f"{job.vcf_uri} {name} {table}: {sum(only_arrow.values())} rows only from arrow, e.g. "
                f"{next(iter(only_arrow), None)}; {sum(only_hail.values())} only from hail, e.g. "
                f"{next(iter(only_hail), None)}")
            checked[table] += sum(hail_rows.values())
    assert checked["variants"] > 5_000 and checked["reference_blocks"] > 30_000, checked


def test_counts_and_accounting_are_identical(converted):
    for job, name, hail, arrow in _pairs(converted):
        for field in ("sample_id", "variant_rows", "reference_block_rows", "variant_records",
                      "reference_block_records", "spanning_deletion_records"):
            assert getattr(hail, field) == getattr(arrow, field), (job.vcf_uri, name, field)
        report = converted["hail"][job.job_id].report
        assert report.records_read == converted["arrow"][job.job_id].records_read
        assert hail.variant_records + hail.reference_block_records + hail.spanning_deletion_records == \
            report.records_read


def test_the_edge_cases_are_really_exercised(converted):
    """The hand-written files must keep holding what they are for (else the equality above proves less)."""
    job = next(j for j in converted["jobs"] if j.vcf_uri.endswith("edge_cases.g.vcf"))
    variants = pq.read_table(converted["hail"][job.job_id].report.samples["EDGE1"].files["variants"]).to_pylist()
    by_locus = {(r["pos"], r["alt"]): r for r in variants}
    assert by_locus[(130, "C")]["filters"] == ["LowQual", "q10"]  # FILTER is a set: sorted
    assert by_locus[(130, "C")]["gt"] == [0, 1]  # 1/2 downcoded for C is 1/0, stored unphased ascending
    assert by_locus[(130, "C")]["undeclared_info"] == "XX=7;FLAGGY"
    assert by_locus[(150, "C")]["gt"] is None and by_locus[(150, "C")]["fmt_ad"] == [None, None]
    assert by_locus[(150, "G")]["fmt_ad"] == [3, 4]  # Hail's sum skips the missing depth
    assert by_locus[(151, "C")]["fmt_pl"] is None and by_locus[(151, "C")]["fmt_gq"] == 20  # no call: GQ kept
    assert by_locus[(500, "T")]["fmt_pl"] == [200, 0] and by_locus[(500, "T")]["gt"] == [1]  # haploid split
    assert (141, "*") not in by_locus and all(r["alt"] not in ("*", "<NON_REF>") for r in variants)


def test_a_bed_region_filter_keeps_records_starting_in_its_intervals(tmp_path):
    bed = tmp_path / "regions.bed"
    bed.write_text("chr22\t10685500\t10690000\n20\t14000000\t16000000\n")  # 0-based, half-open
    vcfs = [GVCFS[0], COHORT]
    jobs = [_job(i, vcf, tmp_path / "hail") for i, vcf in enumerate(vcfs)]
    manifest = ConversionManifest(jobs, result_uri=str(tmp_path / "result.json"), regions_bed_uri=str(bed))
    outcomes = ConverterResource(engine="hail").convert_batch(None, manifest, None, lambda line: None).outcomes
    assert all(o.ok for o in outcomes), [str(o.problem) for o in outcomes]
    for job, outcome in zip(jobs, outcomes):
        arrow = convert_to_staging(job.vcf_uri, tmp_path / "arrow" / job.job_id, list(job.samples),
                                   sample_ids=job.samples)
        for name, sample in outcome.report.samples.items():
            for table in TABLES:
                kept = pq.read_table(sample.files[table]).to_pylist()
                # expected: the arrow engine's rows of records whose POS (before min_rep) is in an interval
                expected = [r for r in pq.read_table(arrow.samples[name].files[table]).to_pylist()
                            if (r["contig"] == "chr22" and 10685500 < _record_pos(r) <= 10690000)
                            or (r["contig"] == "20" and 14000000 < _record_pos(r) <= 16000000)]
                assert Counter(map(json.dumps, kept)) == Counter(map(json.dumps, expected)), (name, table)
                assert len(kept) < len(pq.read_table(arrow.samples[name].files[table])) or not kept
        assert 0 < outcome.report.records_read < _records_in(job.vcf_uri)


def _record_pos(row: dict) -> int:
    """The record's POS: a split row's min_rep moved ``pos`` by the prefix it trimmed from REF (the BED
    intervals above end far from any such record, where this reading could be ambiguous)."""
    if row.get("was_split"):
        return row["pos"] - row["alleles"][0].index(row["ref"]) if row["ref"] in row["alleles"][0] else row["pos"]
    return row["pos"]


def _records_in(vcf: str) -> int:
    opener = gzip.open if vcf.endswith(".gz") else open
    with opener(vcf, "rt") as handle:
        return sum(1 for line in handle if not line.startswith("#"))


def test_the_in_process_engine_refuses_a_bed_filter_rather_than_ignoring_it(tmp_path):
    manifest = ConversionManifest([_job(0, GVCFS[0], tmp_path)], result_uri=str(tmp_path / "r.json"),
                                  regions_bed_uri=str(tmp_path / "x.bed"))
    with pytest.raises(EngineUnavailable, match="engine=hail"):
        ConverterResource(engine="arrow").convert_batch(None, manifest, None, print)


def test_the_hail_engine_through_dagster_publishes_the_same_partitions(instance_and_resources, tmp_path):
    """GENOLAKE_ENGINE=hail in the local profile: a real backfill run converts two samples with Hail (one
    Spark job for the batch) and publishes what the in-process engine would have written."""
    import dagster as dg

    from tests.pipeline.helpers import INGEST_ASSETS, tick

    instance, resources = instance_and_resources
    store = resources["lake"].store()
    for path in (GVCFS[0], GVCFS[1]):
        store.upload(path, f"landing/{path.name}")
    keys = sorted(r.partition_key for r in tick(instance, resources).run_requests)
    result = dg.materialize(INGEST_ASSETS, instance=instance, resources=resources, tags={
        "dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]})
    assert result.success
    events = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()
              if e.asset_key.path == ["sample_variants"]}
    for key, vcf in zip(keys, (GVCFS[0], GVCFS[1])):
        published = store.local_path(f"variants/sample_id={key}/part-00000.parquet")
        arrow = convert_to_staging(vcf, tmp_path / key, sample_ids={key: key})
        assert _rows(str(published)) == _rows(arrow.samples[key].files["variants"])
        assert events[key]["engine"].value.startswith("genolake-hail")
        assert events[key]["rows"].value == arrow.samples[key].variant_rows
        assert events[key]["written_by"].value.startswith("parquet-cpp-arrow")  # genolake's writer, not Spark's
    assert not list(store.list_objects("staging"))


@pytest.fixture
def instance_and_resources(monkeypatch, tmp_path):
    import dagster as dg

    from genolake_assets.resources.profile import build_resources
    from genolake_assets.settings import Settings

    monkeypatch.setenv("GENOLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GENOLAKE_PROFILE", "local")
    monkeypatch.setenv("GENOLAKE_ENGINE", "hail")
    resources = build_resources(Settings.from_env())
    assert resources["converter"].engine == "hail"
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance, resources


def test_genolake_convert_with_the_hail_engine_writes_the_default_engines_lake(tmp_path):
    import subprocess
    import sys

    vcf = EDGE_FILES[1]
    for engine in ("arrow", "hail"):
        done = subprocess.run([sys.executable, "-m", "genolake_assets.cli", "convert", "--engine", engine, "--quiet",
                               str(vcf), str(tmp_path / engine)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "records from" in done.stdout
    for table in TABLES:
        for sample_id in ("S1", "S2", "S3"):
            files = [tmp_path / e / table / f"sample_id={sample_id}" / "part-00000.parquet" for e in ("arrow", "hail")]
            assert _rows(str(files[0])) == _rows(str(files[1]))
    assert not (tmp_path / "hail" / "_staging").exists()

    bad = subprocess.run([sys.executable, "-m", "genolake_assets.cli", "convert", "--engine", "hail", "--quiet",
                          str(BAD), str(tmp_path / "bad")], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and str(BAD) in bad.stderr
    assert not any((tmp_path / "bad").rglob("*.parquet"))
