"""The locus-ordered cohort table (docs/cohort-layout.md) built from real converted VCFs.

Per-sample Parquet comes from converting the real files in tests/data/vcf; expectations are
computed from those tables with plain Python, never with the cohort code under test.
A bin size of 10,000 makes the gVCFs' reference blocks (chr22:10.51-10.75 Mb) cross bin boundaries.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.cohort import layout as cohort_layout
from genolake_assets.lib.cohort.state import parse_folder
from genolake_assets.lib.cohort.layout import (
    BIN_SIZE, COHORT_SCHEMA, STATE_KEY, CohortState, PartitionState, SampleInput, cohort_rows,
    partition_folder, split_by_partition, update_cohort, write_cohort_file,
)

DATA_VCF = Path(__file__).resolve().parents[2] / "data" / "vcf"
GVCF_SAMPLES = ["HG00187", "HG00190", "NA12249", "HG01377", "NA20317"]
MULTI_SAMPLE_VCF = DATA_VCF / "1kg_chr20_100samples_GRCh37.vcf"
SMALL_BINS = 10_000


# ---------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gvcf_lake(tmp_path_factory) -> Path:
    """The five real gVCFs converted into one lake directory."""
    from genolake_assets.lib.vcf.convert import convert_vcf
    out = tmp_path_factory.mktemp("gvcf_lake")
    for sample in GVCF_SAMPLES:
        convert_vcf(DATA_VCF / f"{sample}.hg38.g.vcf.gz", out)
    return out


@pytest.fixture(scope="module")
def multi_lake(tmp_path_factory) -> tuple[Path, list[str]]:
    """The 100-sample chr20 VCF converted; returns (lake, sample ids in file order)."""
    from genolake_assets.lib.vcf.convert import convert_vcf
    out = tmp_path_factory.mktemp("multi_lake")
    report = convert_vcf(MULTI_SAMPLE_VCF, out)
    return out, [s.sample_id for s in report.samples.values()]


def part(lake: Path, table: str, sample_id: str) -> Path | None:
    path = lake / table / f"sample_id={sample_id}" / "part-00000.parquet"
    return path if path.exists() else None


def inputs(lake: Path, sample_ids: list[str], token: str = "t1") -> list[SampleInput]:
    return [SampleInput(s, token, part(lake, "variants", s), part(lake, "reference_blocks", s))
            for s in sample_ids]


class Store:
    """A local stand-in for the bucket: publishes updates the way the asset does."""

    def __init__(self, root: Path, bin_size: int):
        self.root = root
        self.state = CohortState.empty(bin_size)
        self.fetched: list[str] = []
        self.runs = 0

    def fetch(self, key: str) -> Path:
        self.fetched.append(key)
        return self.root / key

    def apply(self, new: list[SampleInput], drop: set[str] = frozenset(), max_files: int = 8):
        self.runs += 1
        self.fetched = []
        update = update_cohort(self.state, new, set(drop), self.fetch, self.root.parent / f"out{self.runs}",
                               max_files=max_files)
        assert set(self.fetched) <= set(self.state.all_live_keys())
        for key, local in update.uploads.items():
            (self.root / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, self.root / key)
        (self.root / STATE_KEY).parent.mkdir(parents=True, exist_ok=True)
        (self.root / STATE_KEY).write_bytes(update.state.to_json())
        for folder in self.state.retired:  # the previous version's retired folders go now
            shutil.rmtree(self.root / folder)
        self.state = CohortState.from_json((self.root / STATE_KEY).read_bytes())
        return update

    def table(self) -> pa.Table:
        tables = [pq.read_table(self.root / key) for key in self.state.all_live_keys()]
        return pa.concat_tables(tables) if tables else COHORT_SCHEMA.empty_table()

    def partition_rows(self, name: str) -> Counter:
        return rows_of(pa.concat_tables(pq.read_table(self.root / k) for k in self.state.live_keys(name)))


def rows_of(table: pa.Table) -> Counter:
    return Counter(tuple(tuple(v) if isinstance(v, list) else v for v in row.values())
                   for row in table.to_pylist())


def coverage(records) -> dict[tuple, dict[int, int]]:
    """What covers each (sample, contig, position), as net +1/-1 changes at interval edges.

    Two sets of rows cover every position identically (with multiplicity) exactly when these
    change maps are equal, so a block cut in pieces compares equal to the uncut block.
    """
    changes: dict[tuple, Counter] = defaultdict(Counter)
    for r in records:
        what = (r["sample_id"], r["contig"], r["kind"], r["alt"],
                tuple(r["gt"]) if r["gt"] is not None else None, r["gt_phased"])
        changes[what][r["pos"]] += 1
        changes[what][r["end"] + 1] -= 1
    return {what: {p: n for p, n in c.items() if n} for what, c in changes.items()}


def source_records(lake: Path, sample_id: str) -> list[dict]:
    records = []
    for table, kind in (("variants", "variant"), ("reference_blocks", "reference_block")):
        path = part(lake, table, sample_id)
        if path is None:
            continue
        for r in pq.read_table(path).to_pylist():
            end = r["end"] if r["end"] is not None else r["pos"] + len(r["ref"]) - 1
            records.append({**r, "end": end, "kind": kind, "alt": r["alt"] if kind == "variant" else None})
    return records


# ---------------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------------

def test_reference_blocks_are_cut_at_bin_boundaries(gvcf_lake):
    variants = pq.read_table(part(gvcf_lake, "variants", "HG00187"))
    blocks = pq.read_table(part(gvcf_lake, "reference_blocks", "HG00187"))
    rows = cohort_rows(variants, blocks, bin_size=SMALL_BINS)

    pieces = [r["end"] // SMALL_BINS - r["pos"] // SMALL_BINS + 1 for r in blocks.to_pylist()]
    assert max(pieces) > 1, "the data should hold a block crossing a bin boundary"
    assert rows.num_rows == variants.num_rows + sum(pieces)
    assert rows.schema == COHORT_SCHEMA
    for r in rows.to_pylist():
        assert r["bin"] == r["pos"] // SMALL_BINS
        if r["kind"] == "reference_block":
            assert r["end"] // SMALL_BINS == r["bin"] and r["alt"] is None and r["variant_id"] is None
        else:
            assert r["variant_id"] == f"{r['contig']}:{r['pos']}:{r['ref']}:{r['alt']}"

    # chr22:10510001-10571575 (read from the file) spans bins 1051..1057
    first = [r for r in rows.to_pylist() if r["kind"] == "reference_block"][:7]
    assert [(r["bin"], r["pos"], r["end"]) for r in first] == [
        (1051, 10510001, 10519999), (1052, 10520000, 10529999), (1053, 10530000, 10539999),
        (1054, 10540000, 10549999), (1055, 10550000, 10559999), (1056, 10560000, 10569999),
        (1057, 10570000, 10571575)]
    assert first[0]["ref"] == "G" and all(r["ref"] is None for r in first[1:])

    whole = cohort_rows(variants, blocks)
    assert whole.num_rows == variants.num_rows + blocks.num_rows  # all inside one 1 Mb bin
    assert set(whole["bin"].to_pylist()) == {10_510_001 // BIN_SIZE}


def test_format_columns_missing_or_other_int_types(gvcf_lake):
    variants = pq.read_table(part(gvcf_lake, "variants", "HG00190"))
    expected_dp = variants["fmt_dp"].to_pylist()
    altered = variants.drop_columns(["fmt_gq"]).set_column(
        variants.schema.get_field_index("fmt_dp"), "fmt_dp", variants["fmt_dp"].cast(pa.int64()))
    rows = cohort_rows(altered, None)
    assert rows.schema == COHORT_SCHEMA
    assert rows["gq"].null_count == rows.num_rows
    assert rows["dp"].to_pylist() == expected_dp
    assert cohort_rows(None, None).num_rows == 0


def test_split_by_partition_groups_every_row_once(gvcf_lake):
    rows = cohort_rows(pq.read_table(part(gvcf_lake, "variants", "NA12249")),
                       pq.read_table(part(gvcf_lake, "reference_blocks", "NA12249")), SMALL_BINS)
    groups = split_by_partition(rows)
    assert sum(t.num_rows for t in groups.values()) == rows.num_rows
    for (contig, bin), table in groups.items():
        assert set(table["contig"].to_pylist()) == {contig} and set(table["bin"].to_pylist()) == {bin}
    assert sum((rows_of(t) for t in groups.values()), Counter()) == rows_of(rows)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------

def test_cohort_covers_every_position_like_the_per_sample_tables(gvcf_lake, tmp_path):
    store = Store(tmp_path / "bucket", SMALL_BINS)
    store.apply(inputs(gvcf_lake, GVCF_SAMPLES[:3]))
    store.apply(inputs(gvcf_lake, GVCF_SAMPLES[3:]))
    cohort = store.table()

    source = [r for sample in GVCF_SAMPLES for r in source_records(gvcf_lake, sample)]
    assert sum(r["end"] - r["pos"] + 1 for r in source) > 1_000_000  # five samples x ~240 kb
    assert coverage(cohort.to_pylist()) == coverage(source)
    assert cohort.num_rows > len(source)  # blocks were cut
    assert store.state.samples == {s: "t1" for s in GVCF_SAMPLES}
    assert sum(p.rows for p in store.state.partitions.values()) == cohort.num_rows


def test_files_are_sorted_and_row_groups_prune(multi_lake, tmp_path, monkeypatch):
    lake, samples = multi_lake
    monkeypatch.setattr(cohort_layout, "ROW_GROUP_ROWS", 512)  # many row groups from a small file
    store = Store(tmp_path / "bucket", BIN_SIZE)
    update = store.apply(inputs(lake, samples[:40]))
    assert update.bytes_written == sum(p.stat().st_size for p in update.uploads.values())

    probed = 0
    for name, partition in store.state.partitions.items():
        (key,) = store.state.live_keys(name)
        file = pq.ParquetFile(store.root / key)
        table = file.read()
        assert file.schema_arrow == COHORT_SCHEMA
        assert set(table["contig"].to_pylist()) == {partition.contig}
        assert set(table["bin"].to_pylist()) == {partition.bin}
        keys = list(zip(table["pos"].to_pylist(), table["sample_id"].to_pylist()))
        assert keys == sorted(keys)
        meta = file.metadata
        pos_index = COHORT_SCHEMA.get_field_index("pos")
        ranges = []
        for g in range(meta.num_row_groups):
            assert meta.row_group(g).num_rows <= 512
            column = meta.row_group(g).column(pos_index)
            assert column.is_stats_set and column.has_column_index and column.has_offset_index
            assert column.compression == "ZSTD" and "DELTA_BINARY_PACKED" in column.encodings
            ranges.append((column.statistics.min, column.statistics.max))
        if meta.num_row_groups < 4:
            continue
        # a marker lookup: only the row groups whose pos range holds it, and they hold all its rows
        probe = table["pos"][table.num_rows // 2].as_py()
        wanted = [g for g, (lo, hi) in enumerate(ranges) if lo <= probe <= hi]
        assert len(wanted) <= 2
        hits = [r for r in file.read_row_groups(wanted).to_pylist() if r["pos"] <= probe <= r["end"]]
        assert len(hits) == sum(1 for r in table.to_pylist() if r["pos"] <= probe <= r["end"])
        probed += 1
    assert probed >= 3


def test_write_cohort_file_sorts(gvcf_lake, tmp_path):
    rows = cohort_rows(pq.read_table(part(gvcf_lake, "variants", "HG00187")),
                       pq.read_table(part(gvcf_lake, "reference_blocks", "HG00187")))
    shuffled = rows.take(pa.array(list(range(rows.num_rows))[::-1]))
    size = write_cohort_file(shuffled, tmp_path / "x.parquet")
    assert size == (tmp_path / "x.parquet").stat().st_size
    back = pq.read_table(tmp_path / "x.parquet")
    assert back["pos"].to_pylist() == sorted(rows["pos"].to_pylist())
    assert rows_of(back) == rows_of(rows)


# ---------------------------------------------------------------------------------------------
# updates
# ---------------------------------------------------------------------------------------------

def test_append_adds_one_delta_per_touched_partition(multi_lake, tmp_path):
    lake, samples = multi_lake
    store = Store(tmp_path / "bucket", 100_000)
    store.apply(inputs(lake, samples[:5]))
    before = {name: (p.gen, list(p.files), store.partition_rows(name)) for name, p in store.state.partitions.items()}

    added = inputs(lake, samples[5:8])
    update = store.apply(added)
    new_rows = split_by_partition(pa.concat_tables(
        cohort_rows(*(pq.read_table(p) if p else None for p in (s.variants_path, s.reference_blocks_path)),
                    bin_size=100_000) for s in added))
    touched = {f"{c}/{b}" for c, b in new_rows}
    assert sorted(update.appended_partitions) == sorted(touched)
    assert update.compacted_partitions == [] and update.retired == [] and store.state.retired == []
    assert update.rows_added == sum(t.num_rows for t in new_rows.values()) and update.rows_removed == 0
    assert len(update.uploads) == len(touched)
    assert store.fetched == []  # appending reads no cohort file
    for name, partition in store.state.partitions.items():
        if name not in before:
            assert partition.gen == 1 and len(partition.files) == 1
            continue
        gen, files, rows = before[name]
        assert partition.gen == gen
        if name in touched:
            (delta,) = [f for f in partition.files if f not in files]
            assert partition.files == files + [delta] and delta.startswith("delta-")
            assert partition.folder + delta in update.uploads
            (contig, bin) = name.split("/")
            assert store.partition_rows(name) == rows + rows_of(new_rows[(contig, int(bin))])
        else:
            assert partition.files == files
    assert store.state.version == 2
    assert set(store.state.samples) == set(samples[:8])


def test_too_many_files_compacts_into_next_generation(multi_lake, tmp_path):
    lake, samples = multi_lake
    store = Store(tmp_path / "bucket", BIN_SIZE)
    for batch in ([0, 1], [2], [3]):
        store.apply(inputs(lake, [samples[i] for i in batch]), max_files=3)
    files_before = {name: len(p.files) for name, p in store.state.partitions.items()}
    rows_before = {name: store.partition_rows(name) for name in store.state.partitions}
    old = {name: p.folder for name, p in store.state.partitions.items()}
    assert max(files_before.values()) == 3

    update = store.apply(inputs(lake, [samples[4]]), max_files=3)
    fifth = split_by_partition(cohort_rows(pq.read_table(part(lake, "variants", samples[4])),
                                           pq.read_table(part(lake, "reference_blocks", samples[4]))))
    full = {name for name, n in files_before.items() if n == 3}
    assert sorted(update.compacted_partitions) == sorted(full)
    assert sorted(update.retired) == sorted(old[name] for name in full) == sorted(store.state.retired)
    for name in full:
        partition = store.state.partitions[name]
        assert partition.gen == 2 and len(partition.files) == 1 and partition.files[0].startswith("compact-")
        contig, bin = name.split("/")
        expected = rows_before[name] + rows_of(fifth.get((contig, int(bin)), COHORT_SCHEMA.empty_table()))
        assert store.partition_rows(name) == expected
        assert partition.rows == sum(expected.values())
        assert (store.root / old[name]).exists()  # deleted only once the next version is published
    store.apply([], max_files=3)
    assert all(not (store.root / folder).exists() for folder in update.retired)


def test_dropping_a_sample_removes_exactly_its_rows(gvcf_lake, tmp_path):
    store = Store(tmp_path / "bucket", SMALL_BINS)
    store.apply(inputs(gvcf_lake, GVCF_SAMPLES))
    everything = rows_of(store.table())
    sample_index = COHORT_SCHEMA.get_field_index("sample_id")
    theirs = Counter({r: n for r, n in everything.items() if r[sample_index] == "HG00190"})

    # re-converted: dropped and given again with a new token
    update = store.apply(inputs(gvcf_lake, ["HG00190"], token="t2"), drop={"HG00190"})
    assert rows_of(store.table()) == everything
    assert update.rows_removed == update.rows_added == sum(theirs.values())
    assert store.state.samples["HG00190"] == "t2" and update.appended_partitions == []
    holders = {f"{r[0]}/{r[1]}" for r in theirs}
    assert 0 < len(holders) < len(store.state.partitions)  # HG00190's calls start later than the others'
    assert sorted(update.compacted_partitions) == sorted(holders)
    assert all(p.gen == (2 if name in holders else 1) for name, p in store.state.partitions.items())

    update = store.apply([], drop={"HG00190"})
    assert rows_of(store.table()) == everything - theirs
    assert update.rows_removed == sum(theirs.values()) and "HG00190" not in store.state.samples

    update = store.apply([], drop=set(GVCF_SAMPLES))
    assert store.state.partitions == {} and store.state.samples == {}
    retired_partitions = sorted(f"{c}/{b}" for c, b, _ in map(parse_folder, update.retired))
    assert retired_partitions == sorted(update.removed_partitions) and update.uploads == {}

    # a partition re-created right after being emptied must not reuse a folder about to be deleted
    gens_before = {f"{c}/{b}": g for c, b, g in map(parse_folder, update.retired)}
    update = store.apply(inputs(gvcf_lake, ["HG00187"]))
    assert all(p.gen == gens_before[name] + 1 for name, p in store.state.partitions.items())
    store.apply([])
    assert rows_of(store.table()) == Counter({r: n for r, n in everything.items() if r[sample_index] == "HG00187"})


def test_unsafe_updates_are_refused(gvcf_lake, tmp_path):
    store = Store(tmp_path / "bucket", SMALL_BINS)
    store.apply(inputs(gvcf_lake, ["HG00187"]))
    with pytest.raises(ValueError, match="already in the cohort"):
        store.apply(inputs(gvcf_lake, ["HG00187"]))
    with pytest.raises(ValueError, match="another sample_id"):
        store.apply([SampleInput("HG00190", "t", part(gvcf_lake, "variants", "HG00187"), None)])



def test_a_grch38_hla_contig_gets_an_encoded_folder_and_keeps_its_name(gvcf_lake, tmp_path):
    store = Store(tmp_path / "bucket", SMALL_BINS)
    variants = pq.read_table(part(gvcf_lake, "variants", "HG00190"))
    odd = variants.set_column(variants.schema.get_field_index("contig"), "contig",
                              pa.array(["HLA-A*01:01:01:01"] * variants.num_rows))
    pq.write_table(odd, tmp_path / "odd.parquet")
    store.apply([SampleInput("HG00190", "t", tmp_path / "odd.parquet", None)])
    folders = {partition_folder(p.contig, p.bin, p.gen) for p in store.state.partitions.values()}
    assert all(f.startswith("cohort/contig=HLA-A_01_01_01_01-") for f in folders)
    assert {p.contig for p in store.state.partitions.values()} == {"HLA-A*01:01:01:01"}
    assert CohortState.from_json(store.state.to_json()).partitions.keys() == store.state.partitions.keys()


@pytest.mark.parametrize("contig", ["", None])
def test_invalid_contig_is_rejected(contig):
    with pytest.raises(ValueError, match="contig"):
        partition_folder(contig, 1, 1)


def test_unsafe_contigs_never_share_a_folder():
    names = {partition_folder(c, 1, 1) for c in ["chr 1", "chr_1", "chr*1", "..", ".", "a/b", "a_b", "tab\there"]}
    assert len(names) == 8 and all(".." not in n for n in names)


def test_partition_folder():
    assert partition_folder("chr22", 10, 2) == "cohort/contig=chr22/bin=10/gen=2/"
    assert partition_folder("GL000220.1", 0, 1) == "cohort/contig=GL000220.1/bin=0/gen=1/"


# ---------------------------------------------------------------------------------------------
# manifest
# ---------------------------------------------------------------------------------------------

def test_state_json_round_trip(gvcf_lake, tmp_path):
    store = Store(tmp_path / "bucket", SMALL_BINS)
    store.apply(inputs(gvcf_lake, GVCF_SAMPLES[:2]))
    store.apply(inputs(gvcf_lake, ["HG00187"], token="t2"), drop={"HG00187"})
    state = store.state
    assert state.retired and CohortState.from_json(state.to_json()) == state
    import json
    document = json.loads(state.to_json())
    assert set(document) == {"version", "bin_size", "samples", "partitions", "retired"}
    name, entry = next(iter(document["partitions"].items()))
    assert set(entry) == {"contig", "bin", "gen", "rows", "files"} and name == f"{entry['contig']}/{entry['bin']}"
    partition = state.partitions[name]
    assert PartitionState.from_json(partition.to_json()) == partition
    assert state.live_keys(name) == [partition_folder(partition.contig, partition.bin, partition.gen) + f
                                     for f in partition.files]
    assert len(state.all_live_keys()) == sum(len(p.files) for p in state.partitions.values())
    assert CohortState.empty().to_json() and CohortState.empty().bin_size == BIN_SIZE


@pytest.mark.parametrize("tamper", [
    lambda d: d["partitions"][next(iter(d["partitions"]))]["files"].append("../../etc/passwd"),
    lambda d: d["retired"].append("registry/"),
    lambda d: d["samples"].update({"../x": "t"}),
    lambda d: d["partitions"].update({"chr1/3": next(iter(d["partitions"].values()))}),
])
def test_state_json_rejects_unsafe_content(gvcf_lake, tmp_path, tamper):
    import json
    store = Store(tmp_path / "bucket", SMALL_BINS)
    store.apply(inputs(gvcf_lake, ["HG00187"]))
    document = json.loads(store.state.to_json())
    tamper(document)
    with pytest.raises(ValueError):
        CohortState.from_json(json.dumps(document))


@pytest.mark.parametrize("samples_per_pass", [8, 1], ids=["one pass", "a pass per sample, spilled and merged"])
def test_streamed_partitions_equal_the_whole_samples_rows_with_tiny_batches_across_contigs(gvcf_lake, tmp_path,
                                                                                          monkeypatch,
                                                                                          samples_per_pass):
    """The update reads samples forward in batches (lib/cohort/sweep.py): with 7-row batches, 50-row row groups
    that span two contigs (a second contig in file order before the first's name) and blocks cut at 10 kb bins,
    every partition file holds exactly the rows, in the order, that whole-sample tables give; also when the
    samples are read in passes spilled to disk and merged."""
    from genolake_assets.lib.cohort import sweep

    monkeypatch.setattr(sweep, "BATCH_ROWS", 7)
    monkeypatch.setattr(sweep, "SAMPLES_PER_PASS", samples_per_pass)
    samples = []
    for sample in ("HG00187", "NA12249", "HG01377"):
        paths = {}
        for table in ("variants", "reference_blocks"):
            rows = pq.read_table(part(gvcf_lake, table, sample))
            relabelled = rows.set_column(rows.schema.get_field_index("contig"), rows.schema.field("contig"),
                                         pa.array(["chr21"] * rows.num_rows, rows.schema.field("contig").type))
            both = pa.concat_tables([rows, relabelled])  # chr22 then chr21: file order is not name order
            paths[table] = tmp_path / sample / f"{table}.parquet"
            paths[table].parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(both, paths[table], row_group_size=50)
        samples.append(SampleInput(sample, "t1", paths["variants"], paths["reference_blocks"]))

    update = update_cohort(CohortState.empty(SMALL_BINS), samples, set(), lambda key: None, tmp_path / "out")

    expected = split_by_partition(pa.concat_tables(
        cohort_rows(pq.read_table(s.variants_path), pq.read_table(s.reference_blocks_path), bin_size=SMALL_BINS)
        for s in samples))
    assert {(p.contig, p.bin) for p in update.state.partitions.values()} == set(expected)
    assert {p.contig for p in update.state.partitions.values()} == {"chr21", "chr22"}
    for (contig, bin), rows in expected.items():
        partition = update.state.partitions[f"{contig}/{bin}"]
        [name] = partition.files
        written = pq.read_table(update.uploads[partition.folder + name])
        reference = tmp_path / "reference" / f"{contig}-{bin}.parquet"
        write_cohort_file(rows, reference)
        assert written.equals(pq.read_table(reference)), (contig, bin)
    assert update.rows_added == sum(t.num_rows for t in expected.values())
    assert not list((tmp_path / "out").rglob("*.arrow"))  # the spilled passes are gone once merged


def test_a_per_sample_file_out_of_position_order_is_refused_naming_it(gvcf_lake, tmp_path):
    rows = pq.read_table(part(gvcf_lake, "variants", "HG00187"))
    shuffled = tmp_path / "variants.parquet"
    pq.write_table(rows.take(pa.array(list(range(rows.num_rows))[::-1])), shuffled)

    with pytest.raises(ValueError, match=f"{shuffled}: rows of chr22 are not in position order"):
        update_cohort(CohortState.empty(), [SampleInput("HG00187", "t1", shuffled, None)], set(), lambda key: None,
                      tmp_path / "out")
