"""The whole local pipeline at N whole-genome-sized samples: peak memory, per-stage time, bytes, lookup latency.

For each N (default 5, 10, 20, 50): N gVCFs of 5,000,000 records (the bundled chr22 records tiled over
chr1-22 by make_wgs_gvcf.py; each copy gets its own sample name, so the lake holds N distinct samples) go
through `genolake demo --data <folder>` in a child process. Printed per N: the run's wall time and peak
RSS, seconds per stage (from the Dagster instance's step events), lake bytes over input bytes, the time of
`genolake lookup` for 1, 10 and 100 markers, and the report query. Ratios are against the smallest N of
the same invocation: memory should stay flat as N grows and time per sample constant.

    python benchmarks/scale.py                      # make benchmark-scale
    python benchmarks/scale.py --samples 5 20 --records 1000000

Needs about (N x 0.4 GB) of disk per N at 5 M records; everything is removed afterwards (--keep keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS_DIR))

from make_wgs_gvcf import DEFAULT_WORK_DIR, ensure_wgs_gvcf
from measure import peak_rss_method, run_child

LOOKUP_MARKERS = (1, 10, 100)
SAMPLE_PREFIX = "WGS"


def split_header_and_body(gvcf: Path, work: Path) -> tuple[list[str], Path]:
    """The generated gVCF's header lines, and its body as a BGZF file of its own (made once, cached)."""
    body = work / (gvcf.name.removesuffix(".g.vcf.gz") + ".body.bgz")
    header: list[str] = []
    with subprocess.Popen(["bgzip", "-dc", str(gvcf)], stdout=subprocess.PIPE, text=True) as reader:
        assert reader.stdout is not None
        for line in reader.stdout:
            if not line.startswith("#"):
                break
            header.append(line)
        reader.kill()
    if not body.exists():
        partial = body.with_name(body.name + ".partial")
        subprocess.run(f"bgzip -dc '{gvcf}' | grep -v '^#' | bgzip -@2 -c > '{partial}'", shell=True, check=True)
        partial.rename(body)
    return header, body


def write_samples(header: list[str], body: Path, folder: Path, count: int) -> int:
    """``count`` gVCFs that differ only in their sample name: a bgzipped header then the shared body's
    BGZF blocks (concatenated BGZF is valid BGZF). Returns the input bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = header[-1].rstrip("\n").split("\t")
    total = 0
    for index in range(1, count + 1):
        name = f"{SAMPLE_PREFIX}{index:04d}"
        text = "".join(header[:-1]) + "\t".join(columns[:9] + [name]) + "\n"
        head = subprocess.run(["bgzip", "-c"], input=text.encode(), capture_output=True, check=True).stdout
        path = folder / f"{name}.g.vcf.gz"
        with path.open("wb") as out, body.open("rb") as shared:
            out.write(head)
            shutil.copyfileobj(shared, out, 8 << 20)
        total += path.stat().st_size
    return total


def stage_seconds(dagster_home: Path) -> dict[str, float]:
    """Seconds per step (summed over runs) from the demo's instance."""
    import dagster as dg

    seconds: dict[str, float] = defaultdict(float)
    started: dict[tuple[str, str], float] = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs():
            for record in instance.get_records_for_run(run.run_id).records:
                entry = record.event_log_entry
                event = entry.dagster_event
                if event is None or not event.step_key:
                    continue
                key = (run.run_id, event.step_key)
                if event.event_type_value == "STEP_START":
                    started[key] = entry.timestamp
                elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and key in started:
                    seconds[event.step_key] += entry.timestamp - started.pop(key)
    return dict(seconds)


def markers_in(lake: Path, count: int, seed: int = 7) -> list[str]:
    """``count`` variant positions of the cohort table, spread over the genome."""
    import pyarrow.dataset as ds

    table = ds.dataset(lake / "cohort", format="parquet", partitioning="hive").to_table(
        columns=["contig", "pos"], filter=ds.field("kind") == "variant")
    picks = random.Random(seed).sample(range(table.num_rows), min(count, table.num_rows))
    return [f"{table['contig'][i].as_py()}:{table['pos'][i].as_py()}" for i in sorted(picks)]


def lookup_seconds(lake: Path, markers: list[str]) -> tuple[float, float]:
    """(wall seconds of the `genolake lookup` process, seconds the lookup itself reports)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "genolake_assets.cli", "lookup", str(lake), *markers],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    reported = float(done.stderr.strip().rsplit(" ", 2)[-2])
    return wall, reported


def report_seconds(stdout: str) -> float | None:
    for line in stdout.splitlines():
        if line.startswith("report ") and " ms, " in line:
            return float(line.split("(", 1)[1].split(" ms", 1)[0]) / 1000
    return None


def run_one(count: int, header: list[str], body: Path, work: Path, keep: bool) -> dict:
    folder, home = work / f"input-{count}", work / f"home-{count}"
    for path in (folder, home):
        shutil.rmtree(path, ignore_errors=True)
    input_bytes = write_samples(header, body, folder, count)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENOLAKE_", "DAGSTER_"))}
    demo = run_child([sys.executable, "-m", "genolake_assets.cli", "demo", "--home", str(home),
                      "--data", str(folder)], env=env)
    if not demo.ok:
        raise SystemExit(f"N={count}: the demo failed ({demo.failure_reason()})\n{demo.stderr[-3000:]}")
    lake = home / "lake"
    lake_bytes = sum(p.stat().st_size for table in ("variants", "reference_blocks")
                     for p in (lake / table).rglob("*.parquet"))
    cohort_bytes = sum(p.stat().st_size for p in (lake / "cohort").rglob("*.parquet"))
    lookups = {n: lookup_seconds(lake, markers_in(lake, n)) for n in LOOKUP_MARKERS}
    result = {"samples": count, "wall_s": round(demo.wall_s, 1), "peak_rss_mib": round(demo.peak_rss_mib),
              "stages_s": {k: round(v, 1) for k, v in sorted(stage_seconds(home / "dagster_home").items())},
              "input_bytes": input_bytes, "lake_bytes": lake_bytes, "cohort_bytes": cohort_bytes,
              "lookup_s": {n: [round(w, 3), round(r, 4)] for n, (w, r) in lookups.items()},
              "report_s": report_seconds(demo.stdout)}
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    return result


def print_result(result: dict, baseline: dict) -> None:
    n = result["samples"]
    per_sample = result["wall_s"] / n
    print(f"\nN = {n}: {result['wall_s']:.0f} s ({per_sample:.1f} s/sample, "
          f"{per_sample / (baseline['wall_s'] / baseline['samples']):.2f}x N={baseline['samples']}'s), "
          f"peak RSS {result['peak_rss_mib']:,} MiB ({result['peak_rss_mib'] / baseline['peak_rss_mib']:.2f}x)")
    print("  stages (s): " + ", ".join(f"{k} {v}" for k, v in result["stages_s"].items()))
    print(f"  per-sample Parquet / input: {result['lake_bytes'] / result['input_bytes']:.2f} "
          f"({result['lake_bytes']:,} / {result['input_bytes']:,} bytes); cohort table {result['cohort_bytes']:,} bytes")
    print("  genolake lookup: " + ", ".join(f"{m} marker(s) {w:.2f} s process / {r * 1000:.0f} ms lookup"
                                            for m, (w, r) in result["lookup_s"].items()))
    if result["report_s"] is not None:
        print(f"  drug-response report query: {result['report_s'] * 1000:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the inputs and lakes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    work = args.work_dir / "scale"
    work.mkdir(parents=True, exist_ok=True)
    gvcf = ensure_wgs_gvcf(args.records, args.work_dir)
    header, body = split_header_and_body(gvcf, args.work_dir)
    print(f"{args.records:,} records per sample ({gvcf.stat().st_size:,} bytes); peak RSS: {peak_rss_method()}")
    results = []
    for count in sorted(args.samples):
        results.append(run_one(count, header, body, work, args.keep))
        print_result(results[-1], results[0])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
