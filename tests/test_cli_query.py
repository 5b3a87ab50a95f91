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


def test_report_row_sources_traces_a_variant_to_the_landed_files(instance, resources, land, data_vcf, capsys):
    import gzip

    import dagster as dg

    from genolake_assets.assets.variants import cohort_variants

    for name in ("HG00187.hg38.g.vcf.gz", "HG00190.hg38.g.vcf.gz"):
        land(data_vcf / name)
    tick(instance, resources)
    for sample in ("HG00187", "HG00190"):
        assert ingest(instance, resources, sample).success
    refresh_tables(instance, resources)
    assert dg.materialize([cohort_variants], instance=instance, resources=resources).success

    # The first real call of HG00187 (chr22 10678964 A>G), as a report row would name it.
    assert main(["query", "report_row_sources", "chromosome=22", "pos=10678964", "ref=A", "alt=G"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0].split("\t"), [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]
    assert header[:3] == ["sample_id", "sample_name", "genotype"]
    carriers = {row["sample_id"] for row in rows}
    expected = set()
    for sample in ("HG00187", "HG00190"):
        with gzip.open(data_vcf / f"{sample}.hg38.g.vcf.gz", "rt") as handle:
            for line in handle:
                fields = line.split("\t")
                if line.startswith("#") or fields[1] != "10678964" or "G" not in fields[4].split(","):
                    continue
                allele = str(fields[4].split(",").index("G") + 1)
                if allele in fields[9].split(":")[0].replace("|", "/").split("/"):
                    expected.add(sample)
    assert carriers == expected and "HG00187" in carriers
    hg00187 = next(row for row in rows if row["sample_id"] == "HG00187")
    assert hg00187["source_uri"].endswith("landing/HG00187.hg38.g.vcf.gz") and len(hg00187["sha256"]) == 64


# -- odd parameter values end cleanly (issue 21 item 9) ----------------------------------------------------

def test_a_non_ascii_digit_or_a_huge_number_is_an_error_not_a_traceback(instance, resources, land, data_vcf, capsys):
    assert main(["query", "cohort_size", "sample_pattern=%", "assembly=GRCh38", "x=²"]) == 2
    err = capsys.readouterr().err
    assert "unknown ['x']" in err and "Traceback" not in err

    _cohort(instance, resources, land, data_vcf / "HG00187.hg38.g.vcf.gz")
    capsys.readouterr()
    for value in ("²", "٣", "9" * 5000):  # superscript two, Arabic-Indic three, past int()'s digit limit
        code = main(["query", "report_row_sources", "chromosome=22", f"pos={value}", "ref=A", "alt=G"])
        captured = capsys.readouterr()
        assert code in (0, 1, 2) and "Traceback" not in captured.err, (value, captured.err[-500:])
        assert len(captured.err.splitlines()) <= 2, captured.err[-500:]


def _cohort(instance, resources, land, path) -> str:
    import dagster as dg

    from genolake_assets.assets.variants import cohort_variants

    land(path)
    sample_id = tick(instance, resources).run_requests[0].partition_key
    assert ingest(instance, resources, sample_id).success
    refresh_tables(instance, resources)
    assert dg.materialize([cohort_variants], instance=instance, resources=resources).success
    return sample_id


def test_query_output_escapes_control_characters(instance, resources, land, data_vcf, capsys, tmp_path):
    import gzip

    evil = "HG\x1b[2J\tnew\nline"
    path = tmp_path / "evil.vcf"
    with gzip.open(data_vcf / "HG00187.hg38.g.vcf.gz", "rt") as source:
        text = source.read()
    path.write_text(text.replace("\tHG00187\n", f"\t{evil.replace(chr(10), ' ').replace(chr(9), ' ')}\n", 1))
    _cohort(instance, resources, land, path)
    capsys.readouterr()
    assert main(["query", "report_row_sources", "chromosome=22", "pos=10678964", "ref=A", "alt=G"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J" in out
    lines = out.splitlines()
    assert all(line.count("\t") == lines[0].count("\t") for line in lines)
