"""The BAM compression job: read a work order, compress to CRAM, verify, publish, report.

The same program is the AWS Batch container's entrypoint (``containers/bam-compress``) and the local
profile's subprocess, so what is tested locally is what runs on Batch. URIs in the work order are
``s3://bucket/key`` or local paths (``file://`` allowed).

Exit status: 0 verified and published; 2 verification mismatch; 3 bad input (truncated BAM,
missing or mismatched reference, bad work order); 1 anything unexpected. A result JSON is written
to ``result_uri`` in every case it can be, and the CRAM is written to ``output_uri`` only when verified.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pysam

from genolake_assets.lib.alignments.reference import index_paths
from genolake_assets.lib.alignments.compress import CompressionOutcome, CompressOptions, compress_and_verify
from genolake_assets.lib.errors import AlignmentFileError
from genolake_assets.lib.lake.leftovers import temp_file_prefix

WORK_ORDER_VERSION = 1
EXIT_VERIFIED, EXIT_UNEXPECTED, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2, 3
_REQUIRED = ("input_uri", "reference_uri", "output_uri", "result_uri")


@dataclass(frozen=True)
class WorkOrder:
    input_uri: str
    reference_uri: str
    output_uri: str
    result_uri: str
    options: CompressOptions
    raw: dict

    @classmethod
    def parse(cls, raw: dict, source: str) -> WorkOrder:
        if not isinstance(raw, dict):
            raise AlignmentFileError(source, "the work order is not a JSON object", code="bad_work_order")
        if raw.get("work_order_version") != WORK_ORDER_VERSION:
            raise AlignmentFileError(source, f"work_order_version must be {WORK_ORDER_VERSION}, "
                                     f"not {raw.get('work_order_version')!r}", code="bad_work_order")
        missing = [name for name in _REQUIRED if not isinstance(raw.get(name), str) or not raw[name]]
        if missing:
            raise AlignmentFileError(source, f"the work order lacks {', '.join(missing)}", code="bad_work_order")
        try:
            options = CompressOptions.from_dict(raw.get("options"))
        except (TypeError, ValueError) as error:
            raise AlignmentFileError(source, f"bad options: {error}", code="bad_work_order") from None
        return cls(*(raw[name] for name in _REQUIRED), options=options, raw=raw)


class Locations:
    """Reads and writes the work order's URIs: S3 through the lake's S3 store, local paths directly."""

    def __init__(self):
        self._stores = {}

    def _s3(self, uri: str):
        from genolake_assets.resources.lake.s3_store import S3ObjectStore

        parsed = urlparse(uri)
        if parsed.netloc not in self._stores:
            self._stores[parsed.netloc] = S3ObjectStore(
                parsed.netloc, "", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                sse_kms_key_id=os.environ.get("GENOLAKE_KMS_KEY_ID") or None)
        return self._stores[parsed.netloc], parsed.path.lstrip("/")

    @staticmethod
    def local(uri: str) -> Path | None:
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        return Path(uri) if parsed.scheme == "" else None

    def fetch(self, uri: str, dest: Path) -> Path:
        path = self.local(uri)
        if path is not None:
            if not path.is_file():
                raise FileNotFoundError(uri)
            return path  # read in place: no copy of a local BAM
        if urlparse(uri).scheme != "s3":
            raise AlignmentFileError(uri, "only s3:// URIs and local paths are supported", code="bad_work_order")
        store, key = self._s3(uri)
        if store.head(key) is None:
            raise FileNotFoundError(uri)
        return store.download(key, dest)

    def publish(self, src: Path, uri: str) -> None:
        path = self.local(uri)
        if path is None:
            store, key = self._s3(uri)
            store.upload(src, key)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f"{temp_file_prefix()}{path.name}")  # removed by the next run if killed
        shutil.copyfile(src, staged)
        os.replace(staged, path)

    def read_text(self, uri: str) -> str:
        path = self.local(uri)
        if path is not None:
            return path.read_text()
        store, key = self._s3(uri)
        return store.read_bytes(key).decode()


def _fetch_reference(locations: Locations, uri: str, scratch: Path) -> Path:
    fasta = locations.fetch(uri, scratch / "reference" / Path(urlparse(uri).path).name)
    for index in index_paths(Path(urlparse(uri).path)):
        suffix = index.name[len(Path(urlparse(uri).path).name):]
        try:
            found = locations.fetch(uri + suffix, Path(f"{fasta}{suffix}"))
        except FileNotFoundError:
            raise AlignmentFileError(uri, f"reference index {uri + suffix} is missing", code="reference_missing") from None
        if found != Path(f"{fasta}{suffix}"):
            # A local FASTA whose index sits beside it: nothing to copy.
            continue
    return fasta


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(order: WorkOrder, scratch: Path, locations: Locations, log=_log) -> CompressionOutcome:
    timings = {}
    started = time.perf_counter()
    try:
        bam = locations.fetch(order.input_uri, scratch / "input" / Path(urlparse(order.input_uri).path).name)
    except FileNotFoundError:
        raise AlignmentFileError(order.input_uri, "input BAM not found", code="unreadable_input") from None
    try:
        reference = _fetch_reference(locations, order.reference_uri, scratch)
    except FileNotFoundError:
        raise AlignmentFileError(order.reference_uri, "reference FASTA not found", code="reference_missing") from None
    timings["fetch_s"] = round(time.perf_counter() - started, 3)
    cram = scratch / "output" / Path(urlparse(order.output_uri).path).name
    cram.parent.mkdir(parents=True, exist_ok=True)
    log(f"compressing {order.input_uri} against {order.reference_uri} ({order.options.as_dict()})")
    outcome = compress_and_verify(bam, reference, cram, order.options)
    if outcome.input is not None:
        outcome.input["uri"] = order.input_uri
    if outcome.reference is not None:
        outcome.reference["uri"] = order.reference_uri
    if outcome.verified:
        publish_started = time.perf_counter()
        pysam.samtools.index(str(cram), catch_stdout=False)
        locations.publish(cram, order.output_uri)
        locations.publish(Path(f"{cram}.crai"), order.output_uri + ".crai")
        timings["publish_s"] = round(time.perf_counter() - publish_started, 3)
        outcome.output["uri"] = order.output_uri
        outcome.output["index_uri"] = order.output_uri + ".crai"
        log(f"verified {outcome.input['records']} records, ratio {outcome.ratio}x; published {order.output_uri}")
    outcome.timings = {**timings, **outcome.timings, "total_s": round(time.perf_counter() - started, 3)}
    return outcome


def _failed(error: Exception, code: str) -> CompressionOutcome:
    return CompressionOutcome(status="failed", error=str(error), error_code=code)


def _exit_code(outcome: CompressionOutcome) -> int:
    if outcome.verified:
        return EXIT_VERIFIED
    if outcome.error_code == "verification_failed":
        return EXIT_MISMATCH
    return EXIT_UNEXPECTED if outcome.error_code == "unexpected" else EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bam-compress", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--work-order", help="path or s3:// URI of the work order JSON")
    source.add_argument("--work-order-json", help="the work order itself, as JSON text")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 2 on a usage error: that code means "verification mismatch" here.
        return EXIT_VERIFIED if exit_.code in (0, None) else EXIT_BAD_INPUT
    # htslib must never try to fetch a reference from the EBI server: the work order names it.
    os.environ.setdefault("REF_PATH", "/nonexistent-genolake-ref-path")
    locations = Locations()
    origin = args.work_order or "--work-order-json"
    try:
        raw = json.loads(args.work_order_json if args.work_order_json else locations.read_text(args.work_order))
    except (OSError, ValueError) as error:
        print(f"bam-compress: cannot read the work order {origin}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        order = WorkOrder.parse(raw, origin)
    except AlignmentFileError as error:
        print(f"bam-compress: {error}", file=sys.stderr)
        result_uri = raw.get("result_uri") if isinstance(raw, dict) else None
        outcome = _failed(error, error.code)
        if isinstance(result_uri, str) and result_uri:
            _write_result(locations, result_uri, outcome, raw)
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory(prefix="bam-compress-") as scratch:
        os.environ.setdefault("REF_CACHE", str(Path(scratch) / "ref-cache" / "%2s/%2s/%s"))
        try:
            outcome = run(order, Path(scratch), locations)
        except AlignmentFileError as error:
            outcome = _failed(error, error.code)
        except Exception as error:  # noqa: BLE001 - reported in the result JSON, exit 1
            traceback.print_exc()
            outcome = _failed(error, "unexpected")
    _write_result(locations, order.result_uri, outcome, raw)
    if not outcome.verified:
        print(f"bam-compress: {outcome.error}", file=sys.stderr)
    _log(json.dumps({"status": outcome.status, "ratio": outcome.ratio, "error_code": outcome.error_code}))
    return _exit_code(outcome)


def _write_result(locations: Locations, uri: str, outcome: CompressionOutcome, raw: dict) -> None:
    document = {**outcome.as_dict(), "work_order": raw}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(document, handle, indent=2, sort_keys=True, default=str)
    try:
        locations.publish(Path(handle.name), uri)
    finally:
        os.unlink(handle.name)


if __name__ == "__main__":
    sys.exit(main())
