"""A crash while a partition is being written leaves the previously published version intact.

(a) in process: an exception injected in the middle of the converter's write path;
(b) a real ``SIGKILL`` of a converter process at several moments of a conversion that takes > 1 s;
(c) through Dagster: a re-uploaded landing file with a bad value fails its run, and the previous
    partition stays published and queryable.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pysam
import pytest

import genolake_assets
from genolake_assets.lib.lake import parquet_output as parquet_output
from genolake_assets.lib.vcf import convert as vcf_convert
from genolake_assets.lib.vcf.convert import convert_vcf
from tests.conftest import DATA_VCF
from tests.pipeline.helpers import ingest, refresh_tables, tick

TABLES = ("variants", "reference_blocks")
REPO_ROOT = Path(genolake_assets.__file__).resolve().parent.parent


def gvcf_lines(name: str) -> list[str]:
    return gzip.decompress((DATA_VCF / f"{name}.hg38.g.vcf.gz").read_bytes()).decode().rstrip("\n").split("\n")


def with_changed_qual(lines: list[str], qual: str = "999.25") -> list[str]:
    """A different version of the file: the first record with a QUAL gets another one."""
    lines = list(lines)
    i = next(i for i, line in enumerate(lines) if not line.startswith("#") and line.split("\t")[5] != ".")
    cols = lines[i].split("\t")
    cols[5] = qual
    lines[i] = "\t".join(cols)
    return lines


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def partition_files(lake: Path, sample_id: str) -> dict[str, Path]:
    return {t: lake / t / f"sample_id={sample_id}" / "part-00000.parquet" for t in TABLES}


def snapshot(lake: Path, sample_id: str) -> dict[str, bytes]:
    return {t: p.read_bytes() for t, p in partition_files(lake, sample_id).items()}


# -- (a) an exception in the middle of writing -----------------------------------------------------

class InjectedCrash(RuntimeError):
    pass


def _crash_on_second_append(monkeypatch):
    original, calls = parquet_output.SortedParquetWriter.append, []

    def append(self, table):
        calls.append(self.path)
        if len(calls) > 1:
            raise InjectedCrash("disk full while appending rows")
        return original(self, table)

    monkeypatch.setattr(parquet_output.SortedParquetWriter, "append", append)


def _crash_after_first_file_closed(monkeypatch):
    original, closed = parquet_output.SortedParquetWriter.close, []

    def close(self):
        if closed:
            raise InjectedCrash("crash after one staged file was complete")
        original(self)
        closed.append(self.path)

    monkeypatch.setattr(parquet_output.SortedParquetWriter, "close", close)


def _crash_in_verification(monkeypatch):
    def verify_outputs(report, header_schemas=None):
        raise InjectedCrash("crash after every staged file was written, before publishing")

    monkeypatch.setattr(vcf_convert, "verify_outputs", verify_outputs)


@pytest.mark.parametrize("inject", [_crash_on_second_append, _crash_after_first_file_closed, _crash_in_verification],
                         ids=["second_append", "after_first_file_closed", "before_publish"])
def test_exception_mid_write_leaves_previous_partition_byte_identical(tmp_path, monkeypatch, inject):
    lake = tmp_path / "lake"
    v1 = DATA_VCF / "HG00187.hg38.g.vcf.gz"
    v2 = write_text(tmp_path / "HG00187.v2.vcf", with_changed_qual(gvcf_lines("HG00187")))
    report = convert_vcf(v1, lake)
    assert report.samples["HG00187"].variant_rows > 0
    before = snapshot(lake, "HG00187")

    inject(monkeypatch)
    with pytest.raises(InjectedCrash):
        convert_vcf(v2, lake)

    assert snapshot(lake, "HG00187") == before
    assert not (lake / "_staging").exists()
    assert sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file()) == [
        "reference_blocks/sample_id=HG00187/part-00000.parquet", "variants/sample_id=HG00187/part-00000.parquet"]


def test_failed_rewrite_then_successful_rewrite_publishes_the_new_version(tmp_path, monkeypatch):
    """The crash leaves nothing behind that blocks or corrupts the next, successful conversion."""
    lake = tmp_path / "lake"
    convert_vcf(DATA_VCF / "HG00187.hg38.g.vcf.gz", lake)
    v2 = write_text(tmp_path / "HG00187.v2.vcf", with_changed_qual(gvcf_lines("HG00187"), "999.25"))
    with monkeypatch.context() as patch:
        _crash_on_second_append(patch)
        with pytest.raises(InjectedCrash):
            convert_vcf(v2, lake)
    convert_vcf(v2, lake)
    quals = pq.read_table(partition_files(lake, "HG00187")["variants"], columns=["qual"]).column("qual").to_pylist()
    assert 999.25 in quals


# -- (b) a real SIGKILL of the converter process ---------------------------------------------------

TILES = 1000  # 1,000,000 records: about 1.5 s to convert
KILL_AT = (0.05, 0.25, 0.5, 0.7, 0.9)
"""When to kill the child, as fractions of how long converting v1 in process took."""
CHILD = ("import sys\n"
         "from genolake_assets.lib.vcf.convert import convert_vcf\n"
         "print('ready', flush=True)\n"
         "convert_vcf(sys.argv[1], sys.argv[2])\n"
         "print('done', flush=True)\n")


def tiled_gvcf(lines: list[str], tiles: int) -> list[str]:
    """The records of a real gVCF repeated ``tiles`` times, each copy shifted past the previous one."""
    header = [line for line in lines if line.startswith("#")]
    body = [line.split("\t") for line in lines if not line.startswith("#")]
    ends = [int(c[7].split(";")[0][4:]) if c[7].startswith("END=") else int(c[1]) for c in body]
    span = max(ends) - int(body[0][1]) + 1000
    out = []
    for k in range(tiles):
        shift = k * span
        for cols in body:
            cols = list(cols)
            cols[1] = str(int(cols[1]) + shift)
            if cols[7].startswith("END="):
                info = cols[7].split(";")
                info[0] = f"END={int(info[0][4:]) + shift}"
                cols[7] = ";".join(info)
            out.append("\t".join(cols))
    return header + out


CHANGED_QUAL = 999.25


@pytest.fixture(scope="module")
def big_versions(tmp_path_factory) -> tuple[Path, Path]:
    """Two bgzipped 1M-record versions of HG00190 that differ in one QUAL (v2 has CHANGED_QUAL)."""
    base = tmp_path_factory.mktemp("big")
    tiled = tiled_gvcf(gvcf_lines("HG00190"), TILES)
    paths = []
    for name, lines in (("v1", tiled), ("v2", with_changed_qual(tiled, str(CHANGED_QUAL)))):
        plain = write_text(base / f"{name}.g.vcf", lines)
        pysam.tabix_compress(str(plain), str(base / f"{name}.g.vcf.gz"), force=True)
        plain.unlink()
        paths.append(base / f"{name}.g.vcf.gz")
    return paths[0], paths[1]


def version_of(path: Path, v1_bytes: bytes, v1_rows: int) -> str:
    """'v1' (byte-identical), 'v2' (complete: readable, all rows, the changed QUAL), or an assertion error."""
    if path.read_bytes() == v1_bytes:
        return "v1"
    table = pq.read_table(path)  # raises on a partial/corrupt Parquet file
    assert table.num_rows == v1_rows, f"{path}: {table.num_rows} rows, a complete version has {v1_rows}"
    if path.parent.parent.name == "variants":
        assert CHANGED_QUAL in table.column("qual").to_pylist(), f"{path} is neither v1 nor v2"
    return "v2"


def _kill_converter_after(v2: Path, lake: Path, delay: float) -> bool:
    """Start converting ``v2`` into ``lake`` in a child process, SIGKILL it ``delay`` s after its imports.

    Returns True when the child was still converting when it was killed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(v2), str(lake)], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert child.stdout.readline() == b"ready\n"
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        still_running = child.poll() is None
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert still_running or child.returncode == 0
    return still_running and child.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_during_conversion_never_leaves_a_partial_partition(tmp_path, big_versions):
    v1, v2 = big_versions
    lake = tmp_path / "lake"
    started = time.perf_counter()
    report = convert_vcf(v1, lake)
    duration = time.perf_counter() - started
    assert duration >= 0.5, "the conversion must be slow enough to be killed midway"
    files = partition_files(lake, "HG00190")
    v1_bytes = snapshot(lake, "HG00190")
    v1_rows = {t: pq.read_metadata(p).num_rows for t, p in files.items()}
    assert v1_rows == {"variants": report.samples["HG00190"].variant_rows,
                       "reference_blocks": report.samples["HG00190"].reference_block_rows}
    assert v1_rows["reference_blocks"] > 900_000
    assert CHANGED_QUAL not in pq.read_table(files["variants"], columns=["qual"]).column("qual").to_pylist()

    killed_midway = 0
    for fraction in KILL_AT:
        killed_midway += _kill_converter_after(v2, lake, fraction * duration)
        for table, path in files.items():
            version_of(path, v1_bytes[table], v1_rows[table])
    assert killed_midway >= 3, "most kills must land while the converter is still running"

    # Left alone, the same child publishes a complete v2 (so the checks above can tell v1 from v2).
    assert not _kill_converter_after(v2, lake, 120.0)
    assert version_of(files["variants"], v1_bytes["variants"], v1_rows["variants"]) == "v2"
    assert version_of(files["reference_blocks"], v1_bytes["reference_blocks"], v1_rows["reference_blocks"]) in (
        "v1", "v2")  # v2 changes a variant's QUAL; its reference blocks may be byte-identical to v1's


# -- (c) through Dagster: a bad re-upload does not take down the published version ------------------------

def test_bad_reupload_fails_its_run_and_previous_partition_stays_visible(tmp_path, instance, resources, store, land):
    good = write_text(tmp_path / "HG00187.vcf", gvcf_lines("HG00187"))
    land(good)
    first = tick(instance, resources)
    assert [r.partition_key for r in first.run_requests] == ["HG00187"]
    assert ingest(instance, resources, "HG00187").success
    refresh_tables(instance, resources)
    before = snapshot(store.root, "HG00187")
    rows_before = resources["catalog"].query(
        "SELECT count(*) AS n FROM variants WHERE sample_id = 'HG00187'").to_pylist()[0]["n"]
    assert rows_before > 0

    lines = gvcf_lines("HG00187")
    i = next(i for i, line in enumerate(lines) if not line.startswith("#") and line.split("\t")[4] != "<NON_REF>")
    cols = lines[i].split("\t")
    cols[1] = "not-a-position"
    lines[i] = "\t".join(cols)
    (tmp_path / "replacement").mkdir()
    time.sleep(0.01)  # the local store's etag is size + mtime in ns
    land(write_text(tmp_path / "replacement" / "HG00187.vcf", lines))  # same landing key: landing/HG00187.vcf
    second = tick(instance, resources, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["HG00187"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key

    result = ingest(instance, resources, "HG00187")
    assert not result.success
    record = json.loads(store.read_bytes("registry/samples/HG00187.json"))
    assert record["status"] == "quarantined"
    assert f"line {i + 1}" in record["reason"] and "POS" in record["reason"]

    assert snapshot(store.root, "HG00187") == before
    variants = pq.read_table(partition_files(store.root, "HG00187")["variants"])
    assert variants.num_rows == rows_before
    refresh_tables(instance, resources)
    rows_after = resources["catalog"].query(
        "SELECT count(*) AS n FROM variants WHERE sample_id = 'HG00187'").to_pylist()[0]["n"]
    assert rows_after == rows_before


def test_samples_record_still_describes_the_published_version_after_a_bad_reupload(tmp_path, instance, resources,
                                                                                    store, land):
    good = write_text(tmp_path / "HG00187.vcf", gvcf_lines("HG00187"))
    land(good)
    first = tick(instance, resources)
    assert ingest(instance, resources, "HG00187").success
    published = json.loads(store.read_bytes("registry/samples/HG00187.json"))
    assert published["status"] == "converted" and published["variant_rows"] > 0

    lines = gvcf_lines("HG00187")
    i = next(i for i, line in enumerate(lines) if not line.startswith("#") and line.split("\t")[4] != "<NON_REF>")
    cols = lines[i].split("\t")
    cols[1] = "not-a-position"
    lines[i] = "\t".join(cols)
    (tmp_path / "replacement").mkdir()
    time.sleep(0.01)
    land(write_text(tmp_path / "replacement" / "HG00187.vcf", lines))
    tick(instance, resources, cursor=first.cursor)
    assert not ingest(instance, resources, "HG00187").success

    record = json.loads(store.read_bytes("registry/samples/HG00187.json"))
    assert record["status"] == "quarantined"  # the new upload is rejected ...
    # ... but the data still served must stay traceable to its own file and row counts
    visible = pq.read_metadata(partition_files(store.root, "HG00187")["variants"]).num_rows
    assert record["variant_rows"] == visible
    assert record["sha256"] == published["sha256"]
