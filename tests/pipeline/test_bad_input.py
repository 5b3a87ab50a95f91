"""Bad input through the whole pipeline: landing sensor → raw_vcf → sample_variants.

One lake is built for the module (real Dagster runs on an ephemeral instance, real files, real
DuckDB catalog, real Parquet):

1. a good gVCF (HG00190) lands and is converted;
2. then a mix of bad and awkward files lands at once — real broken VCFs from tests/data/vcf/bad,
   and files derived from the real gVCFs in a temporary directory (truncated bgzip, a value that
   disagrees with its header type, an empty file, prose, PNG bytes, hostile sample names, a
   second file claiming the already-converted sample name HG00190 with a bad value);
3. one sensor tick, then one ``ingest`` run per requested partition, then ``refresh_tables``.

Each test below checks one promise about what that left behind.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from genolake_assets.lib.lake.identifiers import is_safe_sample_id, require_safe_key, sample_id_for
from genolake_assets.resources.profile import build_resources
from genolake_assets.settings import Settings
from tests.conftest import DATA_VCF
from tests.pipeline.helpers import ingest, refresh_tables, tick

GOOD = "HG00190"
DOTDOT_NAME = "../x"
SQL_NAME = "a'; drop table"
PNG_BYTES = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
             b"\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND"
             b"\xaeB`\x82")


# -- deriving bad files from the real test data -------------------------------------------------

def gvcf_lines(name: str) -> list[str]:
    """The decompressed lines (without newlines) of one of the real single-sample gVCFs."""
    return gzip.decompress((DATA_VCF / f"{name}.hg38.g.vcf.gz").read_bytes()).decode().split("\n")


def chrom_line_index(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))


def rename_only_sample(lines: list[str], new_name: str) -> list[str]:
    lines = list(lines)
    i = chrom_line_index(lines)
    lines[i] = "\t".join(lines[i].split("\t")[:9] + [new_name])
    return lines


def bgzf_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each BGZF block (BSIZE is at bytes 16-17 of every block)."""
    blocks, offset = [], 0
    while offset < len(data):
        size = struct.unpack("<H", data[offset + 16:offset + 18])[0] + 1
        blocks.append((offset, size))
        offset += size
    return blocks


def first_record_line(lines: list[str], predicate) -> int:
    """1-based line number of the first body line matching ``predicate``."""
    start = chrom_line_index(lines) + 1
    return next(i + 1 for i in range(start, len(lines)) if lines[i] and predicate(lines[i].split("\t")))


@dataclass
class Landed:
    """One file put into the landing zone and what the pipeline did with it."""

    name: str
    source: Path
    runs: dict[str, dg.ExecuteInProcessResult] = field(default_factory=dict)


@dataclass
class Scenario:
    home: Path
    root: Path
    inputs: Path
    store: object
    resources: dict
    landed: dict[str, Landed]
    good_bytes_before: dict[str, bytes]
    sensor_result: dg.SensorResult
    type_error_line: int

    def runs_of(self, name: str) -> dict[str, dg.ExecuteInProcessResult]:
        return self.landed[name].runs

    def reason_for_source(self, source_key: str) -> dict:
        found = [json.loads(self.store.read_bytes(o.key)) for o in self.store.list_objects("quarantine")
                 if o.key.endswith("/reason.json")]
        matching = [r for r in found if r["source_key"] == source_key]
        assert matching, f"no quarantine/**/reason.json for {source_key}; have {[r['source_key'] for r in found]}"
        return matching[-1]

    def reason_for_sample(self, sample_id: str) -> dict:
        key = f"quarantine/{sample_id}/reason.json"
        assert self.store.exists(key), f"{key} missing"
        return json.loads(self.store.read_bytes(key))

    def record(self, sample_id: str) -> dict:
        return json.loads(self.store.read_bytes(f"registry/samples/{sample_id}.json"))

    def query(self, sql: str, parameters: list | None = None):
        return self.resources["catalog"].query(sql, parameters).to_pylist()


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(e.step_failure_data.error.message for e in result.all_events
                     if e.event_type == dg.DagsterEventType.STEP_FAILURE)


def partition_bytes(root: Path, sample_id: str) -> dict[str, bytes]:
    return {table: (root / table / f"sample_id={sample_id}" / "part-00000.parquet").read_bytes()
            for table in ("variants", "reference_blocks")}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    base = tmp_path_factory.mktemp("bad_input")
    inputs, home = base / "inputs", base / "home"
    inputs.mkdir()
    settings = Settings(profile="local", home=home, s3_bucket=None, s3_prefix="", endpoint_url=None, region=None,
                        kms_key_id=None)
    resources = build_resources(settings)
    store = resources["lake"].store()
    landed: dict[str, Landed] = {}

    def land(path: Path, name: str | None = None) -> None:
        name = name or path.name
        store.upload(path, f"landing/{name}")
        landed[name] = Landed(name, path)

    def write(name: str, data: bytes | str) -> Path:
        path = inputs / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    with dg.DagsterInstance.ephemeral() as instance:
        # 1. The good sample, converted before any bad input shows up.
        land(DATA_VCF / f"{GOOD}.hg38.g.vcf.gz")
        first = tick(instance, resources)
        assert [r.partition_key for r in first.run_requests] == [GOOD]
        landed[f"{GOOD}.hg38.g.vcf.gz"].runs[GOOD] = ingest(instance, resources, GOOD)
        good_before = partition_bytes(store.root, GOOD)

        # 2. The bad and awkward files.
        for name in ("malformed.vcf", "bad_flag_number.vcf", "missingInfoArray.vcf"):
            land(DATA_VCF / "bad" / name)
        land(write("empty.vcf", b""))
        land(write("notes.vcf", "Sequencing run notes\nThe flow cell was replaced on Tuesday.\n"))
        land(write("image.vcf", PNG_BYTES))

        # A bgzip cut short at a block boundary: the header still parses, the EOF marker is missing.
        na12249 = (DATA_VCF / "NA12249.hg38.g.vcf.gz").read_bytes()
        blocks = bgzf_blocks(na12249)
        land(write("NA12249.truncated.g.vcf.gz", na12249[:blocks[-2][0]]))
        # A bgzip cut in the middle, inside the header: even the header cannot be read.
        hg01377 = (DATA_VCF / "HG01377.hg38.g.vcf.gz").read_bytes()
        land(write("HG01377.half.g.vcf.gz", hg01377[:len(hg01377) // 2]))

        # A record whose FORMAT/MIN_DP value is not the Integer its header declares.
        lines = gvcf_lines("HG00187")
        type_error_line = first_record_line(lines, lambda cols: cols[8] == "GT:DP:GQ:MIN_DP:PL"
                                            and cols[4] == "<NON_REF>" and int(cols[1]) > 10571000)
        cols = lines[type_error_line - 1].split("\t")
        values = cols[9].split(":")
        values[3] = "x1"
        cols[9] = ":".join(values)
        lines[type_error_line - 1] = "\t".join(cols)
        land(write("HG00187.type_error.vcf", "\n".join(lines)))

        # A second file that claims the already-converted sample name, with a bad QUAL.
        lines = gvcf_lines(GOOD)
        bad_qual_line = first_record_line(lines, lambda cols: cols[5] != ".")
        cols = lines[bad_qual_line - 1].split("\t")
        cols[5] = "high"
        lines[bad_qual_line - 1] = "\t".join(cols)
        land(write("HG00190.resequenced.vcf", "\n".join(lines)))
        # ... and a second, valid file for the same sample name (the same person sequenced twice).
        land(write("HG00190.second_run.vcf", "\n".join(gvcf_lines(GOOD))))

        # Hostile sample names: a path traversal (from the 1000 Genomes multi-sample VCF, one sample
        # column kept) and an SQL injection attempt (from a gVCF).
        kg = (DATA_VCF / "1kg_chr20_100samples_GRCh37.vcf").read_text().split("\n")
        kg = ["\t".join(line.split("\t")[:10]) if not line.startswith("##") and line else line for line in kg]
        land(write("dotdot.vcf", "\n".join(rename_only_sample(kg, DOTDOT_NAME))))
        land(write("sql.vcf", "\n".join(rename_only_sample(gvcf_lines("NA20317"), SQL_NAME))))

        # 3. One tick, one run per requested partition.
        result = tick(instance, resources, cursor=first.cursor)
        for request in result.run_requests:
            source = request.run_key.split("@")[1].removeprefix("landing/")
            landed[source].runs[request.partition_key] = ingest(instance, resources, request.partition_key)
        refresh_tables(instance, resources)

    return Scenario(home=home, root=store.root, inputs=inputs, store=store, resources=resources, landed=landed,
                    good_bytes_before=good_before, sensor_result=result, type_error_line=type_error_line)


# -- the good sample -----------------------------------------------------------------------------

def test_good_sample_converts_to_a_non_empty_partition(scenario):
    assert all(r.success for r in scenario.runs_of(f"{GOOD}.hg38.g.vcf.gz").values())
    part = scenario.root / "variants" / f"sample_id={GOOD}" / "part-00000.parquet"
    table = pq.read_table(part)
    assert table.num_rows > 0
    assert set(table.column("sample_id").to_pylist()) == {GOOD}
    assert scenario.record(GOOD)["status"] == "converted"


def test_previously_converted_sample_is_byte_identical_after_bad_files_land(scenario):
    assert partition_bytes(scenario.root, GOOD) == scenario.good_bytes_before


def test_bad_file_claiming_a_converted_sample_name_gets_its_own_id_and_fails_alone(scenario):
    runs = scenario.runs_of("HG00190.resequenced.vcf")
    (sample_id, result), = runs.items()
    assert sample_id != GOOD and sample_id.startswith(f"{GOOD}-f")
    assert not result.success
    assert "QUAL" in failure_text(result)
    assert scenario.record(sample_id)["status"] == "quarantined"
    assert scenario.record(GOOD)["status"] == "converted"
    assert not (scenario.root / "variants" / f"sample_id={sample_id}").exists()


# -- files whose header cannot be read: quarantined by the sensor -----------------------------------

@pytest.mark.parametrize(("name", "code", "line", "field"), [
    ("empty.vcf", "empty_or_no_header", None, None),
    ("notes.vcf", "not_vcf", 1, None),
    ("image.vcf", "not_vcf", None, None),
    ("bad_flag_number.vcf", "invalid_header", 3, "INFO/BAD_FLAG"),
    ("HG01377.half.g.vcf.gz", "corrupt_compression", None, None),
])
def test_unreadable_header_is_quarantined_by_the_sensor_without_a_run(scenario, name, code, line, field):
    assert scenario.runs_of(name) == {}, "no partition or run for a file whose header cannot be read"
    assert not any(f"@landing/{name}@" in r.run_key for r in scenario.sensor_result.run_requests)
    reason = scenario.reason_for_source(f"landing/{name}")
    assert reason["code"] == code
    assert reason["file"].endswith(f"/landing/{name}")
    assert reason["problem"]
    assert reason["line"] == line
    assert reason["field"] == field
    copy = scenario.root / reason["quarantined_copy"].removeprefix(scenario.store.root_uri + "/")
    assert copy.read_bytes() == scenario.landed[name].source.read_bytes()


# -- files that register but fail their own run -------------------------------------------------------

def test_truncated_bgzip_with_readable_header_fails_raw_vcf_and_is_quarantined(scenario):
    (sample_id, result), = scenario.runs_of("NA12249.truncated.g.vcf.gz").items()
    assert sample_id == "NA12249"
    assert not result.success
    failed_steps = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE}
    assert failed_steps == {"raw_vcf"}
    assert "end-of-file marker is missing" in failure_text(result)
    reason = scenario.reason_for_sample(sample_id)
    assert reason["code"] == "truncated_bgzip"
    assert reason["source_key"] == "landing/NA12249.truncated.g.vcf.gz"
    assert (scenario.root / "quarantine" / sample_id / "NA12249.truncated.g.vcf.gz").read_bytes() == \
        scenario.landed["NA12249.truncated.g.vcf.gz"].source.read_bytes()
    record = scenario.record(sample_id)
    assert record["status"] == "quarantined"
    assert "truncated BGZF" in record["reason"]
    assert not (scenario.root / "variants" / f"sample_id={sample_id}").exists()


def test_value_that_disagrees_with_header_type_names_line_and_field(scenario):
    (sample_id, result), = scenario.runs_of("HG00187.type_error.vcf").items()
    assert sample_id == "HG00187"
    assert not result.success
    message = failure_text(result)
    assert f"line {scenario.type_error_line}, field FORMAT/MIN_DP" in message
    assert "'x1' is not a valid Integer" in message
    reason = scenario.reason_for_sample(sample_id)
    assert reason["code"] == "invalid_value"
    assert reason["line"] == scenario.type_error_line
    assert reason["field"] == "FORMAT/MIN_DP"
    assert reason["file"].endswith("/HG00187.type_error.vcf")
    assert (scenario.root / "quarantine" / sample_id / "HG00187.type_error.vcf").read_bytes() == \
        scenario.landed["HG00187.type_error.vcf"].source.read_bytes()
    record = scenario.record(sample_id)
    assert record["status"] == "quarantined"
    assert "FORMAT/MIN_DP" in record["reason"] and f"line {scenario.type_error_line}" in record["reason"]
    assert not (scenario.root / "variants" / f"sample_id={sample_id}").exists()


def test_malformed_record_fails_every_sample_of_the_file_naming_line_54(scenario):
    runs = scenario.runs_of("malformed.vcf")
    assert len(runs) == 100  # one partition per sample column
    assert not any(r.success for r in runs.values())
    for sample_id in runs:
        reason = scenario.reason_for_sample(sample_id)
        assert (reason["code"], reason["line"]) == ("malformed_record", 54), sample_id
        assert "expected 109 tab-separated columns, found 164" in reason["problem"]
        assert scenario.record(sample_id)["status"] == "quarantined"
        assert not (scenario.root / "variants" / f"sample_id={sample_id}").exists()
    some = next(iter(runs))
    assert (scenario.root / "quarantine" / some / "malformed.vcf").read_bytes() == \
        (DATA_VCF / "bad" / "malformed.vcf").read_bytes()


def test_samples_table_reports_quarantined_samples_with_their_reason(scenario):
    rows = {r["sample_id"]: r for r in scenario.query("SELECT sample_id, status, reason FROM samples")}
    assert rows[GOOD]["status"] == "converted" and rows[GOOD]["reason"] is None
    assert rows["HG00187"]["status"] == "quarantined"
    assert "FORMAT/MIN_DP" in rows["HG00187"]["reason"]
    assert rows["NA12249"]["status"] == "quarantined"
    assert "truncated BGZF" in rows["NA12249"]["reason"]
    malformed = [r for sid, r in rows.items() if sid in scenario.runs_of("malformed.vcf")]
    assert len(malformed) == 100 and all(r["status"] == "quarantined" and "line 54" in r["reason"]
                                         for r in malformed)


def test_landing_files_are_left_untouched(scenario):
    for name, landed in scenario.landed.items():
        assert (scenario.root / "landing" / name).read_bytes() == landed.source.read_bytes(), name


# -- valid but awkward files convert ------------------------------------------------------------------

def test_missing_info_array_vcf_is_valid_and_converts_both_samples(scenario):
    runs = scenario.runs_of("missingInfoArray.vcf")
    assert len(runs) == 2 and all(r.success for r in runs.values())
    for sample_id in runs:
        part = scenario.root / "variants" / f"sample_id={sample_id}" / "part-00000.parquet"
        assert pq.read_metadata(part).num_rows > 0
        assert scenario.record(sample_id)["status"] == "converted"
    names = {r["sample_name"] for r in scenario.query("SELECT DISTINCT sample_name FROM variants")}
    assert {"C1046::HG02024", "C1046::HG02025"} <= names


def test_sample_id_column_matches_the_partition_it_is_published_in(scenario):
    for table in ("variants", "reference_blocks"):
        for folder in sorted((scenario.root / table).iterdir()):
            partition_id = folder.name.removeprefix("sample_id=")
            values = set(pq.read_table(folder / "part-00000.parquet", columns=["sample_id"])
                         .column("sample_id").to_pylist())
            assert values <= {partition_id}, f"{table}/{folder.name} holds rows of {values}"


def test_second_file_for_a_converted_sample_is_queryable_under_its_own_id(scenario):
    (second_id, result), = scenario.runs_of("HG00190.second_run.vcf").items()
    assert result.success and second_id.startswith(f"{GOOD}-f")
    rows_per_file = pq.read_metadata(scenario.root / "variants" / f"sample_id={GOOD}" / "part-00000.parquet").num_rows
    counts = {r["sample_id"]: r["n"] for r in scenario.query(
        "SELECT sample_id, count(*) AS n FROM variants WHERE sample_name = ? GROUP BY sample_id", [GOOD])}
    assert counts == {GOOD: rows_per_file, second_id: rows_per_file}


@pytest.mark.parametrize(("file_name", "sample_name"), [("dotdot.vcf", DOTDOT_NAME), ("sql.vcf", SQL_NAME)])
def test_hostile_sample_name_converts_under_a_safe_id(scenario, file_name, sample_name):
    (sample_id, result), = scenario.runs_of(file_name).items()
    assert result.success
    assert sample_id == sample_id_for(sample_name) and is_safe_sample_id(sample_id)
    assert sample_id.startswith({"dotdot.vcf": "x-", "sql.vcf": "a_drop_table-"}[file_name])
    part = scenario.root / "variants" / f"sample_id={sample_id}" / "part-00000.parquet"
    table = pq.read_table(part)
    assert table.num_rows > 0
    assert set(table.column("sample_name").to_pylist()) == {sample_name}
    rows = scenario.query("SELECT count(*) AS n FROM variants WHERE sample_name = ?", [sample_name])
    assert rows[0]["n"] == table.num_rows
    assert scenario.record(sample_id)["sample_name"] == sample_name


def test_catalog_lists_safe_ids_and_survives_the_sql_name(scenario):
    ids = {r["sample_id"] for r in scenario.query("SELECT DISTINCT sample_id FROM variants")}
    assert {GOOD, sample_id_for(DOTDOT_NAME), sample_id_for(SQL_NAME)} <= ids
    assert all(is_safe_sample_id(i) for i in ids)
    views = {r["view_name"] for r in scenario.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
    assert {"variants", "reference_blocks", "samples"} <= views


def test_every_file_stays_under_the_lake_home(scenario):
    base = scenario.home.parent
    assert sorted(p.name for p in base.iterdir()) == ["home", "inputs"]
    assert {p.name for p in scenario.home.iterdir()} <= {"lake", "scratch", "catalog.duckdb", "catalog.duckdb.wal"}
    root = scenario.root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            assert not path.is_symlink(), path
            assert root in path.resolve().parents, path
            relative = path.relative_to(root).as_posix()
            if not relative.startswith("_tags"):
                require_safe_key(relative)
    converted = sorted(r["sample_id"]
                       for r in scenario.query("SELECT sample_id FROM samples WHERE status = 'converted'"))
    for table in ("variants", "reference_blocks"):
        assert sorted(p.name for p in (root / table).iterdir()) == [f"sample_id={i}" for i in converted]
