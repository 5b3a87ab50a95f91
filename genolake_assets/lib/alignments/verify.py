"""Round-trip verification: decode the CRAM and compare every record with the original BAM.

Records are compared in order as SAM text (all eleven fields and every tag's value), with one
normalisation the SAM spec allows: tag order is not significant, so tags are compared sorted
(CRAM moves MD/NM). Integer tags are compared by value, not storage width (SAM has one ``i`` type).

What CRAM cannot keep is classified, never ignored silently:
- ``unmapped_read_cigar``: a CIGAR on a read flagged unmapped (0x4) is dropped by every CRAM
  encoder; the SAM spec says it carries no meaning there. Accepted by default and counted.
- ``header_reference_fields``: CRAM writes the reference's ``UR`` and ``M5`` into @SQ lines, which
  is how a CRAM names the reference it needs. Accepted by default; the original values are reported.
Anything else (a base, a quality, a flag, a tag value, a record count) fails the verification.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pysam

from genolake_assets.lib.alignments.cram_codec import DECODE_OPTIONS, htslib_messages
from genolake_assets.lib.alignments.cram_integrity import crc_problems

DEFAULT_ACCEPTED = frozenset({"unmapped_read_cigar", "header_reference_fields"})
KNOWN_CLASSES = frozenset({"record_count", "read_name", "flag", "position", "mapping_quality", "cigar",
                           "unmapped_read_cigar", "mate", "sequence", "qualities", "tags", "header",
                           "header_reference_fields", "decode_error", "crc_mismatch"})
_FIELD_CLASSES = ("read_name", "flag", "position", "position", "mapping_quality", "cigar", "mate", "mate", "mate",
                  "sequence", "qualities")
_HEADER_REFERENCE_FIELDS = ("UR", "M5")
_EXAMPLES = 5
_UNMAPPED = 0x4


@dataclass
class Verification:
    records_original: int = 0
    records_compressed: int = 0
    checksum_original: str = ""
    checksum_compressed: str = ""
    differences: dict[str, int] = field(default_factory=dict)
    """Every difference found, accepted or not, by class."""
    accepted: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    original_header_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    """For each @SQ whose UR/M5 the CRAM rewrote: the original values."""
    seconds: float = 0.0

    @property
    def rejected(self) -> dict[str, int]:
        return {name: count for name, count in self.differences.items() if name not in self.accepted}

    @property
    def ok(self) -> bool:
        return not self.rejected and self.checksum_original == self.checksum_compressed

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "rejected": self.rejected}


def _canonical_fields(record: pysam.AlignedSegment) -> list[str]:
    fields = record.to_string().split("\t")
    return fields[:11] + sorted(fields[11:])


def _classify(original: list[str], compressed: list[str], flag: int) -> set[str]:
    found = set()
    for index, name in enumerate(_FIELD_CLASSES):
        if original[index] != compressed[index]:
            if name == "cigar" and flag & _UNMAPPED and compressed[index] == "*":
                name = "unmapped_read_cigar"
            found.add(name)
    if original[11:] != compressed[11:]:
        found.add("tags")
    return found


def _hashed(fields: list[str], accepted: frozenset[str]) -> bytes:
    if "unmapped_read_cigar" in accepted and int(fields[1]) & _UNMAPPED:
        fields = [*fields[:5], "*", *fields[6:]]
    return ("\t".join(fields) + "\n").encode()


def _compare_headers(original: dict, compressed: dict, result: Verification) -> None:
    original_sq = {sq["SN"]: sq for sq in original.get("SQ", [])}
    compressed_sq = {sq["SN"]: sq for sq in compressed.get("SQ", [])}
    stripped = lambda sq: {k: v for k, v in sq.items() if k not in _HEADER_REFERENCE_FIELDS}  # noqa: E731
    if list(original_sq) != list(compressed_sq) or any(stripped(original_sq[n]) != stripped(compressed_sq[n])
                                                        for n in original_sq):
        result.differences["header"] = result.differences.get("header", 0) + 1
        result.examples.append("header: @SQ lines differ beyond UR/M5")
    rewritten = {name: {k: sq.get(k, "") for k in _HEADER_REFERENCE_FIELDS}
                 for name, sq in original_sq.items()
                 if name in compressed_sq and any(sq.get(k) != compressed_sq[name].get(k) for k in _HEADER_REFERENCE_FIELDS)}
    if rewritten:
        result.differences["header_reference_fields"] = len(rewritten)
        result.original_header_fields = rewritten
    other = {k: v for k, v in original.items() if k != "SQ"}
    if other != {k: v for k, v in compressed.items() if k != "SQ"}:
        result.differences["header"] = result.differences.get("header", 0) + 1
        result.examples.append("header: @HD/@RG/@PG/@CO lines differ")


def verify_roundtrip(original: Path, compressed: Path, reference: Path,
                     accept: frozenset[str] = DEFAULT_ACCEPTED, threads: int = 1) -> Verification:
    """Decode ``compressed`` against ``reference`` and compare it with ``original``, record by record."""
    unknown = set(accept) - KNOWN_CLASSES
    if unknown:
        raise ValueError(f"unknown difference classes {sorted(unknown)}; known: {sorted(KNOWN_CLASSES)}")
    started = time.perf_counter()
    result = Verification()
    counts: Counter[str] = Counter()
    bad_crcs, crc_notes = crc_problems(compressed)
    if bad_crcs:
        counts["crc_mismatch"] = bad_crcs
        result.examples.extend(f"crc_mismatch: {note}" for note in crc_notes[:_EXAMPLES])
    digest_original, digest_compressed = hashlib.sha256(), hashlib.sha256()
    with htslib_messages(), pysam.AlignmentFile(str(original), "rb", check_sq=False, threads=threads) as left:
        originals = left.fetch(until_eof=True)
        try:
            with pysam.AlignmentFile(str(compressed), "rc", check_sq=False, reference_filename=str(reference),
                                     format_options=[o.encode() for o in DECODE_OPTIONS], threads=threads) as right:
                _compare_headers(left.header.to_dict(), right.header.to_dict(), result)
                counts.update(result.differences)
                right_records = right.fetch(until_eof=True)
                for record in originals:
                    result.records_original += 1
                    original_fields = _canonical_fields(record)
                    digest_original.update(_hashed(original_fields, accept))
                    other = next(right_records, None)
                    if other is None:
                        continue
                    result.records_compressed += 1
                    compressed_fields = _canonical_fields(other)
                    digest_compressed.update(_hashed(compressed_fields, accept))
                    if original_fields != compressed_fields:
                        for name in _classify(original_fields, compressed_fields, record.flag):
                            counts[name] += 1
                            if len(result.examples) < _EXAMPLES:
                                result.examples.append(f"{name}: read {record.query_name} "
                                                       f"(record {result.records_original})")
                for other in right_records:
                    result.records_compressed += 1
                    digest_compressed.update(_hashed(_canonical_fields(other), accept))
        except (OSError, ValueError) as error:
            counts["decode_error"] += 1
            result.examples.append(f"decode_error: {error}")
            for record in originals:  # the original's count and checksum stay true to the original
                result.records_original += 1
                digest_original.update(_hashed(_canonical_fields(record), accept))
    if result.records_original != result.records_compressed:
        counts["record_count"] += 1
        result.examples.append(f"record_count: {result.records_original} in the original, "
                               f"{result.records_compressed} decoded from the CRAM")
    result.differences = dict(sorted(counts.items()))
    result.accepted = {name: count for name, count in result.differences.items() if name in accept}
    result.checksum_original = digest_original.hexdigest()
    result.checksum_compressed = digest_compressed.hexdigest()
    result.seconds = round(time.perf_counter() - started, 3)
    return result
