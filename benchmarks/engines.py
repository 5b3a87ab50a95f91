"""The two conversion engines on the same inputs in one run: arrow (in-process) vs Hail on local Spark.

    .venv/bin/python benchmarks/engines.py              # cohort VCF, one gVCF, a 200,000-record gVCF
    .venv/bin/python benchmarks/engines.py --wgs 0      # the two small real files only

Each engine converts each input alone in a child process; see benchmarks/README.md ("Engine
benchmark") for what each figure means. The exit status is 0 whatever the results: this is a report.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from make_wgs_gvcf import DEFAULT_WORK_DIR, REPO_ROOT, ensure_wgs_gvcf
from measure import ChildRun, peak_rss_method, run_child

from genolake_assets.lib.vcf.batch import BatchResult, ConversionJob, ConversionManifest
from genolake_assets.lib.lake.identifiers import sample_id_for
from genolake_assets.lib.vcf.header import read_header

PYTHON = sys.executable
SPARK_JOB = REPO_ROOT / "spark" / "vcf_to_parquet.py"
HAIL_ARGS = ["--master", "local[2]", "--driver-memory", "2g"]
SHARED_VCF = REPO_ROOT.parent / "shared" / "data" / "vcf"
REAL_INPUTS = [("cohort, 100 samples", SHARED_VCF / "1kg_chr20_100samples_GRCh37.vcf"),
               ("gVCF HG00187", SHARED_VCF / "1kg_chr22_gvcf" / "HG00187.hg38.g.vcf.gz")]
DEFAULT_WGS_RECORDS = 200_000
POLL_SECONDS = 0.1
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20
HAIL_STEPS = re.compile(r"^(?P<vcf>\S+): (?P<steps>plan .* s)$", re.MULTILINE)


@dataclass
class EngineRun:
    engine: str
    run: ChildRun
    tree_peak_mib: float  # peak of the summed RSS of every process in the child's tree
    largest_mib: float  # peak RSS of the largest single process in it
    conversion_s: float | None = None  # the conversion alone, as the engine reports it
    steps: str = ""  # Hail's per-step timings line
    rows: dict = field(default_factory=dict)  # (table, sample_id) -> rows in the staged Parquet file
    problem: str | None = None


def tree_rss_mib(root: int) -> tuple[float, float]:
    """(summed RSS, largest single RSS) of root's descendants (not root itself), from one pass over /proc.

    ru_maxrss (measure.run_child) cannot stand in: it is the peak of the largest single process, and
    only of processes that were waited for. PySpark never waits for its JVM, so for Hail it reports
    the Python driver alone and misses the JVM, the largest process by far."""
    children: dict[int, list[int]] = {}
    rss_pages: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # comm may hold spaces and ')'
        except OSError:  # the process ended while we looked
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss_pages[pid] = int(fields[21])
    total, largest, stack = 0, 0, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        total, largest = total + rss_pages.get(pid, 0), max(largest, rss_pages.get(pid, 0))
        stack.extend(children.get(pid, []))
    return total * PAGE_MIB, largest * PAGE_MIB


def run_measured(engine: str, argv: list[str]) -> EngineRun:
    """measure.run_child (wall time, ru_maxrss via GNU time) while a thread samples the tree's RSS."""
    peak, stop = [0.0, 0.0], threading.Event()

    def sample() -> None:
        while not stop.wait(POLL_SECONDS):
            peak[:] = map(max, peak, tree_rss_mib(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run = run_child(argv)
    finally:
        stop.set()
        sampler.join()
    # Sampling can miss a short peak; the tree's peak is at least its largest process's peak.
    largest = max(peak[1], run.peak_rss_mib)
    result = EngineRun(engine, run, max(peak[0], largest), largest)
    if not run.ok:
        result.problem = run.failure_reason()
    return result


def staged_rows(staging: Path) -> dict[tuple[str, str], int]:
    """Rows per (table, sample id) from the Parquet footers of both engines' layout."""
    return {(path.parent.parent.name, path.parent.name.removeprefix("sample_id=")):
            pq.ParquetFile(path).metadata.num_rows for path in sorted(staging.glob("*/sample_id=*/*.parquet"))}


def run_arrow(vcf: Path, sample_ids: dict[str, str], out: Path) -> EngineRun:
    staging = out / "arrow"
    shutil.rmtree(staging, ignore_errors=True)
    result = run_measured("arrow", [PYTHON, __file__, "--arrow-child", str(vcf), str(staging), json.dumps(sample_ids)])
    if result.problem is None:
        result.conversion_s = json.loads(result.run.stdout.strip().splitlines()[-1])["seconds"]
        result.rows = staged_rows(staging)
    return result


def run_hail(jobs: list[tuple[str, Path, dict[str, str]]], out: Path) -> tuple[EngineRun, BatchResult | None]:
    """The Hail job on a manifest of (job id, VCF, {name: sample id}); each job stages under out/<job id>."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    manifest = ConversionManifest([ConversionJob(job_id, str(vcf.resolve()), ids, str(out / job_id))
                                   for job_id, vcf, ids in jobs], result_uri=str(out / "result.json"))
    (out / "manifest.json").write_text(manifest.to_json())
    result = run_measured("hail", [PYTHON, str(SPARK_JOB), "--manifest", str(out / "manifest.json"), *HAIL_ARGS,
                                   "--tmp-dir", str(out / "tmp")])
    if result.problem is not None or not (out / "result.json").is_file():
        result.problem = result.problem or "no result.json"
        return result, None
    batch = BatchResult.from_json((out / "result.json").read_text())
    failed = [f"{o.job_id}: {o.problem}" for o in batch.outcomes if not o.ok]
    result.problem = "; ".join(failed) or None
    result.steps = "; ".join(m["steps"] for m in HAIL_STEPS.finditer(result.run.stdout))
    return result, batch


def count_records(vcf: Path) -> int:
    with (gzip.open(vcf, "rt") if vcf.suffix == ".gz" else open(vcf)) as lines:
        return sum(1 for line in lines if not line.startswith("#"))


COLUMNS = [("input", 20), ("records", 7), ("engine", 6), ("wall s", 7), ("conv s", 6), ("records/s", 9),
           ("tree RSS MiB", 12), ("largest MiB", 11), ("hail/arrow s", 12), ("arrow/hail rec/s", 16),
           ("RSS hail/arrow", 14)]


def table_line(cells: list[str]) -> str:
    """Input and engine left-aligned, figures right-aligned."""
    return " ".join(c.ljust(w) if name in ("input", "engine") else c.rjust(w)
                    for c, (name, w) in zip(cells, COLUMNS)).rstrip()


def row_line(label: str, records: int, r: EngineRun, arrow: EngineRun) -> str:
    if r.problem is not None:
        return table_line([label, f"{records:,}", r.engine]) + f"  failed: {r.problem}"
    wall, conv = r.run.wall_s, (f"{r.conversion_s:.2f}" if r.conversion_s is not None else "-")
    ratios = [] if r is arrow or arrow.problem else [
        f"{wall / arrow.run.wall_s:.1f}x", f"{(records / arrow.run.wall_s) / (records / wall):.1f}x",
        f"{r.tree_peak_mib / arrow.tree_peak_mib:.1f}x"]
    return table_line([label, f"{records:,}", r.engine, f"{wall:.2f}", conv, f"{records / wall:,.0f}",
                       f"{r.tree_peak_mib:,.0f}", f"{r.largest_mib:,.0f}", *ratios])


def total_run(engine: str, runs: list[EngineRun]) -> EngineRun:
    """Seconds summed over the inputs; RSS the largest peak of any input (they ran one after another)."""
    wall = sum(r.run.wall_s for r in runs)
    return EngineRun(engine, ChildRun(wall, 0.0, 0, "", ""), max(r.tree_peak_mib for r in runs),
                     max(r.largest_mib for r in runs), conversion_s=sum(r.conversion_s for r in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wgs", type=int, default=DEFAULT_WGS_RECORDS, metavar="N",
                        help=f"also a generated gVCF of N records (default {DEFAULT_WGS_RECORDS:,}; 0: none)")
    parser.add_argument("--no-warm", action="store_true", help="skip the extra one-JVM Hail run (warm figures)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    work = args.work_dir / "engines"
    inputs = list(REAL_INPUTS) + ([(f"WGS gVCF {args.wgs:,}", ensure_wgs_gvcf(args.wgs, args.work_dir))]
                                  if args.wgs else [])
    print(f"peak RSS: sampled every {POLL_SECONDS} s over the child's process tree (GNU time, Python, JVM, "
          f"Spark's Python workers): tree = summed RSS, largest = largest single process; "
          f"also floored by {peak_rss_method()}")
    print(f"hail: {SPARK_JOB.relative_to(REPO_ROOT)} {' '.join(HAIL_ARGS)}, a fresh JVM per input")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(other work on the machine skews the times)")

    pairs, jobs = [], []
    for index, (label, vcf) in enumerate(inputs):
        sample_ids = {name: sample_id_for(name) for name in read_header(vcf).samples}
        records, out = count_records(vcf), work / f"input{index}"
        print(f"- {label}: {vcf} ({records:,} records x {len(sample_ids)} samples)", flush=True)
        arrow = run_arrow(vcf, sample_ids, out)
        hail, batch = run_hail([("vcf0", vcf, sample_ids)], out / "hail")
        if batch is not None and hail.problem is None:
            hail.conversion_s, hail.rows = batch.outcomes[0].seconds, staged_rows(out / "hail" / "vcf0")
        pairs.append((label, records, arrow, hail))
        jobs.append((f"vcf{index}", vcf, sample_ids))

    warm: dict[str, float] = {}
    if not args.no_warm:
        # One JVM for every input after a warm-up conversion of the small gVCF: each input's conversion
        # then runs without JVM start-up, Hail's first-use initialisation and cold JIT/code generation.
        print("- warm Hail: every input again in one JVM, after a warm-up job (the small gVCF)", flush=True)
        warm_run, batch = run_hail([("warmup", *jobs[1][1:]), *jobs], work / "hail_warm")
        warm = {o.job_id: o.seconds for o in batch.outcomes if o.ok} if batch else {}
        if warm_run.problem:
            print(f"  warm run: {warm_run.problem}")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print_report(pairs, warm)
    print(f"\nwhole benchmark run: {time.perf_counter() - started:.0f} s")
    return 0


def print_report(pairs: list[tuple[str, int, EngineRun, EngineRun]], warm: dict[str, float]) -> None:
    print(table_line([name for name, _width in COLUMNS]))
    for label, records, arrow, hail in pairs:
        print(row_line(label, records, arrow, arrow))
        print(row_line("", records, hail, arrow))
    ok = [p for p in pairs if p[2].problem is None and p[3].problem is None]
    if ok:
        records, arrow_total = sum(p[1] for p in ok), total_run("arrow", [p[2] for p in ok])
        print(row_line(f"total ({len(ok)} inputs)", records, arrow_total, arrow_total))
        print(row_line("", records, total_run("hail", [p[3] for p in ok]), arrow_total))
    print("conv s: the conversion alone as the engine times it (no interpreter/JVM start-up); total: seconds summed,"
          "\nRSS the largest of any input. Same records for both, so arrow/hail rec/s equals hail/arrow s.")

    print("\nHail cold vs conversion (wall = Python + JVM start + hl.init + conversion + hl.stop):")
    for index, (label, records, arrow, hail) in enumerate(pairs):
        if hail.problem is not None:
            continue
        print(f"  {label}: wall {hail.run.wall_s:.1f} s = start/stop {hail.run.wall_s - hail.conversion_s:.1f} s "
              f"+ cold conversion {hail.conversion_s:.1f} s [{hail.steps}]")
        warm_s = warm.get(f"vcf{index}")
        if warm_s and arrow.problem is None:
            print(f"    warm conversion (same JVM, after a warm-up) {warm_s:.1f} s, {records / warm_s:,.0f} records/s:"
                  f" {warm_s / arrow.conversion_s:.1f}x arrow's conversion ({arrow.conversion_s:.2f} s)")

    print("\nsame rows (Parquet footers of the staged files, per table and sample):")
    for label, _records, arrow, hail in pairs:
        by_table: dict[str, int] = {}
        for (table, _sample), rows in arrow.rows.items():
            by_table[table] = by_table.get(table, 0) + rows
        same = bool(arrow.rows) and arrow.rows == hail.rows
        detail = ", ".join(f"{table} {rows:,}" for table, rows in sorted(by_table.items()))
        print(f"  {label}: {'yes' if same else 'no'} ({len(arrow.rows)} files; {detail})")
        for key in sorted(set(arrow.rows) | set(hail.rows)):
            if arrow.rows.get(key) != hail.rows.get(key):
                print(f"    {key[0]} {key[1]}: arrow {arrow.rows.get(key)}, hail {hail.rows.get(key)}")


def arrow_child(vcf: str, staging: str, sample_ids_json: str) -> int:
    """The arrow engine alone in this process, so its RSS is measured apart from the benchmark's."""
    from genolake_assets.lib.vcf.convert import convert_to_staging

    sample_ids = json.loads(sample_ids_json)
    report = convert_to_staging(vcf, Path(staging), list(sample_ids), sample_ids=sample_ids)
    print(json.dumps({"seconds": report.seconds, "records_read": report.records_read}))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--arrow-child"]:
        sys.exit(arrow_child(*sys.argv[2:5]))
    sys.exit(main())
