"""Benchmark: every sample's genotype at 1, 10, 100 and 1,000 markers, three ways, in one run.

    .venv/bin/python benchmarks/lookup.py            # 1,000 samples (25 replicas of the 40 real gVCFs)
    .venv/bin/python benchmarks/lookup.py --quick    # 200 samples

(a) tabix-indexed per-sample gVCFs read with pysam, (b) DuckDB over the per-sample Parquet
partitions, (c) the locus-ordered cohort table read with `lib.cohort.lookup.lookup` (manifest read every
time) and, as (c) warm, with one `lib.cohort.lookup.CohortReader` reused across runs. Prints the median
time of each, the bytes each reads, the ratios, and whether (c) returns the same genotypes as (a).
See benchmarks/README.md ("Marker lookup benchmark"). Always exits 0: a report, not a gate.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SOURCE_DIR = REPO_ROOT / "data" / "vcf" / "1kg_chr22_gvcf"
DEFAULT_WORK_DIR = REPO_ROOT / "benchmarks" / ".work" / "lookup"
FULL_SAMPLES = 1_000
QUICK_SAMPLES = 200
MARKER_COUNTS = (1, 10, 100, 1_000)
SEED = 20_240_622
CHECK_MARKERS = 10  # (c) is checked against (a) genotype by genotype at this size
BAR_ONE_MARKER = 80.0
CONTIG = "chr22"
# Runs per approach and marker count. The first run is the "first" (cold-ish) figure and is the one
# whose bytes are measured; the reported time is the median of the runs after it (or the first when
# there is only one). The slow tabix runs get fewer.
RUNS = {
    "a": {1: 4, 10: 3, 100: 2, 1_000: 1},
    "b": {1: 6, 10: 6, 100: 4, 1_000: 3},
    "c": {1: 11, 10: 11, 100: 5, 1_000: 3},
    "w": {1: 51, 10: 21, 100: 11, 1_000: 5},  # (c) warm: one CohortReader; its first run opens the files
}
REF_BLOCK_ALTS = {"<NON_REF>", "<*>", "."}
DROPPED_ALTS = {"<NON_REF>", "<*>", "*"}


# ---------------------------------------------------------------- helpers


def io_counters() -> dict[str, int]:
    """/proc/self/io: rchar = bytes returned by read()/pread() syscalls of this process (all threads),
    page-cache hits included; read_bytes = bytes actually fetched from storage."""
    try:
        with open("/proc/self/io") as handle:
            return {key: int(value) for key, value in (line.split(": ") for line in handle if ": " in line)}
    except OSError:
        return {}


def rchar_delta(before: dict[str, int], after: dict[str, int]) -> int | None:
    if "rchar" not in before or "rchar" not in after:
        return None
    return after["rchar"] - before["rchar"]


def tree_bytes(root: Path, pattern: str = "*") -> tuple[int, int]:
    files = [p for p in root.rglob(pattern) if p.is_file()] if root.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def fmt_bytes(value: int | None) -> str:
    if value is None:
        return "n/a"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def fmt_s(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if value < 1 else f"{value:.2f}"


def fmt_ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "n/a"
    return f"{numerator / denominator:,.1f}x"


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


# ---------------------------------------------------------------- data: replicated gVCFs


@dataclass(frozen=True)
class Replica:
    sample: str  # new sample name (also the lake's sample_id)
    source: Path  # the real gVCF it copies


def replicas(count: int) -> list[Replica]:
    sources = sorted(SOURCE_DIR.glob("*.hg38.g.vcf.gz"))
    if not sources:
        raise SystemExit(f"no gVCFs in {SOURCE_DIR}")
    out = []
    for index in range(count):
        source = sources[index % len(sources)]
        copy = index // len(sources)
        out.append(Replica(f"{source.name.split('.')[0]}_r{copy:02d}", source))
    return out


def vcf_path(vcf_dir: Path, sample: str) -> Path:
    return vcf_dir / f"{sample}.g.vcf.gz"


def _split_source(source: Path) -> tuple[list[str], bytes]:
    """(header lines without the #CHROM line's sample, body bytes)."""
    with gzip.open(source, "rb") as handle:
        data = handle.read()
    chrom_at = data.index(b"\n#CHROM\t") + 1
    body_at = data.index(b"\n", chrom_at) + 1
    chrom_line = data[chrom_at:body_at - 1].decode()
    columns = chrom_line.split("\t")
    if len(columns) != 10:
        raise ValueError(f"{source}: expected a single-sample gVCF, got {len(columns) - 9} samples")
    return [data[:chrom_at].decode(), "\t".join(columns[:9])], data[body_at:]


def _write_replica(replica: Replica, parts: tuple[list[str], bytes], vcf_dir: Path) -> None:
    (meta, chrom_prefix), body = parts
    final = vcf_path(vcf_dir, replica.sample)
    staging = final.with_name(f".{replica.sample}.tmp.g.vcf.gz")
    text = (meta + chrom_prefix + "\t" + replica.sample + "\n").encode() + body
    with open(staging, "wb") as out:
        subprocess.run(["bgzip", "-c"], input=text, stdout=out, check=True)
    subprocess.run(["tabix", "-f", "-p", "vcf", str(staging)], check=True)
    Path(f"{staging}.tbi").replace(f"{final}.tbi")
    staging.replace(final)


def ensure_vcfs(wanted: list[Replica], vcf_dir: Path) -> tuple[int, float]:
    """bgzip + tabix -p vcf every replica that is not cached yet; (files built, seconds)."""
    vcf_dir.mkdir(parents=True, exist_ok=True)
    missing = [r for r in wanted if not (vcf_path(vcf_dir, r.sample).exists()
                                         and Path(f"{vcf_path(vcf_dir, r.sample)}.tbi").exists())]
    started = time.perf_counter()
    parts = {source: _split_source(source) for source in {r.source for r in missing}}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for _ in pool.map(lambda r: _write_replica(r, parts[r.source], vcf_dir), missing):
            pass
    return len(missing), time.perf_counter() - started


# ---------------------------------------------------------------- data: per-sample lake


def sample_key(table: str, sample: str) -> str:
    from genolake_assets.lib.lake.layout import partition_key  # noqa: PLC0415

    return partition_key(table, sample)


def _convert_chunk(jobs: list[tuple[str, str]]) -> int:
    from genolake_assets.lib.vcf.convert import convert_vcf  # noqa: PLC0415

    for vcf, lake in jobs:
        convert_vcf(vcf, lake)
    return len(jobs)


def ensure_lake(wanted: list[Replica], vcf_dir: Path, lake: Path) -> tuple[int, float]:
    """convert_vcf every replica not converted yet into lake/; (samples converted, seconds)."""
    missing = [r for r in wanted if not (lake / sample_key("reference_blocks", r.sample)).exists()]
    started = time.perf_counter()
    if missing:
        workers = max(1, min(os.cpu_count() or 1, 4))
        jobs = [(str(vcf_path(vcf_dir, r.sample)), str(lake)) for r in missing]
        chunks = [jobs[i::workers * 4] for i in range(workers * 4) if jobs[i::workers * 4]]
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for _ in pool.map(_convert_chunk, chunks):
                pass
    return len(missing), time.perf_counter() - started


# ---------------------------------------------------------------- markers


def draw_markers(sources: list[Path], count: int) -> tuple[list[tuple[str, int]], int, int]:
    """Distinct real record positions (fixed seed), alternating variant and reference-block starts.

    Returns (markers in draw order, distinct variant positions, distinct block positions); the first
    k markers are the k-marker query, so every size holds both kinds."""
    variant_pos, block_pos = set(), set()
    for source in sources:
        with gzip.open(source, "rt") as lines:
            for line in lines:
                if line.startswith("#"):
                    continue
                chrom, pos, _id, _ref, alt = line.split("\t", 5)[:5]
                if chrom != CONTIG:
                    continue
                alts = alt.split(",")
                (block_pos if all(a in REF_BLOCK_ALTS for a in alts) else variant_pos).add(int(pos))
    rng = random.Random(SEED)
    variants = sorted(variant_pos)
    blocks = sorted(block_pos - variant_pos)
    rng.shuffle(variants)
    rng.shuffle(blocks)
    drawn: list[int] = []
    seen: set[int] = set()
    for index in range(max(len(variants), len(blocks))):
        for pool in (variants, blocks):
            if index < len(pool) and pool[index] not in seen:
                seen.add(pool[index])
                drawn.append(pool[index])
    return [(CONTIG, pos) for pos in drawn[:count]], len(variant_pos), len(blocks)


# ---------------------------------------------------------------- genotypes (common form)
#
# Each approach's rows become (sample, marker) -> the genotype strings a lookup reports there,
# following the rules documented in lib/cohort/lookup.py (re-implemented here, not imported): variant rows
# starting at the marker, reference blocks spanning it; the sample's carried alleles if any, else
# one hom-ref / no-call genotype, else None (nothing covers the marker for that sample).


def gt_string(alleles, phased) -> str | None:
    if alleles is None:
        return None
    return ("|" if phased else "/").join("." if a is None else str(a) for a in alleles)


def call_strings(rows: list[tuple[str, tuple | None, bool]]) -> list[str | None]:
    """rows: (kind, alleles, phased) covering one sample at one marker -> reported genotype(s)."""
    variants = [r for r in rows if r[0] == "variant"]
    blocks = [r for r in rows if r[0] != "variant"]
    carried = sorted(gt_string(a, p) for _, a, p in variants if a and any(x is not None and x > 0 for x in a))
    if carried:
        return carried
    if variants:
        reference = [r for r in variants if r[1] and all(x == 0 for x in r[1])]
        _, alleles, phased = (reference or variants)[0]
        return [gt_string(alleles, phased)]
    if blocks:
        _, alleles, phased = blocks[0]
        return ["0/0" if alleles is None else gt_string(alleles, phased)]
    return [None]


def calls_counter(samples: list[str], markers: list[int], rows) -> Counter:
    """rows: iterable of (sample, marker, kind, alleles, phased) -> Counter of (sample, marker, genotype)."""
    grouped: dict[tuple[str, int], list] = defaultdict(list)
    for sample, marker, kind, alleles, phased in rows:
        grouped[(sample, marker)].append((kind, alleles, phased))
    out: Counter = Counter()
    for sample in samples:
        for marker in markers:
            for text in call_strings(grouped.get((sample, marker), [])):
                out[(sample, marker, text)] += 1
    return out


def min_rep(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Hail's min_rep: trim the common suffix, then the common prefix, keeping >= 1 base each."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return pos, ref, alt


def tabix_record_rows(marker: int, pos: int, ref: str, alt: str, gt: str) -> list[tuple[str, tuple | None, bool]]:
    """The lake rows one gVCF record gives at `marker`, mirroring the converter (docs/variant-table.md):
    a reference block as it is (tabix only returns records spanning the marker); a variant split per
    kept ALT with min_rep and the GT downcoded, kept when the split row starts at the marker."""
    alts = alt.split(",")
    phased = "|" in gt
    alleles = None if gt in ("", ".") else tuple(None if a == "." else int(a) for a in re.split(r"[/|]", gt))
    if all(a in REF_BLOCK_ALTS for a in alts):
        return [("reference_block", alleles, phased)]
    out = []
    for index, allele in enumerate(alts, start=1):
        if allele in DROPPED_ALTS:
            continue
        if len(alts) == 1:
            row_pos, row_alleles = pos, alleles
        else:
            row_pos = min_rep(pos, ref, allele)[0]
            row_alleles = None if alleles is None else tuple(None if a is None else int(a == index) for a in alleles)
        if row_pos == marker:
            out.append(("variant", row_alleles, phased))
    return out


# ---------------------------------------------------------------- (a) pysam over tabix-indexed gVCFs


def query_tabix(files: list[tuple[str, Path]], markers: list[tuple[str, int]]) -> list[tuple]:
    """Open each sample's file once, fetch every marker, keep the GT of every overlapping record."""
    import pysam  # noqa: PLC0415

    ordered = sorted(markers)
    found = []
    for sample, path in files:
        tabix = pysam.TabixFile(str(path))
        try:
            for contig, pos in ordered:
                for line in tabix.fetch(contig, pos - 1, pos):
                    fields = line.split("\t", 10)
                    keys = fields[8].split(":")
                    gt = fields[9].split(":")[keys.index("GT")] if "GT" in keys else "."
                    found.append((sample, pos, int(fields[1]), fields[3], fields[4], gt))
        finally:
            tabix.close()
    return found


def tabix_calls(samples: list[str], markers: list[int], found: list[tuple]) -> Counter:
    rows = ((sample, marker, kind, alleles, phased)
            for sample, marker, pos, ref, alt, gt in found
            for kind, alleles, phased in tabix_record_rows(marker, pos, ref, alt, gt))
    return calls_counter(samples, markers, rows)


# ---------------------------------------------------------------- (b) DuckDB over per-sample partitions


def duckdb_sql(lake: Path, markers: list[tuple[str, int]]) -> str:
    """Variant rows starting at a marker, reference blocks spanning one, from every sample's files."""
    positions = sorted({pos for _, pos in markers})
    assert {contig for contig, _ in markers} == {CONTIG}
    listed = ", ".join(str(p) for p in positions)
    values = ", ".join(f"({p})" for p in positions)
    variants = (lake / "variants" / "*" / "*.parquet").as_posix()
    blocks = (lake / "reference_blocks" / "*" / "*.parquet").as_posix()
    return (
        f"SELECT v.pos AS marker, v.sample_id, 'variant' AS kind, v.gt, v.gt_phased "
        f"FROM read_parquet('{variants}', hive_partitioning = false) AS v "
        f"WHERE v.contig = '{CONTIG}' AND v.pos IN ({listed}) "
        f"UNION ALL "
        f"SELECT m.marker, b.sample_id, 'reference_block' AS kind, b.gt, b.gt_phased "
        f"FROM read_parquet('{blocks}', hive_partitioning = false) AS b "
        f"JOIN (VALUES {values}) AS m(marker) ON b.pos <= m.marker AND b.\"end\" >= m.marker "
        f"WHERE b.contig = '{CONTIG}' AND b.pos <= {positions[-1]} AND b.\"end\" >= {positions[0]}"
    )


def query_duckdb(lake: Path, markers: list[tuple[str, int]], profile_to: Path | None = None):
    """Fresh connection per query (as a one-off query would have); returns (arrow table, bytes)."""
    import duckdb  # noqa: PLC0415

    connection = duckdb.connect()
    try:
        if profile_to is not None:
            connection.execute("PRAGMA enable_profiling = 'json'")
            connection.execute(f"PRAGMA profiling_output = '{profile_to.as_posix()}'")
        table = connection.sql(duckdb_sql(lake, markers)).to_arrow_table()
    finally:
        connection.close()
    total = None
    if profile_to is not None and profile_to.exists():
        try:
            total = json.loads(profile_to.read_text())["io"]["total_bytes_read"]
        except (KeyError, ValueError, TypeError):
            total = None
    return table, total


def duckdb_calls(samples: list[str], markers: list[int], table) -> Counter:
    c = table.to_pydict()
    rows = ((s, m, k, None if g is None else tuple(g), bool(p))
            for s, m, k, g, p in zip(c["sample_id"], c["marker"], c["kind"], c["gt"], c["gt_phased"]))
    return calls_counter(samples, markers, rows)


# ---------------------------------------------------------------- (c) the cohort table


def cohort_modules():
    """Import the cohort modules, or return the reason they are unavailable."""
    try:
        from genolake_assets.lib.cohort import layout as cohort_layout  # noqa: PLC0415
        from genolake_assets.lib.cohort import lookup as cohort_lookup  # noqa: PLC0415
        from genolake_assets.resources.lake import cohort_reader  # noqa: PLC0415
    except Exception as error:  # noqa: BLE001 - a report, not a gate
        return None, f"{type(error).__name__}: {error}"
    return (cohort_layout, cohort_lookup, cohort_reader), None


def build_cohort(modules, wanted: list[Replica], lake: Path, work_dir: Path) -> dict:
    """update_cohort over every replica's per-sample files (one run, all samples); uploads go under
    lake/, the manifest to lake/<STATE_KEY>. Returns the build time and the new state."""
    layout = modules[0]
    state_path = lake / layout.STATE_KEY
    shutil.rmtree(lake / "cohort", ignore_errors=True)
    state_path.unlink(missing_ok=True)
    out_dir = work_dir / "cohort_build_out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)

    inputs = []
    for r in wanted:
        variants = lake / sample_key("variants", r.sample)
        blocks = lake / sample_key("reference_blocks", r.sample)
        token = f"bench-{blocks.stat().st_mtime_ns}"
        inputs.append(layout.SampleInput(r.sample, token, variants if variants.exists() else None,
                                         blocks if blocks.exists() else None))
    started = time.perf_counter()
    update = layout.update_cohort(layout.CohortState.empty(), inputs, set(), lambda key: lake / key, out_dir)
    build_s = time.perf_counter() - started
    for key, local in update.uploads.items():
        target = lake / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(local), target)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    document = update.state.to_json()
    state_path.write_bytes(document if isinstance(document, bytes) else str(document).encode())
    shutil.rmtree(out_dir, ignore_errors=True)
    return {"seconds": build_s, "state": update.state, "manifest_bytes": state_path.stat().st_size}


def open_cohort(modules, lake: Path):
    return modules[2].open_lake(str(lake))


def query_cohort(modules, filesystem, root, markers: list[tuple[str, int]]):
    """Read the manifest, then look the markers up: what a one-off query does."""
    _layout, lookup_module, reader = modules
    state = reader.read_state(filesystem, root)
    parsed = [lookup_module.parse_marker(f"{contig}:{pos}") for contig, pos in markers]
    return lookup_module.lookup(parsed, state, filesystem, root, lookup_module.ReaderSettings())


def warm_reader(modules, filesystem, root):
    """A CohortReader built once: the manifest and footers stay cached between lookups."""
    lookup_module = modules[1]
    return lookup_module.CohortReader(filesystem, root, lookup_module.ReaderSettings())


def query_warm(modules, reader, markers: list[tuple[str, int]]):
    parsed = [modules[1].parse_marker(f"{contig}:{pos}") for contig, pos in markers]
    return reader.lookup(parsed)


def cohort_calls(table) -> Counter:
    c = table.to_pydict()
    return Counter((s, m, g) for s, m, g in zip(c["sample_id"], c["pos"], c["genotype"]))


# ---------------------------------------------------------------- timing


@dataclass
class Measure:
    first_s: float | None = None
    median_s: float | None = None
    runs: int = 0
    bytes: int | None = None  # the approach's own byte count (see README)
    rchar: int | None = None  # /proc/self/io rchar delta over the first run
    result: object = None
    error: str | None = None
    extra: dict = field(default_factory=dict)


def measure(runs: int, first_run, timed_run) -> Measure:
    """first_run() -> (result, bytes, extra) is timed and metered; then runs-1 timed_run() calls."""
    out = Measure()
    try:
        before = io_counters()
        started = time.perf_counter()
        out.result, out.bytes, out.extra = first_run()
        out.first_s = time.perf_counter() - started
        out.rchar = rchar_delta(before, io_counters())
        times, inner = [], []
        for _ in range(runs - 1):
            started = time.perf_counter()
            result = timed_run()
            times.append(time.perf_counter() - started)
            if hasattr(result, "seconds"):
                inner.append(result.seconds)
        if inner:
            out.extra["inner_median_s"] = statistics.median(inner)
        out.runs = runs
        out.median_s = statistics.median(times) if times else out.first_s
    except Exception as error:  # noqa: BLE001 - a report, not a gate
        out.error = f"{type(error).__name__}: {error}"
        traceback.print_exc()
    return out


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, help=f"samples in the cohort (default {FULL_SAMPLES:,}; "
                        f"{QUICK_SAMPLES} with --quick)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} samples")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    args = parser.parse_args(argv)
    args.samples = args.samples or (QUICK_SAMPLES if args.quick else FULL_SAMPLES)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    total_started = time.perf_counter()
    work: Path = args.work_dir.resolve()
    vcf_dir = work / "vcf"
    lake = work / f"lake_{args.samples}"
    wanted = replicas(args.samples)
    sources = sorted({r.source for r in wanted})
    all_sources = sorted(SOURCE_DIR.glob("*.hg38.g.vcf.gz"))
    copies = -(-args.samples // len(all_sources))
    print(f"samples: {args.samples:,} = {len(all_sources)} real 1000 Genomes chr22 gVCFs "
          f"({SOURCE_DIR.relative_to(REPO_ROOT)}) x up to {copies} copies, renamed <source>_r<NN>")
    print(f"load average before: {load_average()} on {os.cpu_count()} CPUs")

    built, seconds = ensure_vcfs(wanted, vcf_dir)
    print(f"(a) data: {built:,} gVCFs bgzipped + tabix-indexed in {seconds:.1f} s "
          f"({args.samples - built:,} cached) under {vcf_dir.relative_to(REPO_ROOT)}")
    converted, seconds = ensure_lake(wanted, vcf_dir, lake)
    print(f"(b) data: {converted:,} samples converted with convert_vcf in {seconds:.1f} s "
          f"({args.samples - converted:,} cached) under {lake.relative_to(REPO_ROOT)}")

    vcf_files = [vcf_path(vcf_dir, r.sample) for r in wanted]
    vcf_bytes = sum(p.stat().st_size for p in vcf_files)
    tbi_bytes = sum(Path(f"{p}.tbi").stat().st_size for p in vcf_files)
    per_sample_files, per_sample_bytes = 0, 0
    for table in ("variants", "reference_blocks"):
        n, b = tree_bytes(lake / table, "*.parquet")
        per_sample_files, per_sample_bytes = per_sample_files + n, per_sample_bytes + b

    markers, n_variant_pos, n_block_pos = draw_markers(sources, max(MARKER_COUNTS))
    print(f"markers: {len(markers):,} distinct {CONTIG} positions drawn with seed {SEED} from "
          f"{n_variant_pos:,} variant and {n_block_pos:,} reference-block start positions, alternating "
          f"kinds; the k-marker query uses the first k")

    modules, cohort_error = cohort_modules()
    cohort = None
    if modules is not None:
        try:
            cohort = build_cohort(modules, wanted, lake, work)
        except Exception as error:  # noqa: BLE001
            traceback.print_exc()
            cohort_error = f"cohort build failed: {type(error).__name__}: {error}"

    print()
    print("sizes:")
    print(f"  (a) gVCFs:               {len(vcf_files):,} .vcf.gz {fmt_bytes(vcf_bytes)} + "
          f"{len(vcf_files):,} .tbi {fmt_bytes(tbi_bytes)}")
    print(f"  (b) per-sample Parquet:  {per_sample_files:,} files {fmt_bytes(per_sample_bytes)}")
    if cohort is not None:
        state = cohort["state"]
        files = sum(len(p.files) for p in state.partitions.values())
        rows = sum(p.rows for p in state.partitions.values())
        n_files, cohort_bytes = tree_bytes(lake / "cohort", "*.parquet")
        manifest_bytes = cohort["manifest_bytes"]
        print(f"  (c) cohort table:        {len(state.samples):,} samples, {rows:,} rows, "
              f"{len(state.partitions)} partitions, {files} files ({n_files} on disk) "
              f"{fmt_bytes(cohort_bytes)} + manifest {fmt_bytes(manifest_bytes)}; "
              f"{cohort_bytes / per_sample_bytes:.2f}x the per-sample Parquet bytes")
        print(f"  (c) build: update_cohort over all {args.samples:,} samples in one run: "
              f"{cohort['seconds']:.1f} s")
    else:
        print(f"  (c) cohort table: unavailable ({cohort_error})")

    filesystem = root = None
    if cohort is not None:
        filesystem, root = open_cohort(modules, lake)

    results: dict[int, dict[str, Measure]] = {}
    file_list = [(r.sample, vcf_path(vcf_dir, r.sample)) for r in wanted]
    profile_path = work / "duckdb_profile.json"
    for count in MARKER_COUNTS:
        subset = markers[:count]
        row: dict[str, Measure] = {}
        row["a"] = measure(RUNS["a"][count], lambda: (query_tabix(file_list, subset), None, {}),
                           lambda: query_tabix(file_list, subset))
        row["a"].bytes = row["a"].rchar

        def duck_first():
            profile_path.unlink(missing_ok=True)
            table, total = query_duckdb(lake, subset, profile_path)
            return table, total, {}

        row["b"] = measure(RUNS["b"][count], duck_first, lambda: query_duckdb(lake, subset))
        if cohort is not None:
            def cohort_first():
                result = query_cohort(modules, filesystem, root, subset)
                return result, result.bytes_read + cohort["manifest_bytes"], {"files": result.files_opened,
                                                   "row_groups": result.row_groups_read}

            row["c"] = measure(RUNS["c"][count], cohort_first,
                               lambda: query_cohort(modules, filesystem, root, subset))
            try:
                reader = warm_reader(modules, filesystem, root)
            except Exception as error:  # noqa: BLE001 - a report, not a gate
                row["w"] = Measure(error=f"{type(error).__name__}: {error}")
            else:
                def warm_first():
                    result = query_warm(modules, reader, subset)
                    return result, result.bytes_read, {"files": result.files_opened,
                                                       "row_groups": result.row_groups_read}

                row["w"] = measure(RUNS["w"][count], warm_first, lambda: query_warm(modules, reader, subset))
                reader.close()
        else:
            row["c"] = Measure(error=cohort_error)
            row["w"] = Measure(error=cohort_error)
        results[count] = row
        print(f"  ... {count:,} markers: (a) {fmt_s(row['a'].median_s)} s, (b) {fmt_s(row['b'].median_s)} s, "
              f"(c) {fmt_s(row['c'].median_s)} s, (c) warm {fmt_s(row['w'].median_s)} s", flush=True)

    print()
    print_table(results)
    print_checks(results, [r.sample for r in wanted], markers, cohort is not None)
    print()
    one = results[1]
    for key, label in (("c", "(c)"), ("w", "(c) warm")):
        if one[key].median_s and one["a"].median_s:
            speedup = one["a"].median_s / one[key].median_s
            verdict = "pass" if speedup >= BAR_ONE_MARKER else "fail"
            print(f"one marker: {label} is {speedup:,.1f}x faster than tabix (bar {BAR_ONE_MARKER:.0f}x): {verdict}")
        else:
            print(f"one marker: {label} vs tabix: n/a ({label} unavailable: {one[key].error}) "
                  f"(bar {BAR_ONE_MARKER:.0f}x): fail")
    print(f"load average after: {load_average()}; total run {time.perf_counter() - total_started:.0f} s")
    return 0


def print_table(results: dict[int, dict[str, Measure]]) -> None:
    headers = ["markers", "(a) tabix s", "(b) duckdb s", "(c) cohort s", "(c) warm s", "(c) vs (a)",
               "(c) warm vs (a)", "(c) vs (b)", "bytes (a) / (b) / (c)"]
    rows = [headers]
    for count, row in results.items():
        a, b, c = row["a"], row["b"], row["c"]
        w = row.get("w", Measure())
        rows.append([
            f"{count:,}", fmt_s(a.median_s), fmt_s(b.median_s), fmt_s(c.median_s), fmt_s(w.median_s),
            fmt_ratio(a.median_s, c.median_s), fmt_ratio(a.median_s, w.median_s), fmt_ratio(b.median_s, c.median_s),
            f"{fmt_bytes(a.bytes)} / {fmt_bytes(b.bytes)} / {fmt_bytes(c.bytes)}",
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    for r in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths)))
    print()
    print("first run of each (s; page cache warm, process-level caches cold) and runs behind each median:")
    for count, row in results.items():
        parts = [f"({k}) {fmt_s(m.first_s)} [{m.runs} runs]" for k, m in row.items()]  # (w) = (c) warm
        print(f"  {count:>5,} markers: " + ", ".join(parts))
    print("rchar over the first run (bytes returned by read syscalls, same meter for all three):")
    for count, row in results.items():
        parts = [f"({k}) {fmt_bytes(m.rchar)}" for k, m in row.items()]
        extra = row["c"].extra
        files = f"; (c) opened {extra['files']} files, read {extra['row_groups']} row groups" if extra else ""
        if "inner_median_s" in extra:
            files += f", lookup() alone {fmt_s(extra['inner_median_s'])} s (median; the rest is the manifest)"
        print(f"  {count:>5,} markers: " + ", ".join(parts) + files)
    for count, row in results.items():
        for key, m in row.items():
            if m.error:
                print(f"! {count:,} markers ({key}): {m.error}")


def print_checks(results: dict[int, dict[str, Measure]], samples: list[str], markers: list[tuple[str, int]],
                 have_cohort: bool) -> None:
    print()
    print("genotype checks (sample x marker -> the genotype(s) a lookup reports, None = nothing covers it;")
    print("(a)'s records are split like the converter does, then every approach goes through the same rules):")
    check = results[CHECK_MARKERS]
    positions = [pos for _, pos in markers[:CHECK_MARKERS]]
    tabix = tabix_calls(samples, positions, check["a"].result) if check["a"].result is not None else None
    if tabix is not None and check["b"].result is not None:
        print(f"  {CHECK_MARKERS:>5,} markers, (b) vs (a): {compare(duckdb_calls(samples, positions, check['b'].result), tabix)}")
    if not have_cohort:
        print("  (c): unavailable")
        return
    if tabix is not None and check["c"].result is not None:
        print(f"  {CHECK_MARKERS:>5,} markers, (c) vs (a): {compare(cohort_calls(check['c'].result.table), tabix)}")
    if tabix is not None and check.get("w") is not None and check["w"].result is not None:
        print(f"  {CHECK_MARKERS:>5,} markers, (c) warm vs (a): "
              f"{compare(cohort_calls(check['w'].result.table), tabix)}")
    for count, row in results.items():
        if row["b"].result is not None and row["c"].result is not None:
            positions = [pos for _, pos in markers[:count]]
            duck = duckdb_calls(samples, positions, row["b"].result)
            print(f"  {count:>5,} markers, (c) vs (b): {compare(cohort_calls(row['c'].result.table), duck)}")
            if row.get("w") is not None and row["w"].result is not None:
                print(f"  {count:>5,} markers, (c) warm vs (b): {compare(cohort_calls(row['w'].result.table), duck)}")


def compare(got: Counter, expected: Counter) -> str:
    total = sum(expected.values())
    pairs = len({(s, m) for s, m, _ in expected})
    called = sum(n for (_, _, g), n in expected.items() if g is not None)
    missing = expected - got
    extra = got - expected
    if not missing and not extra:
        return f"equal: {pairs:,} sample x marker pairs, {total:,} genotypes ({called:,} non-null)"
    examples = list(missing.items())[:3] + list(extra.items())[:3]
    return (f"DIFFER: {sum(missing.values()):,} missing and {sum(extra.values()):,} extra of "
            f"{total:,} expected; e.g. {examples}")


if __name__ == "__main__":
    try:
        main()
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code)
    except Exception:  # noqa: BLE001 - a report, not a gate
        traceback.print_exc()
    sys.exit(0)
