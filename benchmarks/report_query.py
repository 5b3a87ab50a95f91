"""Benchmark: the drug-response report on the demo lake (DuckDB over Parquet) vs answering the same
question from the source files each time (plain Python over the VCF text and the ClinVar TSV).

    .venv/bin/python benchmarks/report_query.py [--home DIR] [--repeats N]

Builds the demo lake in --home first if it has no catalog (about half a minute). Prints latency
(median and worst of N warm runs, plus the first run), the bytes each approach reads, and the ratios.
Always exits 0: it is a report, not a gate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genolake_assets.demo import DEFAULT_CLINVAR, DEFAULT_DATA, DEMO_REPORTS, run_demo  # noqa: E402
from genolake_assets.queries import render  # noqa: E402
from genolake_assets.resources.sql.duckdb_engine import DuckDbQueryEngine  # noqa: E402
from tests.pipeline.report_oracle import expected_report  # noqa: E402

COHORT_VCF = DEFAULT_DATA / "1kg_chr20_100samples_GRCh37.vcf"


def timed(function, repeats: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(REPO / "benchmarks" / ".work" / "report-lake"))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    home = Path(args.home).resolve()
    if not (home / "catalog.duckdb").exists():
        print(f"building the demo lake in {home} ...", flush=True)
        run_demo(home, fresh=True, echo=lambda *_: None)
    os.environ.setdefault("GENOLAKE_HOME", str(home))
    engine = DuckDbQueryEngine(database=str(home / "catalog.duckdb"))

    print(f"{'report':<22} {'approach':<34} {'first':>8} {'median':>8} {'worst':>8} {'bytes read':>12} {'rows':>5}")
    for name, config in DEMO_REPORTS.items():
        statement = render("drug_response_report", result_limit=50, **config)
        lake_times, lake_result = timed(lambda: engine.run(statement), args.repeats + 1)
        source_bytes = COHORT_VCF.stat().st_size + DEFAULT_CLINVAR.stat().st_size
        base_times, (_, base_rows) = timed(
            lambda: expected_report([COHORT_VCF], DEFAULT_CLINVAR, config["sample_pattern"],
                                    config["significance_pattern"], config["assembly"], 50), max(2, args.repeats // 3))
        lake_median, base_median = statistics.median(lake_times[1:]), statistics.median(base_times)
        print(f"{name:<22} {'lake: DuckDB over Parquet':<34} {lake_times[0] * 1000:>6.0f}ms {lake_median * 1000:>6.0f}ms "
              f"{max(lake_times[1:]) * 1000:>6.0f}ms {lake_result.bytes_scanned:>12,} {lake_result.table.num_rows:>5}")
        print(f"{'':<22} {'baseline: Python over VCF + TSV':<34} {base_times[0] * 1000:>6.0f}ms "
              f"{base_median * 1000:>6.0f}ms {max(base_times) * 1000:>6.0f}ms {source_bytes:>12,} {len(base_rows):>5}")
        same = "same rows" if lake_result.table.num_rows == len(base_rows) else "ROW COUNTS DIFFER"
        print(f"{'':<22} speed-up {base_median / lake_median:.1f}x, bytes read {lake_result.bytes_scanned / source_bytes:.3f}x"
              f" of the sources ({same})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
