"""Generate a whole-genome-sized single-sample gVCF by tiling real chr22 gVCF records.

The 40 source files are 1000 Genomes GATK gVCFs (1,000 records each). Their body
records are laid end to end, file after file and pass after pass, across chr1..chr22
of hg38. Only positions change: each record's POS and INFO/END move by the same
offset, so block lengths, alleles and every INFO/FORMAT value stay byte-identical.

The first N records of a generated file are the same for every record count, so a
smaller file is an exact prefix of a larger one.

    python benchmarks/make_wgs_gvcf.py --records 5000000
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
DEFAULT_WORK_DIR = BENCHMARKS_DIR / ".work"
SOURCE_DIR = REPO_ROOT.parent / "shared" / "data" / "vcf" / "1kg_chr22_gvcf"
SOURCE_GLOB = "*.hg38.g.vcf.gz"
GENERATOR_VERSION = "v1"  # bump when the output changes so cached files are regenerated

HG38_AUTOSOME_LENGTHS = {
    "chr1": 248956422, "chr2": 242193529, "chr3": 198295559, "chr4": 190214555,
    "chr5": 181538259, "chr6": 170805979, "chr7": 159345973, "chr8": 145138636,
    "chr9": 138394717, "chr10": 133797422, "chr11": 135086622, "chr12": 133275309,
    "chr13": 114364328, "chr14": 107043718, "chr15": 101991189, "chr16": 90338345,
    "chr17": 83257441, "chr18": 80373285, "chr19": 58617616, "chr20": 64444167,
    "chr21": 46709983, "chr22": 50818468,
}

# The sources cover the pericentromeric start of chr22, where a few dozen zero-depth
# reference blocks of 50-200 kb make up ~29% of the span. Tiled as-is, 5M records would
# need 3.4 Gb, more than chr1..chr22 hold (2.88 Gb). Leaving out those blocks
# (71 of 40,000 records, 0.18%) and closing the gap they leave brings it to ~2.45 Gb.
MAX_BLOCK_SPAN = 50_000

END_IN_INFO = re.compile(r"(^|;)END=(\d+)")
CONTIG_ID = re.compile(r"^##contig=<ID=([^,>]+)")
WRITE_BATCH_LINES = 20_000


@dataclass(frozen=True)
class SourceRecord:
    """One body line split around the two numbers that tiling rewrites (POS and END)."""

    pos: int
    stop: int  # last base covered: INFO/END, or POS + len(REF) - 1 for variant lines
    has_end: bool
    before_end: str  # text after POS up to and including "END=" (or the whole rest)
    after_end: str  # text after the END value, including the newline

    def render(self, chrom: str, offset: int) -> str:
        if self.has_end:
            return f"{chrom}\t{self.pos + offset}\t{self.before_end}{self.stop + offset}{self.after_end}"
        return f"{chrom}\t{self.pos + offset}\t{self.before_end}"


@dataclass(frozen=True)
class SourceFile:
    records: list[SourceRecord]
    skipped_long_blocks: int

    @property
    def first_pos(self) -> int:
        return self.records[0].pos

    @property
    def last_stop(self) -> int:
        return max(record.stop for record in self.records)


def source_paths() -> list[Path]:
    paths = sorted(SOURCE_DIR.glob(SOURCE_GLOB))
    if not paths:
        raise SystemExit(f"no source gVCFs matching {SOURCE_DIR / SOURCE_GLOB}")
    return paths


def parse_record(line: str) -> SourceRecord:
    _chrom, pos_text, rest = line.split("\t", 2)
    pos = int(pos_text)
    fields = rest.split("\t", 6)  # ID REF ALT QUAL FILTER INFO FORMAT+samples
    end_match = END_IN_INFO.search(fields[5])
    if end_match is None:
        return SourceRecord(pos, pos + len(fields[1]) - 1, False, rest, "")
    info_start = sum(len(field) + 1 for field in fields[:5])
    end_value_start = info_start + end_match.start(2)
    end_value_stop = info_start + end_match.end(2)
    return SourceRecord(
        pos, int(end_match.group(2)), True, rest[:end_value_start], rest[end_value_stop:]
    )


def read_source_file(path: Path) -> SourceFile:
    """Parse body records, dropping over-long blocks and shifting later records left to close the gap."""
    records: list[SourceRecord] = []
    skipped = 0
    removed_span = 0
    with gzip.open(path, "rt") as lines:
        for line in lines:
            if line.startswith("#"):
                continue
            record = parse_record(line)
            span = record.stop - record.pos + 1
            if record.has_end and span > MAX_BLOCK_SPAN:
                skipped += 1
                removed_span += span
                continue
            records.append(
                SourceRecord(
                    record.pos - removed_span,
                    record.stop - removed_span,
                    record.has_end,
                    record.before_end,
                    record.after_end,
                )
            )
    return SourceFile(records, skipped)


def read_header(path: Path, records: int) -> list[str]:
    """The first source's header, with ##contig lines guaranteed for every autosome we use."""
    with gzip.open(path, "rt") as lines:
        header = list(_takewhile_header(lines))
    declared = {m.group(1): line for line in header if (m := CONTIG_ID.match(line))}
    for chrom, length in HG38_AUTOSOME_LENGTHS.items():
        line = declared.get(chrom)
        if line is not None and f"length={length}," not in line and f"length={length}>" not in line:
            raise SystemExit(f"{path.name}: {chrom} header length differs from hg38: {line.strip()}")
    missing = [
        f"##contig=<ID={chrom},length={length},assembly=38>\n"
        for chrom, length in HG38_AUTOSOME_LENGTHS.items()
        if chrom not in declared
    ]
    provenance = (
        f"##genolake_benchmark=<Generator=make_wgs_gvcf.py,Version={GENERATOR_VERSION},"
        f"Records={records},Description=\"chr22 1000 Genomes gVCF records tiled across chr1..chr22\">\n"
    )
    return header[:-1] + missing + [provenance] + header[-1:]


def _takewhile_header(lines) -> Iterator[str]:
    for line in lines:
        if not line.startswith("#"):
            return
        yield line


def tiled_lines(sources: list[SourceFile], records: int) -> Iterator[str]:
    """Yield `records` body lines, source after source, moving to the next autosome when one is full."""
    contigs = iter(HG38_AUTOSOME_LENGTHS.items())
    chrom, length = next(contigs)
    next_free_pos = 1
    emitted = 0
    while True:
        for source in sources:
            offset = next_free_pos - source.first_pos
            for record in source.records:
                if record.stop + offset > length:
                    try:
                        chrom, length = next(contigs)
                    except StopIteration:
                        raise SystemExit(
                            f"only {emitted:,} records fit in chr1..chr22; ask for fewer"
                        ) from None
                    offset = 1 - record.pos
                yield record.render(chrom, offset)
                emitted += 1
                if emitted == records:
                    return
            next_free_pos = source.last_stop + offset + 1


def write_bgzipped(path: Path, header: list[str], body: Iterator[str]) -> None:
    with path.open("wb") as out:
        bgzip = subprocess.Popen(["bgzip", "-@2", "-c"], stdin=subprocess.PIPE, stdout=out)
        assert bgzip.stdin is not None
        bgzip.stdin.write("".join(header).encode())
        batch: list[str] = []
        for line in body:
            batch.append(line)
            if len(batch) == WRITE_BATCH_LINES:
                bgzip.stdin.write("".join(batch).encode())
                batch.clear()
        bgzip.stdin.write("".join(batch).encode())
        bgzip.stdin.close()
        if bgzip.wait() != 0:
            raise SystemExit(f"bgzip failed writing {path}")


def generated_path(records: int, work_dir: Path = DEFAULT_WORK_DIR) -> Path:
    return work_dir / f"wgs_{GENERATOR_VERSION}_{records}.g.vcf.gz"


def ensure_wgs_gvcf(records: int, work_dir: Path = DEFAULT_WORK_DIR, log=print) -> Path:
    """Return the cached gVCF with `records` body records (plus .tbi), generating it if needed."""
    path = generated_path(records, work_dir)
    index = path.with_name(path.name + ".tbi")
    if path.exists() and index.exists():
        return path
    work_dir.mkdir(parents=True, exist_ok=True)
    paths = source_paths()
    sources = [read_source_file(p) for p in paths]
    skipped = sum(s.skipped_long_blocks for s in sources)
    log(
        f"generating {path.name}: {records:,} records tiled from {len(paths)} chr22 gVCFs "
        f"({skipped} reference blocks > {MAX_BLOCK_SPAN:,} bp left out of each pass)"
    )
    partial = path.with_name(path.name + ".partial")
    write_bgzipped(partial, read_header(paths[0], records), tiled_lines(sources, records))
    partial.rename(path)
    subprocess.run(["tabix", "-f", "-p", "vcf", str(path)], check=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    args = parser.parse_args(argv)
    print(ensure_wgs_gvcf(args.records, args.work_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
