"""The lake's bookkeeping at 100,000 samples: the samples table refresh and the cohort manifest.

A synthetic registry of N sample records (``registry/samples/<id>.json``, as raw_vcf and sample_variants write
them) in a local lake. Measured, each in this process:
* the samples table, full rebuild (every record read: what each refresh did before) against an incremental
  refresh after 10 records changed (lib/lake/samples_table.py), with the records read (= S3 GETs) and seconds;
* the cohort manifest (``registry/cohort/state.json``) of N samples over 3,100 partitions of 8 files each: its
  bytes, the seconds to load and to write it, and to pick the changed samples from the samples-table tokens;
* the sample tokens the cohort update reads from the samples table.

    python benchmarks/bookkeeping.py                 # make benchmark-bookkeeping (N = 100,000)
    python benchmarks/bookkeeping.py --samples 10000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from genolake_assets.lib.cohort.build import changed_samples
from genolake_assets.lib.cohort.sample_tokens import samples_table_tokens
from genolake_assets.lib.cohort.state import CohortState, PartitionState
from genolake_assets.lib.lake.layout import SAMPLE_REGISTRY_PREFIX, SAMPLES_TABLE_KEY, sample_registry_key
from genolake_assets.lib.lake.registry import SampleRecord
from genolake_assets.lib.lake.samples_table import refresh_samples_table
from genolake_assets.resources.lake.local_store import LocalObjectStore

CHANGED = 10
PARTITIONS = 3_100  # 1 Mb bins over GRCh38
FILES_PER_PARTITION = 8


class CountingStore(LocalObjectStore):
    def __init__(self, root):
        super().__init__(root)
        self.reads = 0

    def read_bytes(self, key: str) -> bytes:
        self.reads += 1
        return super().read_bytes(key)


def _record(index: int, status: str = "converted") -> SampleRecord:
    return SampleRecord(
        sample_id=f"S{index:07d}", sample_name=f"NA{index:07d}", source_uri=f"s3://lab-lake/landing/NA{index:07d}.g.vcf.gz",
        source_key=f"landing/NA{index:07d}.g.vcf.gz", raw_key=f"raw/vcf/{index:064x}.vcf.gz",
        raw_uri=f"s3://lab-lake/raw/vcf/{index:064x}.vcf.gz", sha256=f"{index:064x}", size_bytes=5_000_000_000,
        file_format="VCFv4.2", reference_genome="GRCh38", caller="GATK HaplotypeCaller", samples_in_file=1,
        registered_at="2026-12-07T00:00:00+00:00", status=status, engine="genolake-arrow", engine_version="7",
        converted_at="2026-12-07T00:10:00+00:00", conversion_seconds=4.5, records_read=5_000_000,
        variant_rows=5_000_000, reference_block_rows=5_000_000, variant_bytes=31_000_000,
        reference_block_bytes=20_000_000)


def _refresh(store: CountingStore, work: Path, use_previous: bool):
    listing = [(obj.key, obj.etag) for obj in store.list_objects(SAMPLE_REGISTRY_PREFIX)]
    table_path, index_path = work / "samples.parquet", work / "index.parquet"
    store.reads = 0
    started = time.perf_counter()
    result = refresh_samples_table(listing, store.read_bytes, table_path if use_previous else None,
                                   index_path if use_previous else None)
    pq.write_table(result.table, table_path, compression="zstd")
    pq.write_table(result.index, index_path, compression="zstd")
    return result, store.reads, time.perf_counter() - started, len(listing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    args = parser.parse_args(argv)
    n = args.samples
    work = Path(tempfile.mkdtemp(prefix="genolake-bookkeeping-"))
    try:
        store = CountingStore(work / "lake")
        started = time.perf_counter()
        for index in range(n):
            store.write_bytes(sample_registry_key(f"S{index:07d}"), _record(index).to_json())
        print(f"{n:,} registry records written in {time.perf_counter() - started:.1f} s")

        full, full_reads, full_s, listed = _refresh(store, work, use_previous=False)
        for index in range(0, n, max(n // CHANGED, 1))[:CHANGED]:
            store.write_bytes(sample_registry_key(f"S{index:07d}"), _record(index, "quarantined").to_json())
        incremental, inc_reads, inc_s, _ = _refresh(store, work, use_previous=True)
        assert not incremental.full_rebuild and incremental.table.num_rows == n
        (work / "rebuild").mkdir()
        rebuilt, _, _, _ = _refresh(store, work / "rebuild", use_previous=False)
        assert rebuilt.table.equals(incremental.table), "the incremental table differs from a rebuild"
        print("\nsamples table")
        print(f"  full rebuild (before): {full_reads:,} records read (S3 GETs) in {full_s:.2f} s")
        print(f"  after {CHANGED} changes:     {inc_reads:,} records read (S3 GETs) in {inc_s:.2f} s "
              f"({full_s / inc_s:.1f}x faster, {full_reads / max(inc_reads, 1):,.0f}x fewer GETs); "
              f"both list {listed:,} keys ({-(-listed // 1000):,} LIST calls on S3)")
        print(f"  table: {(work / 'samples.parquet').stat().st_size:,} bytes; index "
              f"{(work / 'index.parquet').stat().st_size:,} bytes; equal to a full rebuild: yes")

        lake_store = LocalObjectStore(work / "lake")
        lake_store.upload(work / "samples.parquet", SAMPLES_TABLE_KEY)
        started = time.perf_counter()
        tokens = samples_table_tokens(lake_store, lake_store.local_path)
        tokens_s = time.perf_counter() - started

        state = CohortState.empty()
        state.samples = {sample: f"{token}" for sample, token in tokens.items()}
        for part in range(PARTITIONS):
            contig, bin = f"chr{part % 22 + 1}", part // 22
            state.partitions[f"{contig}/{bin}"] = PartitionState(
                contig, bin, 3, 10_000_000, [f"delta-{part * FILES_PER_PARTITION + f:012x}.parquet"
                                             for f in range(FILES_PER_PARTITION)])
        started = time.perf_counter()
        document = state.to_json()
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        loaded = CohortState.from_json(document)
        load_s = time.perf_counter() - started
        changed_tokens = dict(tokens)
        for sample in list(changed_tokens)[:CHANGED]:
            changed_tokens[sample] += "-reconverted"
        started = time.perf_counter()
        changed = changed_samples(loaded, changed_tokens)
        changed_s = time.perf_counter() - started
        assert len(changed) == CHANGED
        print("\ncohort manifest and tokens")
        print(f"  sample tokens from the samples table: {len(tokens):,} in {tokens_s:.2f} s")
        print(f"  manifest of {n:,} samples, {PARTITIONS:,} partitions x {FILES_PER_PARTITION} files: "
              f"{len(document):,} bytes; write {write_s:.2f} s, load (validated) {load_s:.2f} s; "
              f"changed samples found in {changed_s * 1000:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
