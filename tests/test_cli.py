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
