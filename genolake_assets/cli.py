"""The `genolake` command line."""

import argparse
import json
import os
import re
import sys
from pathlib import Path

from genolake_assets.settings import ENGINES

_INTEGER = re.compile(r"-?[0-9]{1,18}\Z")  # ASCII digits only: "²".isdigit() is True, int("²") fails


def _positive(text: str) -> int:
    if not _INTEGER.match(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _printable(value) -> str:
    """``value`` for the terminal: control and invisible characters (from a sample name, a VCF value, a
    query result) escaped as ``\\x1b``, ``\\n``, ``\\t``, so they can neither move the cursor nor add a
    line or a TSV column."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _convert(args: argparse.Namespace) -> int:
    from genolake_assets.lib.errors import VcfFormatError
    from genolake_assets.lib.vcf.convert import convert_vcf

    bar = None
    if sys.stderr.isatty() and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit=" records", unit_scale=True, desc=Path(args.vcf).name, file=sys.stderr)

    def progress(records: int, _bytes: int) -> None:
        if bar is not None:
            bar.update(records - bar.n)

    try:
        if args.engine == "hail":
            report = _convert_with_hail(args)
        else:
            report = convert_vcf(args.vcf, args.lake_dir, samples=args.samples, progress=progress)
    except VcfFormatError as exc:
        print(f"error: {_printable(exc)}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print(f"{report.records_read:,} records from {_printable(args.vcf)} in {report.seconds:.2f} s "
          f"({report.records_read / max(report.seconds, 1e-9):,.0f} records/s)")
    for sample in report.samples.values():
        print(f"  {_printable(sample.sample_name)} -> sample_id={_printable(sample.sample_id)}: "
              f"{sample.variant_rows:,} variant rows, "
              f"{sample.reference_block_rows:,} reference-block rows, "
              f"{sum(sample.bytes.values()):,} bytes")
    return 0


def _convert_with_hail(args: argparse.Namespace):
    """The Hail job on local Spark, then the same atomic publish as the default engine."""
    from genolake_assets.lib.errors import VcfFormatError
    from genolake_assets.lib.lake.identifiers import sample_id_for
    from genolake_assets.lib.vcf.batch import ConversionJob, ConversionManifest
    from genolake_assets.lib.vcf.convert import new_staging_dir, publish_staged, remove_staging_dir
    from genolake_assets.lib.vcf.header import read_header
    from genolake_assets.resources.conversion.engine import ConverterResource

    header = read_header(args.vcf)
    names = args.samples or header.samples
    unknown = [n for n in names if n not in header.samples]
    if unknown or not names:
        raise VcfFormatError(args.vcf, f"samples {unknown} are not in the header" if unknown else
                             "the VCF has no sample columns (sites-only): nothing to convert per sample")
    lake_dir = Path(args.lake_dir).resolve()
    staging = new_staging_dir(lake_dir)
    try:
        # absolute(), not resolve(): errors name the file as the user gave it, not a symlink's target
        job = ConversionJob("vcf0", str(Path(args.vcf).absolute()), {n: sample_id_for(n) for n in names},
                            str(staging / "vcf0"))
        manifest = ConversionManifest([job], result_uri=str(staging / "result.json"))
        log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))
        outcome = ConverterResource(engine="hail", spark_master=args.spark_master).convert_batch(
            None, manifest, None, log).outcomes[0]
        if not outcome.ok:
            raise VcfFormatError(outcome.problem.file, outcome.problem.problem, line=outcome.problem.line,
                                 field=outcome.problem.field, code=outcome.problem.code)
        return publish_staged(outcome.report, lake_dir)
    finally:
        remove_staging_dir(staging)


def _demo(args: argparse.Namespace) -> int:
    from genolake_assets.demo import DEFAULT_DATA, check_fresh_home, run_demo, vcfs_to_land

    data_dir = Path(args.data) if args.data else DEFAULT_DATA
    try:
        vcfs_to_land(data_dir)
        if args.fresh:
            check_fresh_home(Path(os.path.abspath(args.home)))
    except (FileNotFoundError, ValueError) as problem:
        print(f"genolake demo: {_printable(problem)}", file=sys.stderr)
        return 2
    summary = run_demo(Path(args.home), data_dir, fresh=args.fresh)
    print(f"""
genolake demo done in {summary.seconds:.1f} s
  samples:           {summary.samples} ({summary.converted} converted, {summary.quarantined} quarantined)
  variants rows:     {summary.variant_rows:,}
  reference blocks:  {summary.reference_block_rows:,}
  Parquet bytes:     {summary.lake_bytes:,}
  cohort table rows: {summary.cohort_rows:,} (locus-ordered: cohort_variants)
  ClinVar rows:      {summary.clinvar_rows:,} ({summary.clinvar_rejected_rows} rejected)
  lake:              {summary.lake}
  catalog (DuckDB):  {summary.home / 'catalog.duckdb'}   (tables: variants, reference_blocks, samples, cohort_variants, clinvar)
{_report_lines(summary.reports)}
{_alignment_lines(summary.alignments, summary.file_catalog)}

Open the Dagster UI on this lake:
  GENOLAKE_HOME={summary.home} DAGSTER_HOME={summary.dagster_home} dagster dev
Every sample at one marker (the cohort table):
  genolake lookup {summary.lake} chr22:10516150 20:10393629
Query it:
  python -c "import duckdb; duckdb.connect('{summary.home / 'catalog.duckdb'}', read_only=True).sql('SELECT sample_id, count(*) FROM variants GROUP BY 1').show()"
""")  # noqa: S608 - printed help text that shows a query; nothing here is executed
    failed = [name for name, alignment in summary.alignments.items() if alignment["status"] != "verified"]
    return 0 if summary.quarantined == 0 and not failed else 1


def _alignment_lines(alignments: dict[str, dict], file_catalog: str) -> str:
    lines = [f"compressed BAMs (verified lossless CRAM 3.1; file catalog {file_catalog}):"]
    for name, alignment in alignments.items():
        if alignment["status"] != "verified":
            lines.append(f"  {name}: FAILED")
            continue
        lines.append(f"  {name}: {alignment['records']:,} reads, {alignment['bam_bytes']:,} -> {alignment['cram_bytes']:,} "
                     f"bytes ({alignment['ratio']:.2f}x) -> {alignment['cram_uri']}")
    return "\n".join(lines)


LOOKUP_COLUMNS = ("marker", "sample_id", "status", "genotype", "ref", "alt", "gq", "dp")


def _lookup(args: argparse.Namespace) -> int:
    from genolake_assets.lib.cohort.lookup import ReaderSettings, lookup, parse_marker
    from genolake_assets.resources.lake.cohort_reader import open_lake, read_state

    try:
        markers = [parse_marker(text) for text in args.markers]
        filesystem, root = open_lake(args.lake, endpoint_url=args.endpoint_url, region=args.region)
        try:
            state = read_state(filesystem, root)
        except FileNotFoundError as missing:  # no cohort table yet: the per-sample tables can answer too
            return _lookup_per_sample(args, markers, filesystem, root, missing)
    except (ValueError, OSError) as exc:  # a bad marker or location, no cohort table, no access
        print(f"error: {_printable(exc)}", file=sys.stderr)
        return 2
    settings = ReaderSettings(pre_buffer=not args.no_pre_buffer, range_size_limit=args.range_size_limit,
                              hole_size_limit=args.hole_size_limit)
    result = lookup(markers, state, filesystem, root, settings)
    _print_lookup(result.table, args.json)
    print(f"{len(state.samples):,} samples x {len(markers)} markers: {result.files_opened} files opened, "
          f"{result.row_groups_read} of {result.row_groups_total} row groups read, "
          f"{result.bytes_read:,} bytes read in {result.read_requests} reads, {result.seconds:.3f} s",
          file=sys.stderr)
    return 0


def _lookup_per_sample(args: argparse.Namespace, markers, filesystem, root: str, missing: FileNotFoundError) -> int:
    """The same answer from the per-sample tables, for a lake ``genolake convert`` made (slow at scale)."""
    from genolake_assets.lib.cohort.per_sample_lookup import find_per_sample_tables, lookup_per_sample

    tables = find_per_sample_tables(filesystem, root)
    local = "://" not in args.lake
    if not tables:
        raise FileNotFoundError(f"{missing} (or run `genolake cohort`), and there are no per-sample tables "
                                "(variants/sample_id=<id>/part-00000.parquet) to answer from either"
                                + ("; `genolake convert <vcf> <lake>` writes them" if local else ""))
    faster = f"`genolake cohort {_printable(args.lake)}` builds it" if local else "materialising cohort_variants builds it"
    print(f"no cohort table in {_printable(args.lake)}: answered from the per-sample tables, which reads every "
          f"sample's files; {faster} and makes lookups fast", file=sys.stderr)
    result = lookup_per_sample(markers, tables, filesystem)
    _print_lookup(result.table, args.json)
    print(f"{len(tables):,} samples x {len(markers)} markers from the per-sample tables: {result.files_opened} "
          f"files opened, {result.row_groups_read} of {result.row_groups_total} row groups read, "
          f"{result.seconds:.3f} s", file=sys.stderr)
    return 0


def _print_lookup(table, as_json: bool) -> None:
    if as_json:
        for row in table.to_pylist():
            print(json.dumps(row))
        return
    print("\t".join(LOOKUP_COLUMNS))
    for row in table.select(list(LOOKUP_COLUMNS)).to_pylist():
        print("\t".join(_printable(row[name]) for name in LOOKUP_COLUMNS))


def _cohort(args: argparse.Namespace) -> int:
    import time
    import uuid

    from genolake_assets.lib.cohort.build import ConcurrentWriterError, build_cohort, update_in_process
    from genolake_assets.lib.cohort.sample_tokens import lake_sample_tokens
    from genolake_assets.lib.lake.leftovers import STAGING_DIR, remove_dead_staging, staging_name
    from genolake_assets.resources.cohort.local_spark import local_spark_updater
    from genolake_assets.resources.lake.local_store import LocalObjectStore
    from genolake_assets.resources.processes import EngineUnavailable

    lake = Path(args.lake_dir)
    not_a_lake = (f"genolake cohort: {_printable(args.lake_dir)} is not a lake: it has no per-sample tables "
                  f"(variants/sample_id=<id>/part-00000.parquet); write them with `genolake convert <vcf> "
                  f"{_printable(args.lake_dir)}`")
    if (lake / "lake" / "variants").is_dir():  # a genolake home (GENOLAKE_HOME) holds its lake in lake/
        not_a_lake += f" (a genolake home? its lake is {_printable(str(lake / 'lake'))})"
    if not lake.is_dir():  # checked first: the store would create the folder
        print(not_a_lake, file=sys.stderr)
        return 2
    started = time.perf_counter()
    store = LocalObjectStore(lake)
    staging = store.root / STAGING_DIR
    builds = []
    try:
        tokens = lake_sample_tokens(store, store.local_path)
        if not tokens:
            print(not_a_lake, file=sys.stderr)
            return 2
        remove_dead_staging(staging)
        # Each update folds at most max_samples_per_run samples; run until every sample is in.
        limits = {name: value for name, value in (("max_files", args.max_files_per_partition),
                                                  ("max_samples", args.max_samples_per_run)) if value}
        def say(message: str) -> None:
            print(message, file=sys.stderr)

        updater = local_spark_updater(say, args.spark_master) if args.engine == "spark" else update_in_process
        while not builds or builds[-1].samples_pending:
            builds.append(build_cohort(store, store.local_path, staging / staging_name(uuid.uuid4().hex), tokens,
                                       log=say, updater=updater, **limits))
    except (ValueError, OSError, ConcurrentWriterError, EngineUnavailable, RuntimeError) as exc:  # a bad
        # per-sample file, a full disk, no pyspark, a failed Spark job, ...
        print(f"genolake cohort: {_printable(exc)}", file=sys.stderr)
        return 1
    finally:
        try:
            staging.rmdir()  # only when empty: a conversion may be staging there
        except OSError:
            pass
    last = builds[-1]
    print(f"cohort table of {_printable(args.lake_dir)} (version {last.state.version}): "
          f"{len(last.state.samples):,} samples ({sum(b.samples_added for b in builds):,} added, "
          f"{sum(b.samples_reconverted for b in builds):,} re-converted), {last.rows:,} rows, "
          f"{len(last.state.partitions):,} partitions, {last.files:,} files, {time.perf_counter() - started:.2f} s")
    return 0


def _query(args: argparse.Namespace) -> int:
    from genolake_assets.queries import render
    from genolake_assets.resources.profile import build_resources

    parameters: dict[str, str | int] = {}
    for item in args.parameters:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"genolake query: parameter {_printable(repr(item))} is not NAME=VALUE", file=sys.stderr)
            return 2
        parameters[name] = int(value) if _INTEGER.match(value) else value
    try:
        statement = render(args.name, **parameters)
    except (FileNotFoundError, ValueError) as error:
        print(f"genolake query: {_printable(error)}", file=sys.stderr)
        return 2
    try:
        result = build_resources()["sql"].run(statement)
    except RuntimeError as error:
        print(f"genolake query {_printable(args.name)}: {_printable((str(error).splitlines() or [''])[0])}",
              file=sys.stderr)
        return 1
    print("\t".join(_printable(name) for name in result.table.column_names))
    for row in result.table.to_pylist():
        print("\t".join(_printable(v) for v in row.values()))
    print(f"{result.table.num_rows} rows; {result.engine}, {result.seconds:.3f} s, "
          f"{result.bytes_scanned} bytes scanned", file=sys.stderr)
    return 0


def _compress_bam(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from genolake_assets.programs.bam_compress import WORK_ORDER_VERSION
    from genolake_assets.programs.bam_compress import main as bam_compress

    bam, out_dir = Path(args.bam).resolve(), Path(args.out_dir).resolve()
    stem = bam.name[:-4] if bam.name.lower().endswith(".bam") else bam.name
    result_path = out_dir / f"{stem}.result.json"
    order = {"work_order_version": WORK_ORDER_VERSION, "input_uri": str(bam),
             "reference_uri": str(Path(args.reference).resolve()), "output_uri": str(out_dir / f"{stem}.cram"),
             "result_uri": str(result_path),
             "options": {"cram_version": args.cram_version, "profile": args.profile, "threads": args.threads,
                         "ignore_md5": args.ignore_md5, "strict": args.strict}}
    status = bam_compress(["--work-order-json", json.dumps(order)])
    if result_path.exists():
        print(result_path.read_text())
    return status


def _simulate_sequencer(args: argparse.Namespace) -> int:
    import shutil
    from datetime import date

    from genolake_assets.demo import DEFAULT_BAMS, DEFAULT_DATA
    from genolake_assets.lib.transfers.rules import TransferConfig
    from genolake_assets.lib.transfers.simulator import simulate_runs
    from genolake_assets.settings import Settings

    config, settings = TransferConfig.from_env(), Settings.from_env()
    share = Path(args.share or config.source_root or settings.home / "sequencer-share")
    sequencer = config.sequencer_paths[0] if config.sequencer_paths else None
    output_path = args.output_path or (sequencer.path if sequencer else "/MiSeq/Output")
    date_format = sequencer.date_format if sequencer and not args.output_path else "%y%m%d"
    samples = sorted((DEFAULT_DATA / "1kg_chr22_gvcf").glob("*.g.vcf.gz"))
    if args.with_bams:
        bams = sorted(DEFAULT_BAMS.glob("*.bam"))
        samples = [bams[i // 3 % len(bams)] if i % 3 == 2 else samples[i - i // 3] for i in range(len(samples))]
        references = settings.home / "lake" / "landing" / "references"
        references.mkdir(parents=True, exist_ok=True)
        for fasta in (DEFAULT_BAMS / "ref").iterdir():
            shutil.copyfile(fasta, references / fasta.name)
        print(f"reference FASTAs of the bundled BAMs registered for landing in {references}")
    day = date.fromisoformat(args.date) if args.date else None
    print(f"writing {args.runs} run(s) of {args.per_run} file(s) into {share / output_path.strip('/')}, "
          f"{args.interval:g} s apart")
    for _ in simulate_runs(share, output_path, samples, runs=args.runs, per_run=args.per_run, day=day,
                           date_format=date_format, first_run_number=args.first_run, interval=args.interval,
                           chunk_pause=args.chunk_pause):
        pass
    return 0


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
    convert.add_argument("--engine", choices=ENGINES, default="arrow",
                         help="arrow: the in-process converter (default); hail: spark/vcf_to_parquet.py with Hail "
                              "on local Spark (needs the hail extra); both write the same tables")
    convert.add_argument("--spark-master", default="local[2]", help="Spark master for --engine hail")
    convert.set_defaults(run=_convert)

    demo = commands.add_parser(
        "demo", help="land the bundled real VCFs and run the whole ingest locally",
        description="Lands the bundled 1000 Genomes gVCFs and the 100-sample cohort VCF into a local landing "
                    "zone, registers one Dagster partition per sample with the landing sensor, converts every "
                    "sample, registers the tables in the local DuckDB catalog and prints a summary.")
    demo.add_argument("--home", default=".genolake", help="the local lake home (default: ./.genolake)")
    demo.add_argument("--data", default=None, help="folder of VCFs to land: every *.vcf, *.vcf.gz and *.vcf.bgz under it, sub-folders included (default: the bundled data/vcf)")
    demo.add_argument("--fresh", action="store_true",
                      help="delete the home first (only a genolake home: one the demo made, marked .genolake-home)")
    demo.set_defaults(run=_demo)

    cohort = commands.add_parser(
        "cohort", help="build or update the locus-ordered cohort table of a lake directory, without Dagster",
        description="Folds every sample whose per-sample tables are in <lake-dir> (written by `genolake convert`, "
                    "or by the Dagster ingest) into the cohort table (cohort/ and the manifest "
                    "registry/cohort/state.json), as the cohort_variants asset does: new or re-converted samples "
                    "only, so running it again after converting another sample adds just that one. Then "
                    "`genolake lookup` reads only the cohort partition of each marker.")
    cohort.add_argument("lake_dir", help="the lake directory (the one given to genolake convert)")
    # Defaults (None) are the cohort_variants asset's, lib/cohort/layout.py: not imported here, so --help stays quick.
    cohort.add_argument("--max-files-per-partition", type=_positive, default=None, metavar="N",
                        help="compact a partition once it has more files (default: the asset's, 8)")
    cohort.add_argument("--max-samples-per-run", type=_positive, default=None, metavar="N",
                        help="samples folded in per update (bounds an update's time; memory does not grow with it); updates repeat until every "
                             "sample is in (default: the asset's, 500)")
    cohort.add_argument("--engine", choices=("in-process", "spark"), default="in-process",
                        help="where the update runs: in this process (default), or the distributed job "
                             "spark/cohort_update.py on local Spark (needs the hail extra's pyspark)")
    cohort.add_argument("--spark-master", default="local[2]", help="--engine spark: the Spark master")
    cohort.set_defaults(run=_cohort)

    lookup = commands.add_parser(
        "lookup", help="every sample's genotype at a few markers, from the cohort table",
        description="Reads registry/cohort/state.json and, per marker, only the row groups of the one cohort "
                    "partition that can hold it. Prints a TSV (or JSON lines) with one row per marker and "
                    "sample; status is variant, other_allele, hom_ref or no_call. A summary goes to stderr. "
                    "A lake without a cohort table is answered from its per-sample tables (the same answers, "
                    "slower as samples are added; `genolake cohort` builds the table).")
    lookup.add_argument("lake", help="the lake directory or s3://bucket/prefix")
    lookup.add_argument("markers", nargs="+", metavar="MARKER",
                        help="CONTIG:POS or CONTIG:POS:REF:ALT (chr22 and 22 both match)")
    lookup.add_argument("--json", action="store_true", help="print JSON lines instead of a TSV")
    lookup.add_argument("--endpoint-url", default=None, help="an S3-compatible endpoint (MinIO, Ceph...)")
    lookup.add_argument("--region", default=None, help="the bucket's region (default: resolved from the bucket)")
    lookup.add_argument("--range-size-limit", type=int, default=8 << 20, metavar="BYTES",
                        help="largest coalesced read (default: 8 MiB)")
    lookup.add_argument("--hole-size-limit", type=int, default=1 << 20, metavar="BYTES",
                        help="gaps up to this size between wanted ranges are read through (default: 1 MiB)")
    lookup.add_argument("--no-pre-buffer", action="store_true",
                        help="read each column chunk on its own instead of coalesced pre-buffered ranges")
    lookup.set_defaults(run=_lookup)

    query = commands.add_parser(
        "query", help="run one of the project's queries with the profile's SQL engine (DuckDB or Athena)",
        description="Runs genolake_assets/queries/NAME.sql (Trino SQL; transpiled to DuckDB in the local profile, "
                    "sent to Athena in the aws profile) with NAME=VALUE parameters bound as literals, and prints "
                    "the rows as TSV, then engine, seconds and bytes scanned to stderr. Environment as for "
                    "Dagster (GENOLAKE_PROFILE, GENOLAKE_HOME, ...).")
    query.add_argument("name", help="the query, e.g. cohort_frequency_at_marker, top_variants_in_region")
    query.add_argument("parameters", nargs="*", metavar="NAME=VALUE",
                       help="integers are passed as numbers, anything else as a string")
    query.set_defaults(run=_query)

    compress = commands.add_parser(
        "compress-bam", help="compress one BAM to a verified lossless CRAM, without Dagster",
        description="Runs the bam-compress program (the AWS Batch container's entrypoint) on local files: writes "
                    "<out-dir>/<name>.cram and .crai only after decoding the CRAM reproduced every record of the BAM, "
                    "and prints the result JSON (sizes, ratio, checksums, timings, tool versions, reference md5). "
                    "Exit status: 0 verified, 2 verification mismatch, 3 bad input, 1 unexpected error.")
    compress.add_argument("bam", help="the BAM file")
    compress.add_argument("out_dir", help="where the CRAM, its index and <name>.result.json go")
    compress.add_argument("--reference", required=True, help="the reference FASTA (with .fai; .gzi if bgzipped)")
    compress.add_argument("--cram-version", default="3.1", choices=["3.0", "3.1"])
    compress.add_argument("--profile", default="normal", choices=["fast", "normal", "small", "archive"])
    compress.add_argument("--threads", type=int, default=1)
    compress.add_argument("--ignore-md5", action="store_true",
                          help="allow a reference whose md5s disagree with the BAM's @SQ M5 (test references only)")
    compress.add_argument("--strict", action="store_true",
                          help="accept no difference at all (not even an unmapped read's CIGAR)")
    compress.set_defaults(run=_compress_bam)

    simulate = commands.add_parser(
        "simulate-sequencer", help="write Illumina-style run folders over time from the bundled data",
        description="Plays a sequencer: writes dated run folders (RunInfo.xml, the samples' gVCFs (and BAMs), "
                    "CopyComplete.txt last) into the transfer source (GENOLAKE_TRANSFER_CONFIG's source_root, or "
                    "$GENOLAKE_HOME/sequencer-share), one every --interval seconds, so the transfer schedule, the "
                    "landing sensors and the rest of the automation can be watched on one machine (make ui).")
    simulate.add_argument("--share", default=None, help="the folder playing the sequencer share")
    simulate.add_argument("--output-path", default=None,
                          help="the sequencer's output folder in the share (default: the first configured one)")
    simulate.add_argument("--runs", type=int, default=2)
    simulate.add_argument("--per-run", type=int, default=2, help="files per run")
    simulate.add_argument("--interval", type=float, default=60.0, help="seconds between runs")
    simulate.add_argument("--chunk-pause", type=float, default=0.0,
                          help="seconds between 256 KiB chunks of each file (a slow writer)")
    simulate.add_argument("--first-run", type=int, default=1, help="the first run number")
    simulate.add_argument("--date", default=None, help="the run folders' date, YYYY-MM-DD (default: today)")
    simulate.add_argument("--with-bams", action="store_true",
                          help="every third file is a bundled BAM; their reference FASTAs are put in landing/references/")
    simulate.set_defaults(run=_simulate_sequencer)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
