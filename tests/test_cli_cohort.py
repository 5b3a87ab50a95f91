"""The command line on its own (issue 17 item 6): `genolake convert`, `genolake lookup` (from the per-sample
tables until the lake has a cohort table), `genolake cohort`, `genolake lookup` again, on the real gVCFs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genolake_assets.cli import main
from genolake_assets.lib.cohort.state import STATE_KEY, CohortState
from tests.conftest import require_spark

REPO = Path(__file__).resolve().parent.parent
GVCFS = ["HG00187", "HG00190", "HG01377", "NA12249"]
MARKERS = ["chr22:10685603:T:G", "chr22:10685603:T:C", "22:10600000", "chr22:10752738", "chrX:5000000"]


def convert(lake: Path, data_vcf: Path, *names: str) -> None:
    for name in names:
        assert main(["convert", str(data_vcf / f"{name}.hg38.g.vcf.gz"), str(lake), "--quiet"]) == 0


def state_of(lake: Path) -> CohortState:
    return CohortState.from_json((lake / STATE_KEY).read_bytes())


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_converted_lake_answers_lookups_before_and_after_genolake_cohort(tmp_path, data_vcf, capsys):
    lake = tmp_path / "lake"
    convert(lake, data_vcf, *GVCFS[:3])

    code, before, notice = run(capsys, "lookup", str(lake), *MARKERS)
    assert code == 0
    assert "no cohort table" in notice and f"genolake cohort {lake}" in notice and "per-sample tables" in notice
    assert "3 samples x 5 markers from the per-sample tables" in notice
    before_json = run(capsys, "lookup", str(lake), *MARKERS, "--json")[1]

    code, summary, _ = run(capsys, "cohort", str(lake))
    assert code == 0
    state = state_of(lake)
    assert sorted(state.samples) == GVCFS[:3]
    assert "3 samples (3 added, 0 re-converted)" in summary
    rows = sum(p.rows for p in state.partitions.values())
    assert f"{rows:,} rows, {len(state.partitions)} partitions, {len(state.all_live_keys())} files" in summary

    code, after, cohort_summary = run(capsys, "lookup", str(lake), *MARKERS)
    assert code == 0 and after == before  # the same answers, now from the cohort table
    assert "no cohort table" not in cohort_summary and "3 samples x 5 markers: 1 files opened" in cohort_summary
    assert run(capsys, "lookup", str(lake), *MARKERS, "--json")[1] == before_json
    lines = [line.split("\t") for line in after.splitlines()]  # as in the gVCFs (HG00190: 0/1, GQ 77, DP 9)
    assert lines[1:4] == [["chr22:10685603:T:G", "HG00187", "variant", "0/1", "T", "G", "53", "9"],
                          ["chr22:10685603:T:G", "HG00190", "variant", "0/1", "T", "G", "77", "9"],
                          ["chr22:10685603:T:G", "HG01377", "hom_ref", "0/0", "T", "G", "18", "6"]]


def test_running_cohort_again_after_another_conversion_adds_only_that_sample(tmp_path, data_vcf, capsys):
    lake = tmp_path / "lake"
    convert(lake, data_vcf, *GVCFS[:2])
    assert main(["cohort", str(lake)]) == 0
    first = state_of(lake)
    convert(lake, data_vcf, GVCFS[2])

    code, summary, _ = run(capsys, "cohort", str(lake))

    second = state_of(lake)
    assert code == 0 and "3 samples (1 added, 0 re-converted)" in summary
    assert {s: t for s, t in second.samples.items() if s in first.samples} == first.samples
    for name, partition in first.partitions.items():  # earlier files untouched, one new delta at most
        assert second.partitions[name].files[:len(partition.files)] == partition.files
        assert len(second.partitions[name].files) <= len(partition.files) + 1
    new_rows = sum(pq.read_metadata(lake / f"{table}/sample_id={GVCFS[2]}/part-00000.parquet").num_rows
                   for table in ("variants", "reference_blocks"))
    assert sum(p.rows for p in second.partitions.values()) == sum(p.rows for p in first.partitions.values()) + new_rows

    code, summary, _ = run(capsys, "cohort", str(lake))  # nothing new
    assert code == 0 and "3 samples (0 added, 0 re-converted)" in summary
    assert state_of(lake).samples == second.samples

    convert(lake, data_vcf, GVCFS[0])  # converted again: its rows are replaced
    code, summary, _ = run(capsys, "cohort", str(lake))
    assert code == 0 and "3 samples (0 added, 1 re-converted)" in summary
    assert state_of(lake).samples[GVCFS[0]] != second.samples[GVCFS[0]]


def test_updates_repeat_until_every_sample_is_in(tmp_path, data_vcf, capsys):
    lake = tmp_path / "lake"
    convert(lake, data_vcf, *GVCFS[:3])

    code, summary, _ = run(capsys, "cohort", str(lake), "--max-samples-per-run", "1",
                           "--max-files-per-partition", "2")

    state = state_of(lake)
    assert code == 0 and "(version 3): 3 samples (3 added" in summary
    assert sorted(state.samples) == GVCFS[:3]
    assert all(len(p.files) <= 2 for p in state.partitions.values())
    assert not (lake / "_staging").exists()


def test_cohort_refuses_a_folder_that_is_not_a_lake(tmp_path, capsys):
    missing = tmp_path / "no-such-lake"
    code, _, error = run(capsys, "cohort", str(missing))
    assert code == 2 and f"{missing} is not a lake" in error and "genolake convert" in error
    assert not missing.exists()  # not created

    home = tmp_path / "home"
    (home / "lake" / "variants").mkdir(parents=True)
    code, _, error = run(capsys, "cohort", str(home))
    assert code == 2 and f"{home} is not a lake" in error and f"its lake is {home / 'lake'}" in error
    assert sorted(p.name for p in home.iterdir()) == ["lake"]

    code, _, error = run(capsys, "lookup", str(home), "chr22:1")
    assert code == 2 and "registry/cohort/state.json" in error and "no per-sample tables" in error


def test_cohort_and_lookup_run_without_dagster(tmp_path, data_vcf):
    lake = tmp_path / "lake"
    convert(lake, data_vcf, GVCFS[0])
    script = ("import sys\nfrom genolake_assets.cli import main\n"
              f"codes = [main(['lookup', {str(lake)!r}, 'chr22:10685603']), main(['cohort', {str(lake)!r}])]\n"
              "assert codes == [0, 0], codes\n"
              "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'dagster')\n"
              "assert not loaded, loaded\n")

    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)

    assert done.returncode == 0, done.stderr
    assert (lake / STATE_KEY).exists()


def test_the_command_line_builds_the_cohort_the_asset_builds(tmp_path, data_vcf, instance, resources, land, store,
                                                             capsys):
    from genolake_assets.assets.variants import cohort_variants
    from tests.pipeline.helpers import ingest, refresh_tables, tick

    samples = GVCFS[:3]
    for sample in samples:
        land(data_vcf / f"{sample}.hg38.g.vcf.gz")
    for request in tick(instance, resources).run_requests:
        assert ingest(instance, resources, request.partition_key).success
    assert refresh_tables(instance, resources).success
    assert dg.materialize([cohort_variants], instance=instance, resources=resources).success
    lake = tmp_path / "lake"
    convert(lake, data_vcf, *samples)

    assert main(["cohort", str(lake)]) == 0

    dagster_lake = resources["lake"].home_path / "lake"
    by_asset, by_cli = state_of(dagster_lake), state_of(lake)
    assert sorted(by_asset.samples) == sorted(by_cli.samples) == samples
    assert {n: p.rows for n, p in by_asset.partitions.items()} == {n: p.rows for n, p in by_cli.partitions.items()}
    assert cohort_rows(dagster_lake, by_asset).equals(cohort_rows(lake, by_cli))
    from_cli = run(capsys, "lookup", str(lake), *MARKERS)[1]
    assert run(capsys, "lookup", str(dagster_lake), *MARKERS)[1] == from_cli


def cohort_rows(lake: Path, state: CohortState) -> pa.Table:
    rows = pa.concat_tables([pq.read_table(lake / key) for key in state.all_live_keys()])
    return rows.sort_by([(name, "ascending") for name in ("contig", "bin", "pos", "sample_id", "kind", "alt", "end")])


def test_lookup_without_a_cohort_on_s3(tmp_path, data_vcf, moto_endpoint, bucket, capsys):
    from genolake_assets.resources.lake.s3_store import s3_client

    lake = tmp_path / "lake"
    convert(lake, data_vcf, *GVCFS[:2])
    client = s3_client(endpoint_url=moto_endpoint)
    for path in lake.rglob("*.parquet"):
        client.upload_file(str(path), bucket, f"lakes/one/{path.relative_to(lake).as_posix()}")
    local = run(capsys, "lookup", str(lake), *MARKERS, "--json")

    code, remote, notice = run(capsys, "lookup", f"s3://{bucket}/lakes/one", *MARKERS, "--json",
                               "--endpoint-url", moto_endpoint)

    assert code == 0 and remote == local[1]
    assert [json.loads(line)["sample_id"] for line in remote.splitlines()][:2] == GVCFS[:2]
    assert "materialising cohort_variants" in notice and "genolake cohort" not in notice


def test_cohort_help_names_its_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["cohort", "--help"])

    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--max-files-per-partition" in text and "--max-samples-per-run" in text and "lake_dir" in text


def test_genolake_cohort_on_local_spark_builds_the_same_table(tmp_path, data_vcf, capsys):
    require_spark("genolake cohort --engine spark")
    from genolake_assets.resources.lake.local_store import LocalObjectStore
    from tests.lib.cohort.cohort_equality import assert_same_cohort

    lakes = {engine: tmp_path / engine for engine in ("in-process", "spark")}
    convert(lakes["spark"], data_vcf, *GVCFS)
    shutil.copytree(lakes["spark"], lakes["in-process"])  # copy2 keeps the mtimes the CLI's tokens use
    code, out, err = run(capsys, "cohort", str(lakes["spark"]), "--engine", "spark")
    assert code == 0, err
    assert "cohort table of" in out and f"{len(GVCFS)} samples" in out
    assert run(capsys, "cohort", str(lakes["in-process"]))[0] == 0
    rows = assert_same_cohort(LocalObjectStore(lakes["in-process"]), state_of(lakes["in-process"]),
                              LocalObjectStore(lakes["spark"]), state_of(lakes["spark"]))
    assert rows > 0
    answers = {engine: run(capsys, "lookup", str(lake), *MARKERS)[1] for engine, lake in lakes.items()}
    assert answers["spark"] == answers["in-process"] and answers["spark"].count("\n") > len(MARKERS)
