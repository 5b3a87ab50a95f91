"""The `genolake` command line."""

import argparse
import json
import sys
from pathlib import Path


def _convert(args: argparse.Namespace) -> int:
    from genolake_assets.lib.errors import VcfFormatError
    from genolake_assets.lib.vcf_convert import convert_vcf

    bar = None
    if sys.stderr.isatty() and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit=" records", unit_scale=True, desc=Path(args.vcf).name, file=sys.stderr)

    def progress(records: int, _bytes: int) -> None:
        if bar is not None:
            bar.update(records - bar.n)

    try:
        report = convert_vcf(args.vcf, args.lake_dir, samples=args.samples, progress=progress)
    except VcfFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print(f"{report.records_read:,} records from {args.vcf} in {report.seconds:.2f} s "
          f"({report.records_read / max(report.seconds, 1e-9):,.0f} records/s)")
    for sample in report.samples.values():
        print(f"  {sample.sample_name} -> sample_id={sample.sample_id}: {sample.variant_rows:,} variant rows, "
              f"{sample.reference_block_rows:,} reference-block rows, "
              f"{sum(sample.bytes.values()):,} bytes")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from genolake_assets.demo import DEFAULT_DATA, run_demo

    summary = run_demo(Path(args.home), Path(args.data) if args.data else DEFAULT_DATA, fresh=args.fresh)
    print(f"""
genolake demo done in {summary.seconds:.1f} s
  samples:           {summary.samples} ({summary.converted} converted, {summary.quarantined} quarantined)
  variants rows:     {summary.variant_rows:,}
  reference blocks:  {summary.reference_block_rows:,}
  Parquet bytes:     {summary.lake_bytes:,}
  ClinVar rows:      {summary.clinvar_rows:,} ({summary.clinvar_rejected_rows} rejected)
  lake:              {summary.lake}
  catalog (DuckDB):  {summary.home / 'catalog.duckdb'}   (tables: variants, reference_blocks, samples, clinvar)
{_report_lines(summary.reports)}

Open the Dagster UI on this lake:
  GENOLAKE_HOME={summary.home} DAGSTER_HOME={summary.dagster_home} dagster dev
Query it:
  python -c "import duckdb; duckdb.connect('{summary.home / 'catalog.duckdb'}', read_only=True).sql('SELECT sample_id, count(*) FROM variants GROUP BY 1').show()"
""")
    return 0 if summary.quarantined == 0 else 1


def _report_lines(reports: dict[str, dict]) -> str:
    lines = ["drug_response_report runs:"]
    for name, report in reports.items():
        lines.append(f"  {name}: significance {report['significance_pattern']!r}, samples {report['sample_pattern']!r} "
                     f"({report['cohort_samples']}), {report['assembly']}: {report['rows']} rows -> {report['csv_uri']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genolake", description="genolake: a governed genomics data lake on Dagster.")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert", help="convert one VCF into the lake layout, without Dagster",
        description="Convert a VCF/gVCF (plain or bgzipped) into <lake-dir>/variants/sample_id=<id>/*.parquet and "
                    "<lake-dir>/reference_blocks/sample_id=<id>/*.parquet, atomically: on any error the lake "
                    "directory is left as it was and the error names the file, line and field.")
    convert.add_argument("vcf", help="the VCF file (.vcf, .vcf.gz or .vcf.bgz)")
    convert.add_argument("lake_dir", help="the lake directory to write into (created if missing)")
    convert.add_argument("--samples", nargs="+", metavar="NAME",
                         help="convert only these samples (VCF header names); default: all")
    convert.add_argument("--json", action="store_true", help="print the full conversion report as JSON")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    convert.set_defaults(run=_convert)

    demo = commands.add_parser(
        "demo", help="land the bundled real VCFs and run the whole ingest locally",
        description="Lands the bundled 1000 Genomes gVCFs and the 100-sample cohort VCF into a local landing "
                    "zone, registers one Dagster partition per sample with the landing sensor, converts every "
                    "sample, registers the tables in the local DuckDB catalog and prints a summary.")
    demo.add_argument("--home", default=".genolake", help="the local lake home (default: ./.genolake)")
    demo.add_argument("--data", default=None, help="folder of VCFs to land (default: the bundled data/vcf)")
    demo.add_argument("--fresh", action="store_true", help="delete the home first")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
