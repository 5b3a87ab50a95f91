"""The `genolake` command line on real data."""

import pyarrow.parquet as pq
import pytest

from genolake_assets.cli import build_parser, main


def test_convert_writes_the_lake_layout(tmp_path, data_vcf, capsys):
    lake = tmp_path / "lake"

    code = main(["convert", str(data_vcf / "HG00187.hg38.g.vcf.gz"), str(lake), "--quiet"])

    assert code == 0
    assert pq.read_metadata(lake / "variants/sample_id=HG00187/part-00000.parquet").num_rows == 41
    assert pq.read_metadata(lake / "reference_blocks/sample_id=HG00187/part-00000.parquet").num_rows == 960
    out = capsys.readouterr().out
    assert "1,000 records" in out and "sample_id=HG00187" in out


def test_convert_selected_samples_of_a_cohort(tmp_path, data_vcf):
    lake = tmp_path / "lake"

    main(["convert", str(data_vcf / "1kg_chr20_100samples_GRCh37.vcf"), str(lake), "--quiet",
          "--samples", "HG00096", "C1046::HG02024"])

    written = sorted(p.name for p in (lake / "variants").iterdir())
    assert written == ["sample_id=C1046_HG02024-2ae8ccbe97", "sample_id=HG00096"]


def test_convert_reports_a_bad_file_and_leaves_the_lake_alone(tmp_path, data_vcf, capsys):
    lake = tmp_path / "lake"

    code = main(["convert", str(data_vcf / "bad" / "malformed.vcf"), str(lake), "--quiet"])

    assert code == 2
    error = capsys.readouterr().err
    assert "malformed.vcf" in error and "line 54" in error
    assert not (lake / "variants").exists()


@pytest.mark.parametrize("command", [[], ["convert"], ["demo"]])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in {"convert": ["--samples", "--json", "--quiet"], "demo": ["--home", "--data", "--fresh"]}.get(
            command[0] if command else "", ["convert", "demo"]):
        assert option in text


def test_simulate_sequencer_writes_dated_run_folders_in_order(tmp_path, monkeypatch):
    from genolake_assets.cli import main

    monkeypatch.setenv("GENOLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENOLAKE_TRANSFER_CONFIG", raising=False)
    share = tmp_path / "share"

    assert main(["simulate-sequencer", "--share", str(share), "--runs", "2", "--per-run", "2", "--interval", "0",
                 "--date", "2026-11-20", "--with-bams"]) == 0

    runs = sorted((share / "MiSeq" / "Output").iterdir())
    assert [run.name for run in runs] == ["261120_M00123_0001_000000000-G0001", "261120_M00123_0002_000000000-G0002"]
    for run in runs:
        assert (run / "RunInfo.xml").read_text().count(run.name) == 1 and (run / "CopyComplete.txt").exists()
        # CopyComplete.txt is written after every data file, as the instrument does.
        data = [p for p in (run / "Analysis").iterdir() if p.suffix in (".gz", ".bam")]
        assert len(data) == 2 and all(p.stat().st_mtime_ns <= (run / "CopyComplete.txt").stat().st_mtime_ns for p in data)
    assert (tmp_path / "home" / "lake" / "landing" / "references" / "q.fa.gz.fai").exists()


def test_convert_escapes_control_characters_of_sample_names(tmp_path, data_vcf, capsys):
    import gzip

    evil = "NA\x1b]0;owned\x07\x1b[2Jname\u202e"
    with gzip.open(data_vcf / "HG00187.hg38.g.vcf.gz", "rt") as source:
        text = source.read()
    path = tmp_path / "evil\x1bname.vcf"
    path.write_text(text.replace("\tHG00187\n", f"\t{evil}\n", 1))

    assert main(["convert", str(path), str(tmp_path / "lake"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "NA\\x1b]0;owned\\x07\\x1b[2Jname\\u202e -> sample_id=" in out and "evil\\x1bname.vcf" in out

    assert main(["convert", str(path), str(tmp_path / "lake2"), "--quiet", "--samples", "x\x1b[2J"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "x\\x1b[2J" in err
