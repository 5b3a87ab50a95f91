"""`genolake query`: the project's Trino SQL run through the profile's engine from the command line."""

from genolake_assets.cli import main
from tests.pipeline.helpers import ingest, refresh_tables, tick


def test_query_runs_a_named_query_with_bound_parameters(instance, resources, land, data_vcf, capsys):
    land(data_vcf / "HG00187.hg38.g.vcf.gz")
    tick(instance, resources)
    assert ingest(instance, resources, "HG00187").success
    refresh_tables(instance, resources)

    assert main(["query", "cohort_size", "sample_pattern=HG%", "assembly=GRCh38"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["samples", "1"]
    assert "1 rows; duckdb" in err and "bytes scanned" in err

    assert main(["query", "cohort_size", "sample_pattern=x' OR '1'='1", "assembly=GRCh38"]) == 0
    assert capsys.readouterr().out.splitlines() == ["samples", "0"]


def test_query_refuses_bad_names_and_parameters(lake_home, capsys):
    assert main(["query", "no_such_query"]) == 2
    assert main(["query", "cohort_size", "sample_pattern"]) == 2
    assert main(["query", "cohort_size", "sample_pattern=%"]) == 2  # assembly missing
    err = capsys.readouterr().err
    assert "no_such_query" in err and "NAME=VALUE" in err and "missing ['assembly']" in err
