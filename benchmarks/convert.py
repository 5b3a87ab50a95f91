"""Benchmark genolake's VCF -> Parquet converter against baseline readers on a WGS-sized gVCF.

    .venv/bin/python benchmarks/convert.py            # 5,000,000 records
    .venv/bin/python benchmarks/convert.py --quick    # 200,000-record smoke run

Every tool runs in its own child process; see benchmarks/README.md for what each figure means.
The exit status is 0 whatever the results: this is a report, not a gate.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from make_wgs_gvcf import DEFAULT_WORK_DIR, REPO_ROOT, ensure_wgs_gvcf
from measure import ChildRun, peak_rss_method, run_child
from polarsbio_env import PolarsBioUnavailable, ensure_polars_bio_python

RUNNERS_DIR = Path(__file__).resolve().parent / "runners"
PYTHON = sys.executable
GIB_IN_MIB = 1024
FLAT_RSS_MAX_RATIO = 1.3  # 5x the records may cost at most 1.3x the peak RSS
FULL_RECORDS = 5_000_000
FULL_BASELINE_RECORDS = FULL_RECORDS  # every tool reads the same file (a prefix flattered polars-bio's start-up)
QUICK_RECORDS = 200_000
QUICK_BASELINE_RECORDS = 50_000


@dataclass
class ToolResult:
    name: str
    input_path: Path
    records: int  # records this tool actually processed
    run: ChildRun | None = None
    output_bytes: int | None = None
    unavailable: str | None = None
    on_prefix: bool = False
    baseline_reader: bool = False  # competes in the "ours >= fastest reader" bar

    @property
    def usable(self) -> bool:
        return self.unavailable is None and self.run is not None and self.run.ok

    @property
    def records_per_s(self) -> float:
        assert self.run is not None
        return self.records / self.run.wall_s

    @property
    def input_bytes(self) -> int:
        return self.input_path.stat().st_size


# ---------------------------------------------------------------- tools


def decompress_with_bgzip(vcf: Path, records: int) -> ToolResult:
    run = run_child(["bash", "-c", 'bgzip -dc -@2 "$1" | wc -l', "bash", str(vcf)])
    return _check_count(ToolResult("bgzip -dc -@2 | wc -l", vcf, records, run), header_lines(vcf) + records)


def decompress_with_python_gzip(vcf: Path, records: int) -> ToolResult:
    run = run_child([PYTHON, str(RUNNERS_DIR / "gzip_count_lines.py"), str(vcf)])
    return _check_count(ToolResult("python gzip, 1 thread", vcf, records, run), header_lines(vcf) + records)


def bcftools_query_all_fields(vcf: Path, records: int) -> ToolResult:
    run = run_child(["bcftools", "query", "-o", os.devnull, "-f", bcftools_format_all_fields(vcf), str(vcf)])
    return _mark_failure(ToolResult("bcftools query, all fields", vcf, records, run, baseline_reader=True))


def pysam_loop(vcf: Path, records: int, on_prefix: bool) -> ToolResult:
    run = run_child([PYTHON, str(RUNNERS_DIR / "pysam_read_all.py"), str(vcf)])
    result = ToolResult("pysam loop, all values", vcf, records, run, on_prefix=on_prefix, baseline_reader=True)
    return _check_count(result, records)


def polars_bio_to_parquet(vcf: Path, records: int, on_prefix: bool, work_dir: Path) -> ToolResult:
    name = "polars-bio read_vcf->Parquet"
    try:
        python = ensure_polars_bio_python()
    except PolarsBioUnavailable as reason:
        return ToolResult(name, vcf, records, unavailable=str(reason), on_prefix=on_prefix, baseline_reader=True)
    parquet = work_dir / f"polarsbio_{records}.parquet"
    parquet.unlink(missing_ok=True)
    env = dict(os.environ, TQDM_DISABLE="1")
    run = run_child([str(python), str(RUNNERS_DIR / "polarsbio_to_parquet.py"), str(vcf), str(parquet)], env=env)
    result = ToolResult(name, vcf, records, run, on_prefix=on_prefix, baseline_reader=True)
    if run.ok:
        result.output_bytes = parquet.stat().st_size
    return _check_count(result, records)


def ours_convert(vcf: Path, records: int, work_dir: Path) -> ToolResult:
    name = "ours convert_vcf->Parquet"
    import_error = converter_import_error()
    if import_error:
        return ToolResult(name, vcf, records, unavailable=import_error)
    out_dir = work_dir / f"ours_{records}"
    shutil.rmtree(out_dir, ignore_errors=True)
    run = run_child([PYTHON, str(RUNNERS_DIR / "ours_convert.py"), str(vcf), str(out_dir)])
    result = ToolResult(name, vcf, records, run)
    if run.ok:
        result.output_bytes = sum(p.stat().st_size for p in out_dir.rglob("*.parquet"))
    return _mark_failure(result)


def converter_import_error() -> str | None:
    probe = subprocess.run(
        [PYTHON, "-c", "import genolake_assets.lib.vcf.convert as m; m.convert_vcf"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        return None
    return (probe.stderr.strip().splitlines() or ["import failed"])[-1]


def _mark_failure(result: ToolResult) -> ToolResult:
    if result.run is not None and not result.run.ok:
        result.unavailable = f"failed ({result.run.failure_reason()})"
    return result


def _check_count(result: ToolResult, expected: int) -> ToolResult:
    """Mark a run failed unless it printed the number of lines/records it should have seen."""
    _mark_failure(result)
    printed = result.run.stdout.strip() if result.run else ""
    if result.unavailable is None and printed != str(expected):
        result.unavailable = f"counted {printed}, expected {expected}"
    return result


# ---------------------------------------------------------------- header helpers


def header_lines(vcf: Path) -> int:
    count = 0
    with gzip.open(vcf, "rt") as lines:
        for line in lines:
            if not line.startswith("#"):
                break
            count += 1
    return count


def header_ids(vcf: Path, kind: str) -> list[str]:
    pattern = re.compile(rf"^##{kind}=<ID=([^,>]+)")
    with gzip.open(vcf, "rt") as lines:
        return [m.group(1) for line in lines if line.startswith("##") and (m := pattern.match(line))]


def bcftools_format_all_fields(vcf: Path) -> str:
    """%CHROM..%FILTER, every INFO key declared in the header, then every FORMAT key per sample."""
    site = ["%CHROM", "%POS", "%ID", "%REF", "%ALT", "%QUAL", "%FILTER"]
    info = [f"%INFO/{key}" for key in header_ids(vcf, "INFO")]
    sample = "[\t" + "\t".join(f"%{key}" for key in header_ids(vcf, "FORMAT")) + "]"
    return "\t".join(site + info) + sample + "\n"


# ---------------------------------------------------------------- report


def print_table(results: list[ToolResult], ours: ToolResult, full_records: int) -> None:
    headers = ["tool", "records", "wall s", "records/s", "peak RSS MiB", "output bytes", "out/in", "rec/s vs ours"]
    rows = [headers] + [table_row(result, ours) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        print("  ".join(cells))
    for result in results:
        if not result.usable:
            print(f"! {result.name}: unavailable ({result.unavailable})")
        elif result.on_prefix:
            print(
                f"* {result.name}: measured on the first {result.records:,} records "
                f"({result.input_bytes:,} bytes); records/s extrapolated to {full_records:,} records "
                f"-> estimated {full_records / result.records_per_s:,.1f} s at full size"
            )


def table_row(result: ToolResult, ours: ToolResult) -> list[str]:
    records = f"{result.records:,}" + ("*" if result.on_prefix else "")
    if not result.usable:
        return [result.name, records] + ["-"] * 6
    assert result.run is not None
    has_output = result.output_bytes is not None
    return [
        result.name,
        records,
        f"{result.run.wall_s:.2f}",
        f"{result.records_per_s:,.0f}",
        f"{result.run.peak_rss_mib:,.0f}",
        f"{result.output_bytes:,}" if has_output else "-",
        f"{result.output_bytes / result.input_bytes:.2f}" if has_output else "-",
        f"{result.records_per_s / ours.records_per_s:.2f}x" if ours.usable else "n/a",
    ]


def print_memory_flatness(small: ToolResult, full: ToolResult) -> bool:
    print()
    print("memory flatness (ours):")
    if not (small.usable and full.usable):
        print("  unavailable: ours did not run at both sizes")
        return False
    assert small.run is not None and full.run is not None
    ratio = full.run.peak_rss_mib / small.run.peak_rss_mib
    print(f"  {small.records:>11,} records: peak RSS {small.run.peak_rss_mib:,.0f} MiB")
    print(f"  {full.records:>11,} records: peak RSS {full.run.peak_rss_mib:,.0f} MiB")
    print(f"  ratio full/small: {ratio:.2f} (flat means <= {FLAT_RSS_MAX_RATIO})")
    return ratio <= FLAT_RSS_MAX_RATIO and full.run.peak_rss_mib < GIB_IN_MIB


POLARS_BIO_RATIO = 3.5


def print_bars(results: list[ToolResult], ours: ToolResult, memory_flat: bool) -> None:
    print()
    print("bars:")
    if not ours.usable:
        print(f"  n/a  ours did not run: {ours.unavailable}")
        return
    assert ours.run is not None and ours.output_bytes is not None
    readers = [r for r in results if r.usable and r.baseline_reader]
    fastest = max(readers, key=lambda r: r.records_per_s, default=None)
    if fastest is None:
        print("  n/a  no baseline reader ran")
    else:
        _bar(
            ours.records_per_s >= fastest.records_per_s,
            f"ours records/s {ours.records_per_s:,.0f} >= fastest baseline reader "
            f"({fastest.name}: {fastest.records_per_s:,.0f})",
        )
    polars_bio = next((r for r in readers if r.name.startswith("polars-bio")), None)
    if polars_bio is not None:
        ratio = ours.records_per_s / polars_bio.records_per_s
        measured_on = "a prefix, extrapolated" if polars_bio.on_prefix else "the same file"
        _bar(ratio >= POLARS_BIO_RATIO, f"ours {ratio:.2f}x polars-bio's records/s ({measured_on}) >= "
                                        f"{POLARS_BIO_RATIO}x (issue 17)")
    _bar(ours.run.peak_rss_mib < GIB_IN_MIB, f"ours peak RSS {ours.run.peak_rss_mib:,.0f} MiB < 1 GiB")
    _bar(
        ours.output_bytes <= ours.input_bytes,
        f"ours Parquet bytes {ours.output_bytes:,} <= input .vcf.gz bytes {ours.input_bytes:,}",
    )
    _bar(memory_flat, f"ours peak RSS flat from 1/5 to full size (ratio <= {FLAT_RSS_MAX_RATIO}) and < 1 GiB")


def _bar(passed: bool, text: str) -> None:
    print(f"  {'PASS' if passed else 'FAIL'}  {text}")


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, help=f"records in the generated gVCF (default {FULL_RECORDS:,}; "
                        f"{QUICK_RECORDS:,} with --quick)")
    parser.add_argument("--baseline-records", type=int, help="prefix size for the slow pysam and polars-bio "
                        f"baselines (default {FULL_BASELINE_RECORDS:,}; {QUICK_BASELINE_RECORDS:,} with --quick)")
    parser.add_argument("--quick", action="store_true", help="fast smoke run on a small gVCF")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    args = parser.parse_args(argv)
    args.records = args.records or (QUICK_RECORDS if args.quick else FULL_RECORDS)
    default_baseline = QUICK_BASELINE_RECORDS if args.quick else FULL_BASELINE_RECORDS
    args.baseline_records = min(args.baseline_records or default_baseline, args.records)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir: Path = args.work_dir
    full_vcf = ensure_wgs_gvcf(args.records, work_dir)
    prefix_vcf = ensure_wgs_gvcf(args.baseline_records, work_dir)
    fifth_records = max(args.records // 5, 1)
    fifth_vcf = ensure_wgs_gvcf(fifth_records, work_dir)
    on_prefix = args.baseline_records < args.records

    print(f"input: {full_vcf} ({full_vcf.stat().st_size:,} bytes, {args.records:,} records)")
    print("each tool runs alone in its own child process, one after another")
    print(f"peak RSS: {peak_rss_method()}")
    print(f"load average before: {load_average()} on {os.cpu_count()} CPUs (other work on the machine skews wall times)")
    results = [
        decompress_with_bgzip(full_vcf, args.records),
        decompress_with_python_gzip(full_vcf, args.records),
        bcftools_query_all_fields(full_vcf, args.records),
        pysam_loop(prefix_vcf, args.baseline_records, on_prefix),
        polars_bio_to_parquet(prefix_vcf, args.baseline_records, on_prefix, work_dir),
        ours_convert(full_vcf, args.records, work_dir),
    ]
    ours = results[-1]
    ours_fifth = ours_convert(fifth_vcf, fifth_records, work_dir)

    print(f"load average after:  {load_average()}")
    print()
    print_table(results, ours, args.records)
    memory_flat = print_memory_flatness(ours_fifth, ours)
    print_bars(results, ours, memory_flat)
    if ours.usable and ours.run is not None:
        print()
        print(f"ours report: {ours.run.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
