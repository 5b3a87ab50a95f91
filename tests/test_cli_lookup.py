"""`genolake lookup` on a cohort table built from two real gVCFs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genolake_assets.cli import main
from genolake_assets.lib.cohort.layout import STATE_KEY, CohortState, SampleInput, update_cohort
from genolake_assets.lib.vcf.convert import convert_vcf

SAMPLES = ["HG00187", "HG01377"]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    data_vcf = Path(__file__).resolve().parent / "data" / "vcf"
    lake = tmp_path_factory.mktemp("cli-lookup") / "lake"
    inputs = []
    for name in SAMPLES:
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
        inputs.append(SampleInput(name, f"token-{name}",
                                  lake / f"variants/sample_id={name}/part-00000.parquet",
                                  lake / f"reference_blocks/sample_id={name}/part-00000.parquet"))
    update = update_cohort(CohortState.empty(), inputs, set(), fetch=lambda key: lake / key,
                           out_dir=lake.parent / "work")
    for key, local in update.uploads.items():
        (lake / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local, lake / key)
    (lake / STATE_KEY).parent.mkdir(parents=True, exist_ok=True)
    (lake / STATE_KEY).write_bytes(update.state.to_json())
    return lake


def test_lookup_prints_a_tsv_and_a_summary(lake, capsys):
    code = main(["lookup", str(lake), "chr22:10685603:T:G", "22:10600000"])

    assert code == 0
    captured = capsys.readouterr()
    lines = [line.split("\t") for line in captured.out.splitlines()]
    assert lines[0] == ["marker", "sample_id", "status", "genotype", "ref", "alt", "gq", "dp"]
    assert lines[1:] == [
        ["chr22:10685603:T:G", "HG00187", "variant", "0/1", "T", "G", "53", "9"],
        ["chr22:10685603:T:G", "HG01377", "hom_ref", "0/0", "T", "G", "18", "6"],
        ["22:10600000", "HG00187", "hom_ref", "0/0", "", "", "0", "0"],
        ["22:10600000", "HG01377", "hom_ref", "0/0", "", "", "0", "0"],
    ]
    summary = captured.err
    assert "2 samples x 2 markers" in summary and "1 files opened" in summary
    assert "row groups read" in summary and "bytes read" in summary


def test_lookup_json_lines(lake, capsys):
    code = main(["lookup", str(lake), "chr22:10685603:T:C", "--json", "--no-pre-buffer",
                 "--range-size-limit", "65536", "--hole-size-limit", "0"])

    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["sample_id"], r["status"], r["alt"], r["genotype"], r["gt"]) for r in rows] == [
        ("HG00187", "other_allele", "G", "0/1", [0, 1]),
        ("HG01377", "hom_ref", "C", "0/0", [0, 0]),
    ]
    assert rows[0]["contig"] == "chr22" and rows[0]["pos"] == 10685603


def test_lookup_refuses_a_bad_marker(lake, capsys):
    code = main(["lookup", str(lake), "chr22:10685603", "chr22-10685603"])

    assert code == 2
    assert "'chr22-10685603'" in capsys.readouterr().err


def test_lookup_explains_a_lake_without_a_cohort(tmp_path, capsys):
    code = main(["lookup", str(tmp_path), "chr22:10685603"])

    assert code == 2
    error = capsys.readouterr().err
    assert "registry/cohort/state.json" in error and "cohort_variants" in error


def test_lookup_on_an_s3_endpoint(lake, moto_endpoint, bucket, capsys):
    from genolake_assets.resources.lake.s3_store import s3_client

    client = s3_client(endpoint_url=moto_endpoint)
    for path in lake.rglob("*"):
        key = path.relative_to(lake).as_posix()
        if path.is_file() and key.startswith(("cohort/", "registry/")):
            client.upload_file(str(path), bucket, key)
    assert main(["lookup", str(lake), "chr22:10685603"]) == 0
    local = capsys.readouterr().out

    code = main(["lookup", f"s3://{bucket}", "chr22:10685603", "--endpoint-url", moto_endpoint])

    assert code == 0
    assert capsys.readouterr().out == local


def test_lookup_escapes_control_characters_of_the_rows(tmp_path, capsys):
    """A VCF value is printed, never interpreted by the terminal (issue 21 item 9)."""
    vcf = tmp_path / "ctl.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\x1b[31m1\n"
                   "chr1\t100\t.\tA\tG\x1b[2J\t50\tPASS\t.\tGT\t0/1\n")
    lake = tmp_path / "lake"
    report = convert_vcf(vcf, lake)
    (sample,) = report.samples.values()
    update = update_cohort(CohortState.empty(), [SampleInput(
        sample.sample_id, "t", lake / f"variants/sample_id={sample.sample_id}/part-00000.parquet", None)],
        set(), fetch=lambda key: lake / key, out_dir=tmp_path / "work")
    for key, local in update.uploads.items():
        (lake / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local, lake / key)
    (lake / STATE_KEY).parent.mkdir(parents=True, exist_ok=True)
    (lake / STATE_KEY).write_bytes(update.state.to_json())

    assert main(["lookup", str(lake), "chr1:100"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "G\\x1b[2J" in out
    assert [len(line.split("\t")) for line in out.splitlines()] == [8, 8]
