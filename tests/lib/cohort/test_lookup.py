"""Marker lookups on a cohort table built from the real gVCFs, checked against the per-sample files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.cohort import layout as cohort_layout
from genolake_assets.lib.cohort.layout import STATE_KEY, CohortState, SampleInput, update_cohort
from genolake_assets.lib.cohort.lookup import CohortReader, Marker, ReaderSettings, lookup, parse_marker
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.lake.cohort_reader import open_lake, read_state

GVCFS = ["HG00187", "HG00190", "HG01377", "NA12249", "NA20317"]
COHORT_VCF = "1kg_chr20_100samples_GRCh37.vcf"
# Small row groups, so the real (small) files have many and pruning shows.
TEST_ROW_GROUP_ROWS = 256


def _sample_inputs(lake: Path, sample_ids: list[str]) -> list[SampleInput]:
    def path(table: str, sample_id: str) -> Path | None:
        candidate = lake / table / f"sample_id={sample_id}" / "part-00000.parquet"
        return candidate if candidate.exists() else None

    return [SampleInput(s, f"token-{s}", path("variants", s), path("reference_blocks", s)) for s in sample_ids]


def build_cohort(lake: Path, batches: list[list[str]]) -> CohortState:
    """Fold each batch of converted samples into the cohort, as the asset does, on local files."""
    state = CohortState.empty()
    for number, batch in enumerate(batches):
        update = update_cohort(state, _sample_inputs(lake, batch), set(), fetch=lambda key: lake / key,
                               out_dir=lake.parent / f"work-{number}")
        for key, local in update.uploads.items():
            (lake / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(local, lake / key)
        state = update.state
    (lake / STATE_KEY).parent.mkdir(parents=True, exist_ok=True)
    (lake / STATE_KEY).write_bytes(state.to_json())
    return state


@pytest.fixture(scope="module")
def lake(tmp_path_factory, data_vcf) -> Path:
    lake = tmp_path_factory.mktemp("cohort") / "lake"
    for name in GVCFS:
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
    report = convert_vcf(data_vcf / COHORT_VCF, lake)
    cohort_ids = sorted(s.sample_id for s in report.samples.values())
    # Several runs, so partitions hold several delta files.
    batches = [GVCFS[:2], GVCFS[2:], cohort_ids[:40], cohort_ids[40:]]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cohort_layout, "ROW_GROUP_ROWS", TEST_ROW_GROUP_ROWS)
        build_cohort(lake, batches)
    return lake


@pytest.fixture(scope="module")
def state(lake) -> CohortState:
    filesystem, root = open_lake(str(lake))
    return read_state(filesystem, root)


def run_lookup(lake: Path, markers: list[Marker], **settings):
    filesystem, root = open_lake(str(lake))
    return lookup(markers, read_state(filesystem, root), filesystem, root, ReaderSettings(**settings))


# ---------------------------------------------------------------------------------------------
# The independent expectation: plain Python over the per-sample Parquet files.

def _per_sample_rows(lake: Path, table: str) -> dict[str, list[dict]]:
    rows = {}
    for folder in sorted((lake / table).iterdir()):
        sample_id = folder.name.split("=", 1)[1]
        rows[sample_id] = pq.read_table(folder / "part-00000.parquet",
                                        columns=["contig", "pos", "end", "ref", "alt", "gt", "gt_phased"]).to_pylist()
    return rows


@pytest.fixture(scope="module")
def per_sample(lake):
    return _per_sample_rows(lake, "variants"), _per_sample_rows(lake, "reference_blocks")


def _bare(contig: str) -> str:
    return contig[3:] if contig.startswith("chr") else contig


def _text(gt, phased) -> str | None:
    if gt is None:  # a call with a missing allele is a missing call (Hail's semantics)
        return None
    return ("|" if phased else "/").join("." if a is None else str(a) for a in gt)


def expected_calls(per_sample, marker: Marker, sample_id: str) -> set[tuple[str, str | None, str | None]]:
    """{(status, alt, genotype)} of one sample at one marker."""
    variants, blocks = per_sample
    here = [r for r in variants.get(sample_id, [])
            if _bare(r["contig"]) == _bare(marker.contig) and r["pos"] == marker.pos]
    carriers = [r for r in here if any(a for a in (r["gt"] or []) if a is not None)]
    wanted = [r for r in carriers if (r["ref"], r["alt"]) == (marker.ref, marker.alt)]
    if marker.alt is not None and wanted:
        return {("variant", r["alt"], _text(r["gt"], r["gt_phased"])) for r in wanted}
    if carriers:
        status = "other_allele" if marker.alt is not None else "variant"
        return {(status, r["alt"], _text(r["gt"], r["gt_phased"])) for r in carriers}
    if here:
        row = next((r for r in here if r["gt"] and all(a == 0 for a in r["gt"])), here[0])
        hom_ref = bool(row["gt"]) and all(a == 0 for a in row["gt"])
        return {("hom_ref" if hom_ref else "no_call", marker.alt, _text(row["gt"], row["gt_phased"]))}
    covering = [r for r in blocks.get(sample_id, [])
                if _bare(r["contig"]) == _bare(marker.contig) and r["pos"] <= marker.pos <= r["end"]]
    if covering:
        gt = covering[0]["gt"]
        status = "hom_ref" if all(a == 0 for a in gt) else "no_call"
        return {(status, marker.alt, _text(gt, covering[0]["gt_phased"]))}
    return {("no_call", marker.alt, None)}


def assert_matches_per_sample_files(result, markers, per_sample, samples):
    table = result.table.to_pylist()
    assert [r["marker"] for r in table] == sorted((r["marker"] for r in table),
                                                  key=[str(m) for m in markers].index)
    for marker in markers:
        rows = [r for r in table if r["marker"] == str(marker)]
        assert sorted({r["sample_id"] for r in rows}) == samples
        assert [r["sample_id"] for r in rows] == sorted(r["sample_id"] for r in rows)
        for sample_id in samples:
            got = {(r["status"], r["alt"], r["genotype"]) for r in rows if r["sample_id"] == sample_id}
            assert got == expected_calls(per_sample, marker, sample_id), (str(marker), sample_id)


# ---------------------------------------------------------------------------------------------

def test_parse_marker():
    assert parse_marker("chr22:19951271") == Marker("chr22", 19951271)
    assert parse_marker(" 22:19951271:a:G ") == Marker("22", 19951271, "A", "G")
    assert str(parse_marker("chr22:19951271:A:G")) == "chr22:19951271:A:G"
    for bad in ["chr22", "chr22:abc", "chr22:0", "chr22:12:A", "chr22:12:A:G:T", "chr 22:5", ""]:
        with pytest.raises(ValueError, match="marker"):
            parse_marker(bad)


def test_every_variant_position_matches_the_per_sample_files(lake, state, per_sample):
    variants, _ = per_sample
    positions = sorted({(r["contig"], r["pos"]) for s in GVCFS for r in variants[s]})
    markers = [Marker(contig, pos) for contig, pos in positions]
    markers += [Marker("chr22", 10_600_000), Marker("chr22", 10_926_497), Marker("chr22", 11_000_000),
                Marker("chr22", 10_510_001), Marker("chr22", 9_000_000), Marker("chr7", 117_559_590)]

    result = run_lookup(lake, markers)

    assert_matches_per_sample_files(result, markers, per_sample, sorted(state.samples))
    statuses = set(result.table.column("status").to_pylist())
    assert statuses == {"variant", "hom_ref", "no_call"}


def test_chr_and_bare_contig_spellings_both_match(lake, state, per_sample):
    variants, _ = per_sample
    cohort_positions = sorted({r["pos"] for r in variants["HG00096"]})[:15]
    markers = [Marker("chr20", pos) for pos in cohort_positions]  # the cohort VCF says "20"
    markers += [Marker("22", 10_685_603), Marker("chr22", 10_685_603)]

    result = run_lookup(lake, markers)

    assert_matches_per_sample_files(result, markers, per_sample, sorted(state.samples))
    rows = result.table.to_pylist()
    assert {r["contig"] for r in rows} == {"20", "chr22"}
    hg00096 = [r for r in rows if r["sample_id"] == "HG00096" and r["pos"] == cohort_positions[0]]
    assert hg00096[0]["status"] == "variant"
    by_spelling = [[(r["sample_id"], r["status"], r["genotype"]) for r in rows if r["marker"] == m]
                   for m in ("22:10685603", "chr22:10685603")]
    assert by_spelling[0] == by_spelling[1]


def test_a_reference_block_means_hom_ref(lake):
    result = run_lookup(lake, [parse_marker("chr22:10600000")])

    rows = {r["sample_id"]: r for r in result.table.to_pylist()}
    for sample_id in GVCFS:  # every gVCF's first block runs from 10,510,001 past 10,550,000
        assert rows[sample_id]["status"] == "hom_ref"
        assert rows[sample_id]["genotype"] == "0/0"
        assert rows[sample_id]["alt"] is None
    assert rows["HG00096"]["status"] == "no_call" and rows["HG00096"]["genotype"] is None


def test_alleles_filter_rows_and_name_other_alleles(lake, state, per_sample):
    # A split multi-allelic site: HG00187 is T/G, so its T>C row is downcoded to 0/0.
    markers = [parse_marker("chr22:10685603:T:G"), parse_marker("chr22:10685603:T:C"), parse_marker("chr22:10685603")]

    result = run_lookup(lake, markers)

    assert_matches_per_sample_files(result, markers, per_sample, sorted(state.samples))
    rows = result.table.to_pylist()
    hg00187 = {r["marker"]: (r["status"], r["ref"], r["alt"], r["genotype"]) for r in rows
               if r["sample_id"] == "HG00187"}
    assert hg00187 == {"chr22:10685603:T:G": ("variant", "T", "G", "0/1"),
                       "chr22:10685603:T:C": ("other_allele", "T", "G", "0/1"),
                       "chr22:10685603": ("variant", "T", "G", "0/1")}


def test_cohort_vcf_alleles(lake, state, per_sample):
    variants, _ = per_sample
    row = next(r for r in variants["HG00096"] if r["gt"] == [1, 1])
    markers = [Marker("chr" + row["contig"], row["pos"], row["ref"], row["alt"]),
               Marker(row["contig"], row["pos"], row["ref"], "T" if row["alt"] != "T" else "C")]

    result = run_lookup(lake, markers)

    assert_matches_per_sample_files(result, markers, per_sample, sorted(state.samples))
    first = [r for r in result.table.to_pylist() if r["sample_id"] == "HG00096"]
    assert [(r["status"], r["genotype"]) for r in first] == [("variant", "1/1"), ("other_allele", "1/1")]


def test_only_the_row_groups_that_can_hold_the_marker_are_read(lake, state):
    partition = state.partitions["chr22/10"]
    assert len(partition.files) == 2

    result = run_lookup(lake, [parse_marker("chr22:10752738")])

    assert result.files_opened == 2
    assert result.row_groups_total >= 10
    assert 1 <= result.row_groups_read <= 2 * result.files_opened
    assert result.row_groups_read < result.row_groups_total / 3
    file_bytes = sum((lake / key).stat().st_size for key in state.live_keys(partition))
    assert 0 < result.bytes_read <= 2 * file_bytes  # footer read plus the selected ranges


def test_pre_buffering_coalesces_reads_without_changing_the_answer(lake):
    markers = [parse_marker(m) for m in ["chr22:10600000", "chr22:10752738", "chr22:10900000", "chr20:10019093"]]

    buffered = run_lookup(lake, markers)
    unbuffered = run_lookup(lake, markers, pre_buffer=False)
    tight = run_lookup(lake, markers, hole_size_limit=0, range_size_limit=1024)

    assert buffered.table.equals(unbuffered.table) and buffered.table.equals(tight.table)
    assert buffered.row_groups_read == unbuffered.row_groups_read
    assert buffered.read_requests < unbuffered.read_requests
    assert buffered.read_requests < tight.read_requests


def test_a_marker_outside_every_partition_is_no_call_without_reading(lake, state):
    result = run_lookup(lake, [parse_marker("chrX:5000000"), parse_marker("chr22:1")])

    assert result.files_opened == 0 and result.bytes_read == 0
    assert result.table.num_rows == 2 * len(state.samples)
    assert set(result.table.column("status").to_pylist()) == {"no_call"}


def test_without_threads_the_answer_is_the_same(lake):
    markers = [parse_marker("chr22:10685603"), parse_marker("20:10019093")]

    assert run_lookup(lake, markers, use_threads=False).table.equals(run_lookup(lake, markers).table)


def test_read_state_explains_a_lake_without_a_cohort(tmp_path):
    filesystem, root = open_lake(str(tmp_path))

    with pytest.raises(FileNotFoundError, match="cohort_variants"):
        read_state(filesystem, root)


def test_lookup_on_s3_gives_the_same_table(lake, moto_endpoint, bucket):
    from genolake_assets.resources.lake.s3_store import s3_client

    client = s3_client(endpoint_url=moto_endpoint)
    for path in lake.rglob("*"):
        key = path.relative_to(lake).as_posix()
        if path.is_file() and key.startswith(("cohort/", "registry/")):
            client.upload_file(str(path), bucket, f"lakes/one/{key}")
    markers = [parse_marker(m) for m in ["chr22:10685603:T:C", "22:10600000", "chr20:10019093"]]

    filesystem, root = open_lake(f"s3://{bucket}/lakes/one", endpoint_url=moto_endpoint)
    remote = lookup(markers, read_state(filesystem, root), filesystem, root)
    local = run_lookup(lake, markers)

    assert root == f"{bucket}/lakes/one"
    assert remote.table.equals(local.table)
    assert remote.files_opened == local.files_opened and remote.row_groups_read == local.row_groups_read
    assert remote.bytes_read == local.bytes_read


# ---------------------------------------------------------------------------------------------
# CohortReader: the warm reader keeps the manifest and the footers between lookups.

READER_MARKERS = ["chr22:10685603:T:C", "chr22:10685603", "22:10600000", "chr20:10019093", "chrX:5000000"]


def test_cohort_reader_gives_the_same_table_as_lookup(lake):
    markers = [parse_marker(m) for m in READER_MARKERS]
    filesystem, root = open_lake(str(lake))

    with CohortReader(filesystem, root) as reader:
        first, second = reader.lookup(markers), reader.lookup(markers)
        one = reader.lookup(markers[2:3])
    expected = run_lookup(lake, markers)

    assert first.table.equals(expected.table) and second.table.equals(expected.table)
    assert one.table.equals(run_lookup(lake, markers[2:3]).table)
    assert (first.files_opened, first.row_groups_read) == (expected.files_opened, expected.row_groups_read)
    assert first.bytes_read == expected.bytes_read


def test_cohort_reader_reuses_the_manifest_and_footers(lake, monkeypatch):
    markers = [parse_marker(m) for m in READER_MARKERS]
    filesystem, root = open_lake(str(lake))
    reader = CohortReader(filesystem, root)
    cold = reader.lookup(markers)
    cached = dict(reader._files)
    parsed = []
    monkeypatch.setattr(CohortState, "from_json", classmethod(lambda cls, data: parsed.append(data)))

    warm = reader.lookup(markers)

    assert parsed == []  # the manifest did not change: not parsed again
    assert reader._files == cached and all(reader._files[k] is cached[k] for k in cached)
    assert warm.files_opened == cold.files_opened and warm.row_groups_read == cold.row_groups_read
    assert 0 < warm.bytes_read < cold.bytes_read  # the footers are not read again
    assert warm.read_requests < cold.read_requests
    reader.close()


def test_cohort_reader_picks_up_a_new_manifest(lake, tmp_path):
    copy = tmp_path / "lake"
    shutil.copytree(lake / "cohort", copy / "cohort")
    shutil.copytree(lake / "registry", copy / "registry")
    markers = [parse_marker(m) for m in READER_MARKERS]
    filesystem, root = open_lake(str(copy))
    reader = CohortReader(filesystem, root)
    before = reader.lookup(markers)
    state = read_state(filesystem, root)
    assert "HG00187" in state.samples and len(state.partitions["chr22/10"].files) == 2

    # A new version: one sample gone, and one file of chr22/10 no longer live.
    dropped = state.partitions["chr22/10"].files.pop()
    del state.samples["HG00187"]
    (copy / STATE_KEY).write_bytes(state.to_json())
    after = reader.lookup(markers)

    assert "HG00187" in before.table.column("sample_id").to_pylist()
    assert "HG00187" not in after.table.column("sample_id").to_pylist()
    assert after.table.equals(lookup(markers, read_state(filesystem, root), filesystem, root).table)
    assert not any(key.endswith(dropped) for key in reader._files)
    assert after.files_opened == before.files_opened - 1
    reader.close()
