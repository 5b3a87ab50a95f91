"""Compress one BAM to CRAM and prove it lossless: the work the compression job does on local files.

Order matters for safety: the input is checked complete, the reference checked to fit, the CRAM
written to a scratch path, decoded and compared with every record of the original, and only then
reported ``verified``. Publishing the CRAM and tagging the original are the caller's next steps,
and they happen only for a ``verified`` result.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pysam

from genolake_assets.lib.alignments.header import read_bam_header
from genolake_assets.lib.alignments.reference import check_reference, read_reference
from genolake_assets.lib.alignments.verify import DEFAULT_ACCEPTED, KNOWN_CLASSES, verify_roundtrip
from genolake_assets.lib.alignments.cram_codec import CramOptions, encode_cram, htslib_messages, require_complete_bam, tool_versions
from genolake_assets.lib.errors import AlignmentFileError


@dataclass(frozen=True)
class CompressOptions:
    cram_version: str = "3.1"
    profile: str = "normal"
    threads: int = 1
    ignore_md5: bool = False
    accept_differences: tuple[str, ...] = tuple(sorted(DEFAULT_ACCEPTED))
    strict: bool = False
    """Accept no difference at all: not even an unmapped read's CIGAR or the @SQ UR/M5 rewrite."""

    @classmethod
    def from_dict(cls, raw: dict | None) -> CompressOptions:
        raw = dict(raw or {})
        unknown = set(raw) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown compression options {sorted(unknown)}")
        if "accept_differences" in raw:
            classes = tuple(sorted(raw["accept_differences"]))
            bad = set(classes) - KNOWN_CLASSES
            if bad:
                raise ValueError(f"unknown difference classes {sorted(bad)} (known: {sorted(KNOWN_CLASSES)})")
            raw["accept_differences"] = classes
        options = cls(**raw)
        options.cram()  # validates version, profile and threads
        return options

    def cram(self) -> CramOptions:
        return CramOptions(version=self.cram_version, profile=self.profile, threads=self.threads,
                           ignore_md5=self.ignore_md5)

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset() if self.strict else frozenset(self.accept_differences)

    def as_dict(self) -> dict:
        return {**asdict(self), "accept_differences": list(self.accept_differences)}


@dataclass
class FileDigest:
    size: int
    sha256: str
    md5: str
    records: int | None = None

    @classmethod
    def of(cls, path: Path, records: int | None = None) -> FileDigest:
        sha256, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - MD5 for tools that expect it; SHA-256 is the trusted digest
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                sha256.update(block)
                md5.update(block)
        return cls(size=path.stat().st_size, sha256=sha256.hexdigest(), md5=md5.hexdigest(), records=records)


@dataclass
class CompressionOutcome:
    status: str = "failed"
    error: str | None = None
    error_code: str | None = None
    input: dict | None = None
    output: dict | None = None
    reference: dict | None = None
    ratio: float | None = None
    content_checksum: str | None = None
    differences: dict = field(default_factory=dict)
    accepted_differences: dict = field(default_factory=dict)
    verification: dict | None = None
    timings: dict = field(default_factory=dict)
    tool_versions: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def as_dict(self) -> dict:
        return asdict(self)


def _read_header(bam: Path) -> dict:
    """The header, read by our own parser: it insists on the ``BAM\\1`` magic, where htslib would happily
    read a bgzipped FASTQ or SAM named ``.bam`` as reads, and it would then "verify"."""
    with open(bam, "rb") as stream:
        return read_bam_header(stream, str(bam))


def _cram_sequence_md5s(cram: Path, reference: Path) -> dict[str, str]:
    """The per-sequence md5s htslib wrote into the CRAM's @SQ lines while encoding."""
    with htslib_messages(), pysam.AlignmentFile(str(cram), "rc", check_sq=False,
                                                reference_filename=str(reference)) as handle:
        return {sq["SN"]: sq.get("M5", "") for sq in handle.header.to_dict().get("SQ", [])}


def compress_and_verify(bam: Path, reference: Path, out: Path, options: CompressOptions) -> CompressionOutcome:
    """Write ``out`` (CRAM) from ``bam`` and verify it; the outcome says ``verified`` or why not."""
    outcome = CompressionOutcome(options=options.as_dict(), tool_versions=tool_versions())
    started = time.perf_counter()
    try:
        require_complete_bam(bam)
        header = _read_header(bam)
        sequences = read_reference(reference)
        check_reference(str(bam), header, sequences, check_md5=False)
        outcome.input = asdict(FileDigest.of(bam))
        encode_started = time.perf_counter()
        encode_cram(bam, reference, out, options.cram())
        outcome.timings["compress_s"] = round(time.perf_counter() - encode_started, 3)
        verification = verify_roundtrip(bam, out, reference, accept=options.accepted, threads=options.threads)
    except AlignmentFileError as error:
        outcome.error, outcome.error_code = str(error), error.code
        outcome.timings["total_s"] = round(time.perf_counter() - started, 3)
        return outcome
    outcome.timings["verify_s"] = verification.seconds
    outcome.verification = verification.as_dict()
    outcome.differences, outcome.accepted_differences = verification.differences, verification.accepted
    outcome.input["records"] = verification.records_original
    outcome.input["original_header_reference_fields"] = verification.original_header_fields
    reference_digest = FileDigest.of(reference)
    outcome.reference = {"md5": reference_digest.md5, "sha256": reference_digest.sha256, "size": reference_digest.size,
                         "sequences": _cram_sequence_md5s(out, reference) if verification.ok else {}}
    if verification.ok:
        outcome.status = "verified"
        outcome.content_checksum = verification.checksum_original
        outcome.output = asdict(FileDigest.of(out, records=verification.records_compressed))
        outcome.ratio = round(outcome.input["size"] / outcome.output["size"], 4)
    else:
        outcome.error_code = "verification_failed"
        outcome.error = (f"{bam}: the CRAM does not decode to the original: {verification.rejected} "
                         f"(examples: {'; '.join(verification.examples[:3])})")
    outcome.timings["total_s"] = round(time.perf_counter() - started, 3)
    return outcome
