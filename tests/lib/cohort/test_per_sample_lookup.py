"""A lookup from the per-sample tables (a lake without a cohort table) gives the cohort lookup's table,
on the real gVCFs and the 100-sample cohort VCF (whose contig is spelled "20")."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.cohort.build import build_cohort
from genolake_assets.lib.cohort.lookup import Marker, lookup
from genolake_assets.lib.cohort.per_sample_lookup import find_per_sample_tables, lookup_per_sample
from genolake_assets.lib.cohort.sample_tokens import lake_sample_tokens
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.lake.cohort_reader import open_lake, read_state
from genolake_assets.resources.lake.local_store import LocalObjectStore

GVCFS = ["HG00187", "HG00190", "HG01377", "NA12249", "NA20317"]
COHORT_VCF = "1kg_chr20_100samples_GRCh37.vcf"


@pytest.fixture(scope="module")
def lake(tmp_path_factory, data_vcf) -> Path:
    lake = tmp_path_factory.mktemp("per-sample-lookup") / "lake"
    for name in GVCFS:
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
    convert_vcf(data_vcf / COHORT_VCF, lake)
    store = LocalObjectStore(lake)
    tokens = lake_sample_tokens(store, store.local_path)
    pending, run = True, 0
    while pending:  # updates of 40 samples, so partitions hold several delta files
        pending = build_cohort(store, store.local_path, lake.parent / f"work-{run}", tokens, max_samples=40).samples_pending
        run += 1
    return lake


def from_cohort(lake: Path, markers: list[Marker]) -> pa.Table:
    filesystem, root = open_lake(str(lake))
    return lookup(markers, read_state(filesystem, root), filesystem, root).table


def from_per_sample_tables(lake: Path, markers: list[Marker], **options):
    filesystem, root = open_lake(str(lake))
    return lookup_per_sample(markers, find_per_sample_tables(filesystem, root), filesystem, **options)


def rows_of(lake: Path, table: str) -> list[dict]:
    return [row for path in sorted((lake / table).glob("sample_id=*/part-00000.parquet"))
            for row in pq.read_table(path, columns=["contig", "pos", "end", "ref", "alt"]).to_pylist()]


def test_every_marker_gets_the_cohort_lookups_answer(lake):
    variants = rows_of(lake, "variants")
    blocks = rows_of(lake, "reference_blocks")
    markers = [Marker(r["contig"], r["pos"]) for r in variants]
    markers += [Marker(r["contig"], r["pos"], r["ref"], r["alt"]) for r in variants[::7]]
    markers += [Marker(r["contig"], r["pos"], r["ref"], "T" if r["alt"] != "T" else "C") for r in variants[::11]]
    markers += [Marker(r["contig"], p) for r in blocks[::13] for p in (r["pos"], r["end"])]
    markers += [Marker("chr" + r["contig"], r["pos"]) for r in variants if r["contig"] == "20"][:20]
    markers += [Marker("22", 10_685_603), Marker("chr22", 10_999_999), Marker("chr22", 11_000_000),
                Marker("chrX", 5_000_000), Marker("chr22", 1), Marker("chr7", 117_559_590)]
    markers = list(dict.fromkeys(markers))

    result = from_per_sample_tables(lake, markers)

    expected = from_cohort(lake, markers)
    assert result.table.equals(expected)
    assert set(expected.column("status").to_pylist()) >= {"variant", "other_allele", "hom_ref", "no_call"}
    assert {"20", "chr22", "chrX"} <= set(expected.column("contig").to_pylist())
    assert result.files_opened == 2 * (len(GVCFS) + 100)


def test_threads_do_not_change_the_answer(lake):
    markers = [Marker("chr22", 10_685_603), Marker("chr20", 10_019_093), Marker("chr22", 10_600_000, "A", "G")]

    assert from_per_sample_tables(lake, markers, use_threads=False).table.equals(from_cohort(lake, markers))


def test_only_the_row_groups_that_can_hold_a_marker_are_read(lake, tmp_path):
    copy = tmp_path / "lake"
    for table in ("variants", "reference_blocks"):  # one sample, rewritten with small row groups
        source = lake / table / "sample_id=HG00187" / "part-00000.parquet"
        (copy / source.relative_to(lake)).parent.mkdir(parents=True)
        pq.write_table(pq.read_table(source), copy / source.relative_to(lake), row_group_size=32)
    markers = [Marker("chr22", 10_685_603), Marker("chr22", 10_600_000)]

    result = from_per_sample_tables(copy, markers)

    assert result.row_groups_total > 20
    assert 1 <= result.row_groups_read <= 4
    hg00187 = from_cohort(lake, markers).filter(pc.field("sample_id") == "HG00187")
    assert result.table.equals(hg00187)


def test_a_contig_inside_a_row_groups_bounds_is_looked_for_in_its_rows(tmp_path):
    """Statistics give a row group's first and last contig; one sorting between them may or may not be in it."""
    folder = tmp_path / "lake" / "variants" / "sample_id=S1"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"sample_id": ["S1"] * 3, "contig": ["chr1", "chr2", "chr3"], "pos": [100, 100, 100],
                             "end": [100, 100, 100], "ref": ["A"] * 3, "alt": ["G"] * 3,
                             "gt": pa.array([[0, 1]] * 3, pa.list_(pa.int16())), "gt_phased": [False] * 3}),
                   folder / "part-00000.parquet")

    result = from_per_sample_tables(tmp_path / "lake", [Marker("2", 100), Marker("25", 100)]).table.to_pylist()

    assert [(r["contig"], r["status"]) for r in result] == [("chr2", "variant"), ("25", "no_call")]


def test_find_per_sample_tables_reads_only_sample_part_files(tmp_path):
    lake = tmp_path / "lake"
    for key in ("variants/sample_id=A/part-00000.parquet", "variants/sample_id=A/.tmp-1-x.parquet",
                "reference_blocks/sample_id=B/part-00000.parquet", "cohort/contig=c/bin=0/gen=1/x.parquet"):
        (lake / key).parent.mkdir(parents=True, exist_ok=True)
        (lake / key).write_bytes(b"")

    found = find_per_sample_tables(pafs.LocalFileSystem(), str(lake))

    assert found == {"A": {"variants": str(lake / "variants/sample_id=A/part-00000.parquet")},
                     "B": {"reference_blocks": str(lake / "reference_blocks/sample_id=B/part-00000.parquet")}}
    assert find_per_sample_tables(pafs.LocalFileSystem(), str(tmp_path / "nothing")) == {}
