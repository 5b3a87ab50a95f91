"""Reference registration and reference choice, on a real local lake with the real FASTAs in tests/data/bam/ref.

The truths the tests compare against come from outside the code under test: the ``.fai`` files, md5s
computed here with pysam, and the ``M5`` an aligner wrote into the NA12878 BAM's header.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pysam
import pytest

from genolake_assets.lib.alignments.registry import (
    ReferenceRecord,
    choose_reference,
    load_references,
    register_landed_references,
)
from genolake_assets.lib.errors import AlignmentFileError
from genolake_assets.resources.lake.local_store import LocalObjectStore

DATA = Path(__file__).resolve().parents[2] / "data" / "bam"
REF = DATA / "ref"
CE_REF, Q_REF, DERIVED_REF = REF / "ce.fa.gz", REF / "q.fa.gz", REF / "htsnexus_test_NA12878.md_ref.fa.gz"
CE_BAM, NA12878_BAM = DATA / "ce1000.bam", DATA / "NA12878.chr22.tiny.bam"
HTSNEXUS_BAM = DATA / "htsnexus_NA12878.chr11_5.0-5.1Mb.bam"
Q_M5 = "ee5a2decc990ba0220728d924ddd4dba"  # @SQ SN:q M5 in NA12878.chr22.tiny.bam, written by the aligner
HTSNEXUS_11_M5 = "98c59049a2df285c76ffb1c6db8f8b96"  # @SQ SN:11 in the htsnexus BAM (hs37d5)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fai_lengths(fasta: Path) -> dict[str, int]:
    return {line.split("\t")[0]: int(line.split("\t")[1]) for line in Path(f"{fasta}.fai").read_text().splitlines()}


def sequence_md5s(fasta: Path) -> dict[str, str]:
    with pysam.FastaFile(str(fasta)) as handle:
        return {name: hashlib.md5(handle.fetch(name).upper().encode()).hexdigest() for name in handle.references}


def bam_header(bam: Path) -> dict:
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
        return handle.header.to_dict()


@pytest.fixture
def lake(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "lake")


@pytest.fixture
def local_copy(lake, tmp_path):
    """What the asset passes in: download a key to local scratch (siblings land beside each other)."""
    copied: list[str] = []

    def copy(key: str) -> Path:
        copied.append(key)
        return lake.download(key, tmp_path / "scratch" / key)

    copy.copied = copied
    return copy


def land(lake: LocalObjectStore, source: Path, name: str | None = None, *suffixes: str) -> str:
    key = f"landing/references/{name or source.name}"
    for suffix in ("", *suffixes):
        lake.upload(Path(f"{source}{suffix}"), key + suffix)
    return key


# -- register_landed_references -----------------------------------------------------------------


def test_a_landed_reference_is_registered_content_addressed(lake, local_copy):
    land(lake, CE_REF, None, ".fai", ".gzi")

    registered, waiting = register_landed_references(lake, local_copy)

    assert waiting == []
    [record] = registered
    digest = sha256(CE_REF)
    assert record.sha256 == digest and record.md5 == hashlib.md5(CE_REF.read_bytes()).hexdigest()
    assert record.size == CE_REF.stat().st_size
    assert record.file_name == "ce.fa.gz" and record.source_key == "landing/references/ce.fa.gz"
    assert record.key == f"references/{digest}/ce.fa.gz"
    assert record.index_keys == [f"{record.key}.fai", f"{record.key}.gzi"]
    for key, source in zip([record.key, *record.index_keys], [CE_REF, Path(f"{CE_REF}.fai"), Path(f"{CE_REF}.gzi")]):
        assert lake.read_bytes(key) == source.read_bytes()
    lengths, md5s = fai_lengths(CE_REF), sequence_md5s(CE_REF)
    assert record.sequences == {name: {"length": lengths[name], "md5": md5s[name]} for name in lengths}
    assert len(record.sequences) == 7

    stored = json.loads(lake.read_bytes(f"registry/references/{digest}.json"))
    assert stored == json.loads(record.to_json())
    assert [r.sha256 for r in load_references(lake)] == [digest]


def test_a_fasta_waits_for_its_fai_then_registers_once(lake, local_copy):
    land(lake, CE_REF, None, ".fai", ".gzi")
    land(lake, Q_REF, None, ".gzi")  # its .fai is still in transit
    lake.write_bytes("landing/references/README.txt", b"not a FASTA")

    registered, waiting = register_landed_references(lake, local_copy)
    assert [r.file_name for r in registered] == ["ce.fa.gz"]
    assert len(waiting) == 1
    assert "landing/references/q.fa.gz:" in waiting[0] and "waiting for landing/references/q.fa.gz.fai" in waiting[0]
    assert not any(key.startswith("landing/references/q.fa.gz") for key in local_copy.copied)  # not fetched yet

    lake.upload(Path(f"{Q_REF}.fai"), "landing/references/q.fa.gz.fai")
    registered, waiting = register_landed_references(lake, local_copy)
    assert waiting == []
    [q] = registered
    assert q.sequences == {"q": {"length": 12356, "md5": Q_M5}}  # the md5 the aligner wrote into the BAM

    registry_before = {obj.key: obj.etag for obj in lake.list_objects("registry/references/")}
    references_before = {obj.key: obj.etag for obj in lake.list_objects("references/")}
    assert register_landed_references(lake, local_copy) == ([], [])
    assert {obj.key: obj.etag for obj in lake.list_objects("registry/references/")} == registry_before
    assert {obj.key: obj.etag for obj in lake.list_objects("references/")} == references_before
    assert sorted(r.file_name for r in load_references(lake)) == ["ce.fa.gz", "q.fa.gz"]


def test_an_uncompressed_fasta_needs_only_its_fai(lake, local_copy, tmp_path):
    with pysam.FastaFile(str(Q_REF)) as fasta:
        plain = tmp_path / "q.fa"
        plain.write_text(f">q\n{fasta.fetch('q')}\n")
    pysam.faidx(str(plain))
    land(lake, plain, None, ".fai")

    [record], waiting = register_landed_references(lake, local_copy)
    assert waiting == []
    assert record.index_keys == [f"{record.key}.fai"]
    assert record.sequences["q"]["md5"] == Q_M5  # same sequence, different file, same M5


def test_a_fasta_replaced_under_the_same_name_is_registered_again(lake, local_copy):
    land(lake, Q_REF, "genome.fa.gz", ".fai", ".gzi")
    [first], _ = register_landed_references(lake, local_copy)
    land(lake, CE_REF, "genome.fa.gz", ".fai", ".gzi")
    [second], _ = register_landed_references(lake, local_copy)

    assert (first.sha256, second.sha256) == (sha256(Q_REF), sha256(CE_REF))
    assert first.key != second.key and lake.exists(first.key)  # the old version stays: CRAMs may need it
    assert second.sequences.keys() == fai_lengths(CE_REF).keys()


def test_a_replaced_fasta_is_not_registered_again_on_later_calls(lake, local_copy):
    land(lake, Q_REF, "genome.fa.gz", ".fai", ".gzi")
    register_landed_references(lake, local_copy)
    land(lake, CE_REF, "genome.fa.gz", ".fai", ".gzi")  # sha256 1a6c... sorts before q's 8a91...
    register_landed_references(lake, local_copy)

    assert register_landed_references(lake, local_copy) == ([], [])


# -- choose_reference ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> list[ReferenceRecord]:
    lake = LocalObjectStore(tmp_path_factory.mktemp("lake"))
    for fasta in (CE_REF, Q_REF, DERIVED_REF):
        land(lake, fasta, None, ".fai", ".gzi")
    registered, waiting = register_landed_references(lake, lake.local_path)
    assert waiting == [] and len(registered) == 3
    return load_references(lake)


def by_name(references: list[ReferenceRecord], name: str) -> ReferenceRecord:
    return next(r for r in references if r.file_name == name)


@pytest.mark.parametrize(("bam", "expected"), [(NA12878_BAM, "q.fa.gz"), (CE_BAM, "ce.fa.gz")])
def test_the_reference_the_bam_was_aligned_to_is_chosen(bam, expected, references):
    chosen = choose_reference(str(bam), bam_header(bam), references)
    assert chosen.file_name == expected
    assert chosen.sha256 == sha256(REF / expected)


def test_the_reference_holding_most_of_the_bams_sequences_wins(references):
    header = {"SQ": [{"SN": "q", "LN": 12356}, *bam_header(CE_BAM)["SQ"]]}  # q fits 1 sequence, ce fits 5
    assert choose_reference("both.bam", header, references).file_name == "ce.fa.gz"


def test_a_derived_reference_is_an_m5_mismatch_naming_the_sequence(references):
    derived_11 = by_name(references, DERIVED_REF.name).sequences["11"]["md5"]
    assert derived_11 != HTSNEXUS_11_M5

    with pytest.raises(AlignmentFileError) as raised:
        choose_reference(str(HTSNEXUS_BAM), bam_header(HTSNEXUS_BAM), references)

    error = raised.value
    assert error.code == "reference_mismatch"
    assert error.detail.file == str(HTSNEXUS_BAM)
    assert "'11'" in str(error) and HTSNEXUS_11_M5 in str(error) and derived_11 in str(error)


def test_a_derived_reference_is_chosen_when_md5s_are_not_checked(references):
    chosen = choose_reference(str(HTSNEXUS_BAM), bam_header(HTSNEXUS_BAM), references, check_md5=False)
    assert chosen.file_name == DERIVED_REF.name


@pytest.mark.parametrize(("header", "candidates"), [
    ({"SQ": [{"SN": "chrZ", "LN": 5}]}, None),  # no registered reference has the sequence
    ({"SQ": [{"SN": "q", "LN": 999}]}, None),  # the name is there, with another length
    (None, ["q.fa.gz"]),  # ce1000's sequences against q only
    (None, []),  # nothing registered
])
def test_no_fitting_reference_is_reference_missing(header, candidates, references):
    header = header or bam_header(CE_BAM)
    pool = references if candidates is None else [r for r in references if r.file_name in candidates]
    with pytest.raises(AlignmentFileError) as raised:
        choose_reference("s3://lake/landing/x.bam", header, pool)
    assert raised.value.code == "reference_missing"
    assert "s3://lake/landing/x.bam" in str(raised.value)
    assert f"{header['SQ'][0]['SN']} ({header['SQ'][0]['LN']} bp)" in str(raised.value)
    assert "landing/references/" in str(raised.value)
