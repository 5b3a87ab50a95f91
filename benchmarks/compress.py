"""Benchmark: BAM -> CRAM compression on real BAMs, genolake's default codec beside the alternatives.

    .venv/bin/python benchmarks/compress.py [--repeat N] [--threads N] [--json PATH] [--bam-dir DIR]

Runs over the real BAMs in ../shared/data/bam (tests/data/bam when ../shared is absent; the output
says which set was used). For each file, side by side in one run: BAM level 6 (samtools' default),
CRAM 3.0, CRAM 3.1 normal (the default profile), CRAM 3.1 small, CRAM 3.1 archive, and "genolake" =
exactly what the compression entrypoint does by default (CompressOptions().cram()). All CRAM rows go
through lib/alignments/cram_codec.encode_cram (store_md=1, store_nm=1, no @PG), so they differ only in version
and profile; every CRAM output is decoded and compared record by record (lib/alignments/verify.py).

Figures: output bytes; ratio = input BAM bytes / output bytes; encode and decode MB/s = MB (10^6
bytes) of input BAM per second, decode being a full decode_to_bam to an uncompressed BAM; best of
--repeat rounds, each round running every codec once, so load elsewhere on the machine hits all
codecs alike. The verification cost is the genolake codec's verify_roundtrip time (best of the
rounds) and its share of encode + verify. htslib gets local REF_PATH/REF_CACHE (a temp dir), so it
never tries the network; all outputs go to a temp dir. Exits 1 if any genolake output fails verification
(or any file cannot be encoded), 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genolake_assets.lib.alignments.verify import verify_roundtrip  # noqa: E402
from genolake_assets.lib.alignments.compress import CompressOptions  # noqa: E402
from genolake_assets.lib.alignments.cram_codec import (  # noqa: E402
    CramOptions,
    decode_to_bam,
    encode_bam,
    encode_cram,
    tool_versions,
)
from genolake_assets.lib.errors import AlignmentFileError  # noqa: E402

SHARED_BAM_DIR = REPO.parent / "shared" / "data" / "bam"
TEST_BAM_DIR = REPO / "tests" / "data" / "bam"
MB = 1_000_000
GENOLAKE = "genolake"

# file name -> (reference under <bam dir>/ref/, derived reference: encode with ignore_md5)
REFERENCES: dict[str, tuple[str, bool]] = {
    "ce1000.bam": ("ce.fa.gz", False),
    "NA12878.chr22.tiny.bam": ("q.fa.gz", False),
    "htsnexus_test_NA12878.bam": ("htsnexus_test_NA12878.md_ref.fa.gz", True),
    "10_donors_chr22.selected_sites.bam": ("10_donors_chr22.md_ref.fa.gz", True),
    # the excerpt in tests/data/bam (fallback set) reads against the same derived reference
    "htsnexus_NA12878.chr11_5.0-5.1Mb.bam": ("htsnexus_test_NA12878.md_ref.fa.gz", True),
}


@dataclass(frozen=True)
class Codec:
    name: str
    cram: CramOptions | None  # None: BAM

    def describe(self) -> str:
        if self.cram is None:
            return "BAM, BGZF level 6"
        return f"CRAM {self.cram.version} profile={self.cram.profile}"


@dataclass
class CodecResult:
    codec: str
    output_bytes: int = 0
    encode_s: float = 0.0
    decode_s: float = 0.0
    verified: bool | None = None  # None: not a CRAM (BAM baseline is not verified)
    error: str | None = None


@dataclass
class FileResult:
    file: str
    reference: str
    ignore_md5: bool
    input_bytes: int
    records: int | None = None
    codecs: list[CodecResult] = field(default_factory=list)
    verify_s: float | None = None
    verified: bool = False
    differences: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


def codecs(threads: int, ignore_md5: bool) -> list[Codec]:
    def cram(version: str, profile: str) -> CramOptions:
        return CramOptions(version=version, profile=profile, threads=threads, ignore_md5=ignore_md5)

    genolake = dataclasses.replace(CompressOptions(), threads=threads, ignore_md5=ignore_md5).cram()
    return [Codec("BAM level 6", None), Codec("CRAM 3.0", cram("3.0", "normal")),
            Codec("CRAM 3.1 normal", cram("3.1", "normal")), Codec("CRAM 3.1 small", cram("3.1", "small")),
            Codec("CRAM 3.1 archive", cram("3.1", "archive")), Codec(GENOLAKE, genolake)]


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def mb_s(size: int, seconds: float | None) -> float | None:
    return size / MB / seconds if seconds else None


def ratio(size_in: int, size_out: int) -> float | None:
    return size_in / size_out if size_out else None


def measure_file(bam: Path, reference: Path, ignore_md5: bool, work: Path, repeat: int, threads: int) -> FileResult:
    """Round-robin: each round runs every codec once, so a burst of load elsewhere on the machine hits
    all codecs alike rather than one codec's repeats; the best round per codec is kept."""
    result = FileResult(file=bam.name, reference=reference.name, ignore_md5=ignore_md5, input_bytes=bam.stat().st_size)
    decoded = work / "decoded.bam"
    accept = CompressOptions().accepted
    plan = [(codec, CodecResult(codec=codec.name, encode_s=float("inf"), decode_s=float("inf")),
             work / f"{bam.stem}.{codec.name.replace(' ', '_')}.{'bam' if codec.cram is None else 'cram'}")
            for codec in codecs(threads, ignore_md5)]
    result.codecs = [row for _, row, _ in plan]
    verify_best = float("inf")
    for round_number in range(repeat):
        for codec, row, out in plan:
            if row.error:
                continue
            try:
                if codec.cram is None:
                    row.encode_s = min(row.encode_s, timed(lambda: encode_bam(bam, out, level=6, threads=threads)))
                    row.decode_s = min(row.decode_s, timed(lambda: decode_to_bam(out, None, decoded, threads=threads)))
                else:
                    options = codec.cram
                    row.encode_s = min(row.encode_s, timed(lambda: encode_cram(bam, reference, out, options)))
                    row.decode_s = min(row.decode_s,
                                       timed(lambda: decode_to_bam(out, reference, decoded, threads=threads)))
            except AlignmentFileError as error:
                row.error, row.encode_s, row.decode_s = str(error), 0.0, 0.0
                row.verified = False if codec.cram is not None else None
                continue
            row.output_bytes = out.stat().st_size
            # every CRAM is checked (once), accepting what the entrypoint accepts by default; the
            # genolake codec's check, every round, is also the timed verification cost
            if codec.cram is None or (round_number > 0 and codec.name != GENOLAKE):
                continue
            started = time.perf_counter()
            verification = verify_roundtrip(bam, out, reference, accept=accept, threads=threads)
            elapsed = time.perf_counter() - started
            row.verified = verification.ok if row.verified is None else (row.verified and verification.ok)
            if result.records is None:
                result.records = verification.records_original
            if codec.name == GENOLAKE:
                verify_best = min(verify_best, elapsed)
                result.verify_s, result.verified = verify_best, bool(row.verified)
                result.differences, result.accepted = verification.differences, verification.accepted
                result.rejected, result.examples = verification.rejected, verification.examples
    return result


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def pooled(files: list[FileResult], codec_names: list[str]) -> list[dict]:
    rows = []
    for name in codec_names:
        cells = [(f, next(c for c in f.codecs if c.codec == name)) for f in files]
        ok = [(f, c) for f, c in cells if c.error is None]
        size_in = sum(f.input_bytes for f, _ in ok)
        size_out = sum(c.output_bytes for _, c in ok)
        encode_s, decode_s = sum(c.encode_s for _, c in ok), sum(c.decode_s for _, c in ok)
        verified = [c.verified for _, c in cells if c.verified is not None]
        rows.append({"codec": name, "files": len(ok), "input_bytes": size_in, "output_bytes": size_out,
                     "ratio": ratio(size_in, size_out), "encode_s": encode_s, "decode_s": decode_s,
                     "encode_mb_s": mb_s(size_in, encode_s), "decode_mb_s": mb_s(size_in, decode_s),
                     "verified": f"{sum(verified)}/{len(verified)}" if verified else None})
    return rows


def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_count": os.cpu_count(), "cpus_available": affinity, "cpu_model": model,
            "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(), "python": platform.python_version()}


def _load(load: tuple[float, float, float] | None) -> str:
    return "n/a" if load is None else "/".join(f"{value:.2f}" for value in load)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="samtools/htslib threads per codec (default 1)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument("--bam-dir", type=Path, help="BAM directory with a ref/ subdirectory "
                        "(default ../shared/data/bam, else tests/data/bam)")
    args = parser.parse_args()
    if args.repeat < 1 or args.threads < 1:
        parser.error("--repeat and --threads must be at least 1")

    if args.bam_dir is not None:
        bam_dir, data_set = args.bam_dir.resolve(), f"{args.bam_dir.resolve()} (--bam-dir)"
    elif SHARED_BAM_DIR.is_dir():
        bam_dir, data_set = SHARED_BAM_DIR, f"{SHARED_BAM_DIR} (the real BAMs in ../shared/data/bam)"
    else:
        bam_dir, data_set = TEST_BAM_DIR, f"{TEST_BAM_DIR} (fallback: ../shared/data/bam is absent)"
    bams = sorted(bam_dir.glob("*.bam"), key=lambda p: p.stat().st_size)
    skipped = [p.name for p in bams if p.name not in REFERENCES]
    bams = [p for p in bams if p.name in REFERENCES]
    if not bams:
        print(f"no known BAMs in {bam_dir}", file=sys.stderr)
        return 1

    versions, host = tool_versions(), machine()
    genolake_default = CompressOptions()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genolake-compress-bench-") as scratch:
        work = Path(scratch)
        # htslib looks references up by M5 through REF_PATH/REF_CACHE and would otherwise try the EBI server
        cache = work / "ref_cache"
        os.environ["REF_PATH"] = str(cache / "%2s" / "%2s" / "%s")
        os.environ["REF_CACHE"] = str(cache / "%2s" / "%2s" / "%s")
        files = []
        for bam in bams:
            reference_name, ignore_md5 = REFERENCES[bam.name]
            reference = bam_dir / "ref" / reference_name
            print(f"measuring {bam.name} ({bam.stat().st_size:,} bytes) ...", file=sys.stderr, flush=True)
            files.append(measure_file(bam, reference, ignore_md5, work, args.repeat, args.threads))
    elapsed = time.perf_counter() - started
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else None

    codec_list = codecs(args.threads, False)
    codec_names = [c.name for c in codec_list]
    pooled_rows = pooled(files, codec_names)
    verified = sum(f.verified for f in files)
    total_in = sum(f.input_bytes for f in files)
    verify_total = sum(f.verify_s or 0.0 for f in files)
    genolake_encode_total = sum(next(c for c in f.codecs if c.codec == GENOLAKE).encode_s for f in files)

    print("# BAM -> CRAM compression benchmark\n")
    print(f"- data set: {data_set}")
    if skipped:
        print(f"- skipped (no reference mapping): {', '.join(skipped)}")
    derived = [f.file for f in files if f.ignore_md5]
    if derived:
        print(f"- derived references (rebuilt from MD tags; @SQ M5 disagrees), encoded with ignore_md5=True: "
              f"{', '.join(derived)}")
    print(f"- tools: samtools {versions['samtools']}, htslib {versions['htslib']}, pysam {versions['pysam']}")
    print(f"- machine: {host['cpu_count']} CPUs ({host['cpus_available']} available), {host['cpu_model']}; "
          f"Python {host['python']}; load average (1/5/15 min) "
          f"{_load(host['load_average_at_start'])} at start, {_load(load_end)} at end")
    print(f"- threads per codec: {args.threads}; best of {args.repeat} rounds (each round runs every codec once); "
          f"MB = 10^6 bytes of input BAM; decode = full decode to an uncompressed BAM")
    print(f"- genolake = the entrypoint's default CompressOptions(): CRAM {genolake_default.cram_version} "
          f"profile={genolake_default.profile}, store_md=1, store_nm=1, accepted differences "
          f"{sorted(genolake_default.accepted)}; all CRAM rows use the same encode_cram (store_md/store_nm), "
          f"differing only in version/profile")
    same = [c.name for c in codec_list if c.name != GENOLAKE and c.cram == codec_list[-1].cram]
    if same:
        print(f"- genolake runs the same options as {', '.join(same)}: any speed difference between those rows "
              f"is measurement noise")
    print(f"- wall time of the run: {elapsed:.1f} s\n")

    print("| file | input bytes | codec | output bytes | ratio | encode MB/s | decode MB/s | lossless |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for f in files:
        for c in f.codecs:
            lossless = "—" if c.verified is None else ("yes" if c.verified else "**NO**")
            if c.error:
                print(f"| {f.file} | {f.input_bytes:,} | {c.codec} | error: {c.error} | | | | {lossless} |")
                continue
            label = f"**{c.codec}**" if c.codec == GENOLAKE else c.codec
            print(f"| {f.file} | {f.input_bytes:,} | {label} | {c.output_bytes:,} | "
                  f"{fmt(ratio(f.input_bytes, c.output_bytes))}× | {fmt(mb_s(f.input_bytes, c.encode_s))} | "
                  f"{fmt(mb_s(f.input_bytes, c.decode_s))} | {lossless} |")

    print("\nPooled over all files (sum of input bytes / sum of output bytes; MB/s = total MB / total seconds):\n")
    print("| codec | input bytes | output bytes | ratio | encode MB/s | decode MB/s | lossless |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in pooled_rows:
        label = f"**{row['codec']}**" if row["codec"] == GENOLAKE else row["codec"]
        print(f"| {label} | {row['input_bytes']:,} | {row['output_bytes']:,} | {fmt(row['ratio'])}× | "
              f"{fmt(row['encode_mb_s'])} | {fmt(row['decode_mb_s'])} | {row['verified'] or '—'} |")

    print("\nVerification cost (genolake codec: decode the CRAM and compare every record with the BAM):\n")
    print("| file | records | encode s | verify s | verify MB/s | verify share of encode+verify | verified | "
          "accepted differences |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for f in files:
        encode_s = next(c for c in f.codecs if c.codec == GENOLAKE).encode_s
        share = f.verify_s / (encode_s + f.verify_s) if f.verify_s else None
        accepted = ", ".join(f"{k} {v:,}" for k, v in f.accepted.items()) or "none"
        status = "yes" if f.verified else f"**NO** {f.rejected} {f.examples[:2]}"
        print(f"| {f.file} | {f.records if f.records is not None else '—':,} | {fmt(encode_s, 3)} | "
              f"{fmt(f.verify_s, 3)} | {fmt(mb_s(f.input_bytes, f.verify_s))} | "
              f"{fmt(share * 100 if share is not None else None, 0)}% | {status} | {accepted} |")
    pooled_share = verify_total / (genolake_encode_total + verify_total) if verify_total else None
    print(f"| **pooled** | {sum(f.records or 0 for f in files):,} | {fmt(genolake_encode_total, 3)} | "
          f"{fmt(verify_total, 3)} | {fmt(mb_s(total_in, verify_total))} | "
          f"{fmt(pooled_share * 100 if pooled_share is not None else None, 0)}% | {verified}/{len(files)} | |")
    print(f"\ngenolake outputs verified: {verified}/{len(files)} ({100 * verified / len(files):.0f}%)")

    if args.json:
        figures = {
            "data_set": data_set, "bam_dir": str(bam_dir), "skipped": skipped, "repeat": args.repeat,
            "threads": args.threads, "mb": MB, "tool_versions": versions, "machine": host,
            "wall_s": elapsed, "load_average_at_end": load_end, "genolake_options": genolake_default.as_dict(),
            "codecs": {c.name: c.describe() for c in codec_list},
            "files": [{
                "file": f.file, "reference": f.reference, "ignore_md5": f.ignore_md5,
                "input_bytes": f.input_bytes, "records": f.records,
                "codecs": [{**dataclasses.asdict(c), "ratio": ratio(f.input_bytes, c.output_bytes),
                            "encode_mb_s": mb_s(f.input_bytes, c.encode_s),
                            "decode_mb_s": mb_s(f.input_bytes, c.decode_s)} for c in f.codecs],
                "verification": {"verify_s": f.verify_s, "verify_mb_s": mb_s(f.input_bytes, f.verify_s),
                                 "ok": f.verified, "differences": f.differences, "accepted": f.accepted,
                                 "rejected": f.rejected, "examples": f.examples},
            } for f in files],
            "pooled": pooled_rows,
            "verification_pooled": {"verify_s": verify_total, "encode_s": genolake_encode_total,
                                    "verify_mb_s": mb_s(total_in, verify_total), "share": pooled_share,
                                    "verified": verified, "files": len(files)},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}", file=sys.stderr)

    failed_encodes = [(f.file, c.codec) for f in files for c in f.codecs if c.error]
    for f in files:
        if not f.verified:
            print(f"FAILED verification: {f.file}: rejected {f.rejected} {f.examples[:3]}", file=sys.stderr)
    for name, codec in failed_encodes:
        print(f"FAILED encode: {name} with {codec}", file=sys.stderr)
    return 1 if verified < len(files) or failed_encodes else 0


if __name__ == "__main__":
    raise SystemExit(main())
