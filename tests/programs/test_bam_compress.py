"""The compression job's program (the Batch container's ENTRYPOINT): work order in, verified CRAM + result JSON out.

Run for real: as a subprocess (``python -m genolake_assets.programs.bam_compress``) on local paths and on
moto S3, and in-process through ``main([...])`` where a test needs to damage the encoder's output.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pysam
import pytest

from genolake_assets.programs.bam_compress import EXIT_BAD_INPUT, EXIT_MISMATCH, EXIT_VERIFIED, main
from genolake_assets.lib.alignments.cram_codec import encode_cram as real_encode_cram
from tests.conftest import FAKE_AWS_ENVIRONMENT

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "bam"
REF = DATA / "ref"
CE, CE_REF = DATA / "ce1000.bam", REF / "ce.fa.gz"
NA12878, Q_REF = DATA / "NA12878.chr22.tiny.bam", REF / "q.fa.gz"
HTSNEXUS, HTSNEXUS_REF = DATA / "htsnexus_NA12878.chr11_5.0-5.1Mb.bam", REF / "htsnexus_test_NA12878.md_ref.fa.gz"
MODULE = "genolake_assets.programs.bam_compress"

RESULT_FIELDS = {"status", "error", "error_code", "input", "output", "reference", "ratio", "content_checksum",
                 "differences", "accepted_differences", "timings", "tool_versions", "options", "work_order"}
DEFAULT_OPTIONS = {"cram_version": "3.1", "profile": "normal", "threads": 1, "ignore_md5": False,
                   "accept_differences": ["header_reference_fields", "unmapped_read_cigar"], "strict": False}


@pytest.fixture(autouse=True)
def _own_reference_environment(monkeypatch):
    """main() sets REF_PATH/REF_CACHE with setdefault; undo that after each in-process run.

    (setenv first so that monkeypatch records the original state even when the variable is unset.)"""
    for name in ("REF_PATH", "REF_CACHE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def work_order(tmp_path: Path, bam: Path = CE, reference: Path = CE_REF, **options) -> dict:
    order = {"work_order_version": 1, "input_uri": str(bam), "reference_uri": str(reference),
             "output_uri": str(tmp_path / "published" / f"{bam.stem}.cram"),
             "result_uri": str(tmp_path / "results" / f"{bam.stem}.json")}
    if options:
        order["options"] = options
    return order


def run_program(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", MODULE, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def read_result(order: dict) -> dict:
    return json.loads(Path(order["result_uri"].removeprefix("file://")).read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_records(path: Path, reference: Path | None = None) -> int:
    mode = "rc" if path.suffix == ".cram" else "rb"
    with pysam.AlignmentFile(str(path), mode, check_sq=False,
                             reference_filename=str(reference) if reference else None) as handle:
        return sum(1 for _ in handle.fetch(until_eof=True))


def assert_nothing_published(order: dict) -> None:
    assert not Path(order["output_uri"]).exists()
    assert not Path(order["output_uri"] + ".crai").exists()
    published = Path(order["output_uri"]).parent
    assert not published.exists() or not any(published.iterdir())  # not even a staged .partial


def assert_failed_result(order: dict, code: str) -> dict:
    result = read_result(order)
    assert result["status"] == "failed"
    assert result["error_code"] == code, result["error"]
    assert result["error"]
    assert result["output"] is None and result["ratio"] is None and result["content_checksum"] is None
    assert result["work_order"] == order
    return result


# -- local paths ---------------------------------------------------------------------------


def test_subprocess_compresses_verifies_and_publishes(tmp_path):
    order = work_order(tmp_path)
    order["result_uri"] = (tmp_path / "results" / "ce1000.json").as_uri()  # file:// works too
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(order))

    completed = run_program("--work-order", str(order_file))

    assert completed.returncode == EXIT_VERIFIED, completed.stderr
    # The program logs to stderr only; its last line is a one-line summary.
    assert json.loads(completed.stderr.strip().splitlines()[-1]) == {
        "status": "verified", "ratio": pytest.approx(1.5, abs=0.2), "error_code": None}
    cram, crai = Path(order["output_uri"]), Path(order["output_uri"] + ".crai")
    assert cram.is_file() and crai.is_file()
    assert sorted(p.name for p in cram.parent.iterdir()) == ["ce1000.cram", "ce1000.cram.crai"]

    result = read_result(order)
    assert RESULT_FIELDS <= set(result)
    assert result["status"] == "verified" and result["error"] is None and result["error_code"] is None
    records = count_records(CE)
    assert {"size", "sha256", "md5", "records"} <= set(result["input"])
    assert result["input"]["records"] == records and result["input"]["sha256"] == sha256(CE)
    assert result["input"]["size"] == CE.stat().st_size
    assert result["output"]["uri"] == order["output_uri"]
    assert result["output"]["records"] == records == count_records(cram, CE_REF)
    assert result["output"]["sha256"] == sha256(cram) and result["output"]["size"] == cram.stat().st_size
    assert result["ratio"] == pytest.approx(CE.stat().st_size / cram.stat().st_size, rel=1e-3)
    assert result["ratio"] > 1
    assert len(result["content_checksum"]) == 64
    assert result["reference"]["md5"] == hashlib.md5(CE_REF.read_bytes()).hexdigest()
    assert set(result["reference"]["sequences"]) == {f"CHROMOSOME_{n}" for n in ("I", "II", "III", "IV", "V")}
    assert {"fetch_s", "compress_s", "verify_s", "publish_s", "total_s"} <= set(result["timings"])
    assert set(result["tool_versions"]) == {"samtools", "htslib", "pysam"}
    assert result["options"] == DEFAULT_OPTIONS
    assert result["differences"] == result["accepted_differences"] == {"header_reference_fields": 5}
    assert result["work_order"] == order


def test_the_published_index_serves_region_queries(tmp_path):
    order = work_order(tmp_path)
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_VERIFIED
    with pysam.AlignmentFile(str(CE), "rb", check_sq=False) as handle:
        on_chromosome_one = sum(1 for r in handle.fetch(until_eof=True) if r.reference_name == "CHROMOSOME_I")
    with pysam.AlignmentFile(order["output_uri"], "rc", reference_filename=str(CE_REF),
                             index_filename=order["output_uri"] + ".crai") as cram:
        assert cram.has_index()
        assert cram.count("CHROMOSOME_I") == on_chromosome_one > 0


def test_the_result_names_the_input_and_reference_uris(tmp_path):
    order = work_order(tmp_path)
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_VERIFIED
    result = read_result(order)
    assert result["input"]["uri"] == order["input_uri"]
    assert result["reference"]["uri"] == order["reference_uri"]


def test_in_process_with_options(tmp_path):
    order = work_order(tmp_path, NA12878, Q_REF, cram_version="3.0", profile="archive")
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_VERIFIED

    assert Path(order["output_uri"]).read_bytes()[:6] == b"CRAM\x03\x00"
    result = read_result(order)
    assert result["status"] == "verified"
    assert result["options"] == {**DEFAULT_OPTIONS, "cram_version": "3.0", "profile": "archive"}
    assert result["reference"]["sequences"] == {"q": "ee5a2decc990ba0220728d924ddd4dba"}  # the BAM header's M5
    assert result["output"]["records"] == count_records(NA12878) == 3333


def test_a_derived_reference_with_ignore_md5_reports_accepted_differences(tmp_path):
    order = work_order(tmp_path, HTSNEXUS, HTSNEXUS_REF, ignore_md5=True)
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_VERIFIED
    result = read_result(order)
    assert result["accepted_differences"]["unmapped_read_cigar"] == 103
    assert result["output"]["records"] == 12898


# -- verification mismatches: exit 2, nothing published ---------------------------------------------


def test_strict_verification_mismatch_exits_2(tmp_path):
    order = work_order(tmp_path, HTSNEXUS, HTSNEXUS_REF, ignore_md5=True, strict=True)
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_MISMATCH
    result = assert_failed_result(order, "verification_failed")
    assert "unmapped_read_cigar" in result["error"]
    assert_nothing_published(order)


@pytest.fixture
def damaging_encoder(monkeypatch):
    """Make the job's encoder corrupt its own output after writing it; returns the list of damaged files."""
    damaged: list[Path] = []

    def install(position=lambda size: [size // 3, size // 2, 2 * size // 3]):
        def encode_then_flip(bam, reference, out, options):
            real_encode_cram(bam, reference, out, options)
            data = bytearray(out.read_bytes())
            for at in position(len(data)):
                data[at] ^= 0xFF
            out.write_bytes(bytes(data))
            damaged.append(out)

        monkeypatch.setattr("genolake_assets.lib.alignments.compress.encode_cram", encode_then_flip)
        return damaged

    return install


def test_a_corrupted_cram_is_not_published_and_exits_2(tmp_path, damaging_encoder, capsys):
    damaged = damaging_encoder()
    order = work_order(tmp_path, NA12878, Q_REF)
    before = sha256(NA12878)

    assert main(["--work-order-json", json.dumps(order)]) == EXIT_MISMATCH

    assert len(damaged) == 1  # the real encoder ran and its output was damaged
    assert_nothing_published(order)
    result = assert_failed_result(order, "verification_failed")
    assert str(NA12878) in result["error"]
    assert result["input"]["sha256"] == sha256(NA12878) == before  # the original is untouched
    assert "verification_failed" in capsys.readouterr().err


def test_a_cram_with_a_damaged_header_is_a_mismatch_too(tmp_path, damaging_encoder):
    damaging_encoder(lambda size: [200])  # inside the SAM header block
    order = work_order(tmp_path)
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_MISMATCH
    assert_failed_result(order, "verification_failed")
    assert_nothing_published(order)


# -- bad input: exit 3 -------------------------------------------------------------------------------


def test_a_truncated_bam_exits_3_in_a_subprocess(tmp_path):
    data = HTSNEXUS.read_bytes()
    truncated = tmp_path / "truncated.bam"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    order = work_order(tmp_path, truncated, HTSNEXUS_REF, ignore_md5=True)

    completed = run_program("--work-order-json", json.dumps(order))

    assert completed.returncode == EXIT_BAD_INPUT
    assert "truncated" in completed.stderr and str(truncated) in completed.stderr
    result = assert_failed_result(order, "truncated_input")
    assert str(truncated) in result["error"]
    assert_nothing_published(order)


@pytest.mark.parametrize(("change", "code", "message"), [
    (lambda o: o.update(input_uri="/nonexistent/sample.bam"), "unreadable_input", "input BAM not found"),
    (lambda o: o.update(reference_uri="/nonexistent/ce.fa.gz"), "reference_missing", "reference FASTA not found"),
    (lambda o: o.update(input_uri=str(HTSNEXUS), reference_uri=str(HTSNEXUS_REF)), "reference_mismatch",
     "sequence '11'"),
    (lambda o: o.update(reference_uri=str(Q_REF)), "reference_mismatch", "none of the BAM's @SQ sequences"),
])
def test_bad_inputs_exit_3_with_a_result(change, code, message, tmp_path):
    order = work_order(tmp_path)
    change(order)
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_BAD_INPUT
    result = assert_failed_result(order, code)
    assert message in result["error"]
    assert_nothing_published(order)


def test_a_reference_without_its_fai_exits_3(tmp_path):
    reference = tmp_path / "ref" / "ce.fa.gz"
    reference.parent.mkdir()
    reference.write_bytes(CE_REF.read_bytes())
    Path(f"{reference}.gzi").write_bytes(Path(f"{CE_REF}.gzi").read_bytes())
    order = work_order(tmp_path, CE, reference)

    assert main(["--work-order-json", json.dumps(order)]) == EXIT_BAD_INPUT
    result = assert_failed_result(order, "reference_missing")
    assert f"{reference}.fai" in result["error"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda o: o.pop("output_uri"), "lacks output_uri"),
    (lambda o: o.update(input_uri=""), "lacks input_uri"),
    (lambda o: o.update(work_order_version=2), "work_order_version must be 1"),
    (lambda o: o.pop("work_order_version"), "work_order_version must be 1"),
    (lambda o: o.update(options={"level": 9}), "unknown compression options ['level']"),
    (lambda o: o.update(options={"accept_differences": ["everything"]}), "unknown difference classes ['everything']"),
    (lambda o: o.update(options={"cram_version": "4.0"}), "CRAM version must be one of"),
    (lambda o: o.update(options={"profile": "tiny"}), "CRAM profile must be one of"),
])
def test_bad_work_orders_exit_3_with_a_result(change, message, tmp_path):
    order = work_order(tmp_path)
    change(order)
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_BAD_INPUT
    result = assert_failed_result(order, "bad_work_order")
    assert message in result["error"]
    assert not (tmp_path / "published").exists()


def test_a_work_order_without_result_uri_exits_3_and_writes_nothing(tmp_path, capsys):
    order = work_order(tmp_path)
    del order["result_uri"]
    assert main(["--work-order-json", json.dumps(order)]) == EXIT_BAD_INPUT
    assert "lacks result_uri" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argument", ["--work-order-json", "--work-order"])
def test_an_unreadable_work_order_exits_3(argument, tmp_path):
    value = "{not json" if argument == "--work-order-json" else str(tmp_path / "missing.json")
    completed = run_program(argument, value)
    assert completed.returncode == EXIT_BAD_INPUT
    assert "cannot read the work order" in completed.stderr
    assert list(tmp_path.iterdir()) == []


# -- S3 (moto server) --------------------------------------------------------------------------


@pytest.fixture
def s3_env(moto_endpoint) -> dict:
    env = {**os.environ, **FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": moto_endpoint}
    env.pop("AWS_PROFILE", None)
    env.pop("GENOLAKE_KMS_KEY_ID", None)
    return env


def _upload(raw_s3, bucket: str, path: Path, key: str) -> str:
    raw_s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return f"s3://{bucket}/{key}"


def _s3_work_order(raw_s3, bucket: str, bam: Path, reference: Path, name: str = "ce1000") -> dict:
    reference_key = f"references/{sha256(reference)}/{reference.name}"
    for suffix in ("", ".fai", ".gzi"):
        _upload(raw_s3, bucket, Path(f"{reference}{suffix}"), reference_key + suffix)
    return {"work_order_version": 1,
            "input_uri": _upload(raw_s3, bucket, bam, f"raw/bam/{sha256(bam)[:2]}/{sha256(bam)}/{bam.name}"),
            "reference_uri": f"s3://{bucket}/{reference_key}",
            "output_uri": f"s3://{bucket}/alignments/cram/{name}/{name}.cram",
            "result_uri": f"s3://{bucket}/alignments/results/{name}.json"}


def test_s3_work_order_in_a_subprocess(raw_s3, bucket, s3_env, tmp_path):
    order = _s3_work_order(raw_s3, bucket, CE, CE_REF)
    raw_s3.put_object(Bucket=bucket, Key="alignments/work_orders/ce1000.json", Body=json.dumps(order).encode())

    completed = run_program("--work-order", f"s3://{bucket}/alignments/work_orders/ce1000.json", env=s3_env)

    assert completed.returncode == EXIT_VERIFIED, completed.stderr
    keys = {obj["Key"] for obj in raw_s3.list_objects_v2(Bucket=bucket, Prefix="alignments/")["Contents"]}
    assert {"alignments/cram/ce1000/ce1000.cram", "alignments/cram/ce1000/ce1000.cram.crai",
            "alignments/results/ce1000.json"} <= keys
    result = json.loads(raw_s3.get_object(Bucket=bucket, Key="alignments/results/ce1000.json")["Body"].read())
    assert result["status"] == "verified"
    assert result["output"]["uri"] == order["output_uri"]
    assert result["work_order"] == order

    cram = tmp_path / "downloaded.cram"
    cram.write_bytes(raw_s3.get_object(Bucket=bucket, Key="alignments/cram/ce1000/ce1000.cram")["Body"].read())
    assert sha256(cram) == result["output"]["sha256"]
    assert count_records(cram, CE_REF) == count_records(CE) == result["output"]["records"]
    head = raw_s3.head_object(Bucket=bucket, Key="alignments/cram/ce1000/ce1000.cram")
    assert head["ServerSideEncryption"] == "AES256"


def test_s3_truncated_bam_writes_a_failed_result_and_no_cram(raw_s3, bucket, s3_env, tmp_path):
    truncated = tmp_path / "ce1000.bam"
    truncated.write_bytes(CE.read_bytes()[:-28])  # only the EOF block missing
    order = _s3_work_order(raw_s3, bucket, truncated, CE_REF)

    completed = run_program("--work-order-json", json.dumps(order), env=s3_env)

    assert completed.returncode == EXIT_BAD_INPUT
    result = json.loads(raw_s3.get_object(Bucket=bucket, Key="alignments/results/ce1000.json")["Body"].read())
    assert result["status"] == "failed" and result["error_code"] == "truncated_input"
    assert result["output"] is None
    listed = raw_s3.list_objects_v2(Bucket=bucket, Prefix="alignments/cram/")
    assert listed["KeyCount"] == 0


def test_s3_reference_without_index_exits_3(raw_s3, bucket, s3_env):
    order = _s3_work_order(raw_s3, bucket, CE, CE_REF)
    raw_s3.delete_object(Bucket=bucket, Key=order["reference_uri"].split("/", 3)[3] + ".fai")

    completed = run_program("--work-order-json", json.dumps(order), env=s3_env)

    assert completed.returncode == EXIT_BAD_INPUT
    result = json.loads(raw_s3.get_object(Bucket=bucket, Key="alignments/results/ce1000.json")["Body"].read())
    assert result["error_code"] == "reference_missing"
    assert order["reference_uri"] + ".fai" in result["error"]
