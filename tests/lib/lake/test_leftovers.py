"""Leftovers of killed writers: found by the pid in their name, removed only when that process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from genolake_assets.lib.lake.leftovers import (
    process_alive,
    remove_dead_staging,
    remove_dead_temporary_files,
    staging_name,
    temp_file_prefix,
    writer_pid,
)
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.lake.local_store import LocalObjectStore


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_names_carry_the_writers_pid():
    assert temp_file_prefix() == f".tmp-{os.getpid()}-"
    assert writer_pid(f"{temp_file_prefix()}abc") == os.getpid()
    assert writer_pid(staging_name("0f3a")) == os.getpid()
    assert writer_pid(".tmp-abc123") is None  # a name from before pids were recorded
    assert writer_pid("0f3a9c") is None


def test_a_reused_pid_is_not_mistaken_for_the_writer():
    assert process_alive(os.getpid(), time.time())
    assert not process_alive(os.getpid(), since=0.0)  # this process started long after "the writer" wrote
    assert not process_alive(dead_pid(), time.time())


def test_only_dead_writers_temporary_files_are_removed_and_links_are_not_followed(tmp_path):
    lake, outside = tmp_path / "lake", tmp_path / "outside"
    (lake / "registry").mkdir(parents=True)
    outside.mkdir()
    dead = lake / "registry" / f".tmp-{dead_pid()}-x"
    live = lake / "registry" / f"{temp_file_prefix()}y"
    legacy = lake / "registry" / ".tmp-zzz"
    beyond = outside / f".tmp-{dead_pid()}-z"
    for path in (dead, live, legacy, beyond):
        path.write_bytes(b"partial")
    (lake / "linked").symlink_to(outside)

    assert remove_dead_temporary_files(lake) == [dead]
    assert live.exists() and legacy.exists() and beyond.exists()
    old = time.time() - 3 * 24 * 3600
    os.utime(legacy, (old, old))
    assert remove_dead_temporary_files(lake, stale_after=24 * 3600) == [legacy]


def test_a_killed_conversions_staging_is_removed_by_the_next_conversion(tmp_path, data_vcf):
    lake = tmp_path / "lake"
    killed = lake / "_staging" / f"{dead_pid()}-abc"
    running = lake / "_staging" / staging_name("def")
    for folder in (killed, running):
        (folder / "variants").mkdir(parents=True)
        (folder / "variants" / "part-00000.parquet").write_bytes(b"truncated")

    convert_vcf(data_vcf / "HG00187.hg38.g.vcf.gz", lake)

    assert not killed.exists() and running.exists()
    assert remove_dead_staging(lake / "_staging") == []


def test_the_local_store_writes_through_a_temporary_file_named_after_its_process(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "lake")
    seen = []
    real_replace = os.replace

    def spy(source, target):
        seen.append(os.path.basename(source))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    store.write_bytes("registry/a.json", b"{}")
    assert seen and seen[0].startswith(temp_file_prefix())
    assert [obj.key for obj in store.list_objects("registry")] == ["registry/a.json"]
