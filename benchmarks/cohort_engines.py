"""The cohort update in-process against the distributed job (spark/cohort_update.py) on local Spark, at N
whole-genome-sized samples.

For each N: N gVCFs of 5,000,000 records (make_wgs_gvcf.py's tiling of the bundled real records, one sample
name each) are converted with `genolake convert` into one lake, which is then copied (hard links) so both
engines start from the same per-sample files. Each engine builds the cohort table with `genolake cohort
--engine <engine>` in a child process; printed: seconds, rows, files, peak RSS (of the largest process, and
summed over the child's process tree, which for Spark includes its JVM and Python workers) and the ratios
Spark / in-process. The two tables are then compared
partition by partition (rows, generation, files).

On one 2-core machine Spark is not expected to win: it shuffles every row through the JVM. What it shows
is that the distributed job gives the same table and how its cost grows with N; on EMR the same job spreads
over the core nodes (docs/cohort-layout.md, "Where the update runs").

    python benchmarks/cohort_engines.py                 # make benchmark-cohort-engines (N = 5 and 10)
    python benchmarks/cohort_engines.py --samples 5 --records 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS_DIR))

from make_wgs_gvcf import DEFAULT_WORK_DIR, ensure_wgs_gvcf
from measure import peak_rss_method, run_child
from scale import split_header_and_body, write_samples

ENGINES = ("in-process", "spark")


def _cli(*args: str, sample_tree: bool = False):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENOLAKE_", "DAGSTER_"))}
    return run_child([sys.executable, "-m", "genolake_assets.cli", *args], env=env, sample_tree=sample_tree)


def _manifest(lake: Path) -> dict:
    state = json.loads((lake / "registry" / "cohort" / "state.json").read_text())
    return {name: (p["rows"], p["gen"], len(p["files"])) for name, p in state["partitions"].items()}


def run_one(count: int, header: list[str], body: Path, work: Path, keep: bool) -> dict:
    folder, lake = work / f"input-{count}", work / f"lake-{count}"
    for path in (folder, lake, *(work / f"lake-{count}-{e}" for e in ENGINES)):
        shutil.rmtree(path, ignore_errors=True)
    write_samples(header, body, folder, count)
    convert_seconds = 0.0
    for gvcf in sorted(folder.glob("*.g.vcf.gz")):
        converted = _cli("convert", str(gvcf), str(lake), "--quiet")
        if not converted.ok:
            raise SystemExit(f"genolake convert {gvcf.name} failed ({converted.failure_reason()})")
        convert_seconds += converted.wall_s
    result = {"samples": count, "convert_s": round(convert_seconds, 1), "engines": {}}
    manifests = {}
    for engine in ENGINES:
        copy = work / f"lake-{count}-{engine}"
        subprocess.run(["cp", "-al", str(lake), str(copy)], check=True)  # same files, same mtimes (the tokens)
        built = _cli("cohort", str(copy), "--engine", engine, sample_tree=True)
        if not built.ok:
            raise SystemExit(f"N={count}: genolake cohort --engine {engine} failed ({built.failure_reason()})\n"
                             f"{built.stderr[-3000:]}")
        manifests[engine] = _manifest(copy)
        rows = sum(rows for rows, _, _ in manifests[engine].values())
        files = sum(n for _, _, n in manifests[engine].values())
        result["engines"][engine] = {"wall_s": round(built.wall_s, 1), "peak_rss_mib": round(built.peak_rss_mib),
                                     "tree_peak_rss_mib": round(built.tree_peak_rss_mib), "rows": rows, "files": files}
    result["same_table"] = manifests["spark"] == manifests["in-process"]
    if not keep:
        for path in (folder, lake, *(work / f"lake-{count}-{e}" for e in ENGINES)):
            shutil.rmtree(path, ignore_errors=True)
    return result


def print_result(result: dict) -> None:
    local, spark = result["engines"]["in-process"], result["engines"]["spark"]
    print(f"\nN = {result['samples']} ({local['rows']:,} cohort rows, {local['files']:,} files; "
          f"genolake convert {result['convert_s']:.0f} s in all)")
    for engine, figures in result["engines"].items():
        print(f"  {engine:>10}: {figures['wall_s']:7.1f} s ({figures['rows'] / figures['wall_s'] / 1e6:.2f} M rows/s), "
              f"peak RSS {figures['peak_rss_mib']:,} MiB (largest process), "
              f"{figures['tree_peak_rss_mib']:,} MiB (all its processes together)")
    print(f"  spark / in-process: time {spark['wall_s'] / local['wall_s']:.2f}x, "
          f"peak RSS of all processes {spark['tree_peak_rss_mib'] / local['tree_peak_rss_mib']:.2f}x; "
          f"same table (rows, generation, files per partition): {'yes' if result['same_table'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the inputs and lakes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    work = args.work_dir / "cohort-engines"
    work.mkdir(parents=True, exist_ok=True)
    gvcf = ensure_wgs_gvcf(args.records, args.work_dir)
    header, body = split_header_and_body(gvcf, args.work_dir)
    print(f"{args.records:,} records per sample; peak RSS: {peak_rss_method()}")
    results = []
    for count in sorted(args.samples):
        results.append(run_one(count, header, body, work, args.keep))
        print_result(results[-1])
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = last["samples"] / first["samples"]
        for engine in ENGINES:
            a, b = first["engines"][engine], last["engines"][engine]
            print(f"{engine}: N x{growth:.0f} -> time x{b['wall_s'] / a['wall_s']:.2f}, "
                  f"peak RSS of all processes x{b['tree_peak_rss_mib'] / a['tree_peak_rss_mib']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(r["same_table"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
