"""One published cohort update (lib/cohort/build.py) on a local lake of real conversions: what is folded
in, what is removed, the manifest last, one writer at a time."""

from __future__ import annotations

import fcntl
import shutil
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.cohort.build import WRITER_LOCK_KEY, ConcurrentWriterError, build_cohort, load_state
from genolake_assets.lib.cohort.layout import STATE_KEY
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.lake.local_store import LocalObjectStore

GVCFS = ["HG00187", "HG00190", "HG01377"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory, data_vcf) -> Path:
    lake = tmp_path_factory.mktemp("build") / "lake"
    for name in GVCFS:
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
    return lake


@pytest.fixture
def store(converted, tmp_path) -> LocalObjectStore:
    lake = tmp_path / "lake"
    shutil.copytree(converted, lake)
    return LocalObjectStore(lake)


def build(store, tokens: dict[str, str], work: str = "work", **limits):
    messages: list[str] = []
    built = build_cohort(store, store.local_path, store.root.parent / work, tokens, log=messages.append, **limits)
    return built, messages


def per_sample_rows(store, samples) -> int:
    return sum(pq.read_metadata(store.local_path(f"{table}/sample_id={s}/part-00000.parquet")).num_rows
               for s in samples for table in ("variants", "reference_blocks"))


def test_a_first_build_folds_in_every_sample_and_publishes_the_manifest(store):
    tokens = {s: f"v1-{s}" for s in GVCFS}

    built, messages = build(store, tokens)

    state = load_state(store)
    assert state.version == 1 and state.samples == tokens
    assert built.samples_added == 3 and built.samples_reconverted == 0 and built.samples_pending == 0
    assert built.rows == per_sample_rows(store, GVCFS)  # no gVCF block here crosses a bin boundary
    assert sorted(o.key for o in store.list_objects("cohort/")) == state.all_live_keys()
    assert built.files == len(state.all_live_keys()) and messages == []
    assert not (store.root.parent / "work").exists()  # the work folder is the update's own


def test_only_new_and_reconverted_samples_are_folded_in(store):
    build(store, {"HG00187": "a", "HG00190": "a"})
    files_before = {name: list(p.files) for name, p in load_state(store).partitions.items()}

    added, _ = build(store, {"HG00187": "a", "HG00190": "a", "HG01377": "a"})
    assert (added.samples_added, added.samples_reconverted, added.update.rows_removed) == (1, 0, 0)
    for name, files in files_before.items():  # appended: the earlier files stay, one delta more at most
        assert load_state(store).partitions[name].files[:len(files)] == files

    again, _ = build(store, {"HG00187": "a", "HG00190": "b", "HG01377": "a"})
    assert (again.samples_added, again.samples_reconverted) == (0, 1)
    assert again.update.rows_removed == again.update.rows_added > 0 and again.rows == added.rows

    unchanged, _ = build(store, {"HG00187": "a", "HG00190": "b", "HG01377": "a"})
    assert (unchanged.samples_added, unchanged.samples_reconverted, unchanged.update.rows_added) == (0, 0, 0)
    assert unchanged.state.version == 4 and unchanged.rows == added.rows


def test_max_samples_leaves_the_rest_for_the_next_update(store):
    tokens = {s: "a" for s in GVCFS}

    first, _ = build(store, tokens, max_samples=2)
    second, _ = build(store, tokens, max_samples=2)

    assert (first.samples_added, first.samples_pending) == (2, 1)
    assert (second.samples_added, second.samples_pending) == (1, 0)
    assert sorted(load_state(store).samples) == GVCFS


def test_files_a_dead_writer_left_are_removed_first(store):
    build(store, {"HG00187": "a"})
    left = "cohort/contig=chr22/bin=10/gen=1/delta-0123456789ab.parquet"
    store.write_bytes(left, b"half an upload")

    built, messages = build(store, {"HG00187": "a", "HG01377": "a"})

    assert built.orphans_removed == [left] and not store.exists(left)
    assert messages and "interrupted run" in messages[0]


def test_retired_folders_go_once_the_next_version_is_published(store):
    build(store, {"HG00187": "a"})
    compacted, _ = build(store, {"HG00187": "a", "HG01377": "a"}, max_files=1)
    retired = compacted.state.retired
    assert retired and all(list(store.list_objects(folder)) for folder in retired)  # readers may still hold them

    after, _ = build(store, {"HG00187": "a", "HG01377": "a"})

    assert after.retired_folders_deleted == len(retired)
    assert not any(list(store.list_objects(folder)) for folder in retired)


def test_a_manifest_moved_by_another_writer_publishes_nothing(store):
    build(store, {"HG00187": "a"})
    published = store.read_bytes(STATE_KEY)
    upload = store.upload

    def upload_while_another_writer_publishes(path, key, **kwargs):
        if store.read_bytes(STATE_KEY) == published:  # the other writer's manifest, a version on
            store.write_bytes(STATE_KEY, published.replace(b'"version": 1', b'"version": 2'))
        return upload(path, key, **kwargs)

    store.upload = upload_while_another_writer_publishes
    with pytest.raises(ConcurrentWriterError, match="another writer"):
        build(store, {"HG00187": "a", "HG01377": "a"})

    assert load_state(store).version == 2 and sorted(load_state(store).samples) == ["HG00187"]
    assert not (store.root.parent / "work").exists()


def test_a_second_writer_of_a_local_lake_waits_for_the_first(store):
    lock_path = store.local_path(WRITER_LOCK_KEY)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    outcome: dict = {}

    def second_writer():
        outcome["built"], outcome["messages"] = build(store, {"HG00187": "a"})

    with open(lock_path, "a") as first_writer:
        fcntl.flock(first_writer, fcntl.LOCK_EX)
        second = threading.Thread(target=second_writer)
        second.start()
        time.sleep(0.5)
        assert second.is_alive() and not store.exists(STATE_KEY)  # waiting, nothing written
    second.join(timeout=60)

    assert outcome["built"].state.version == 1 and load_state(store).version == 1
    assert "waiting for another cohort writer" in outcome["messages"][0]
    assert WRITER_LOCK_KEY not in [o.key for o in store.list_objects("registry/")]  # a dot file: never listed
