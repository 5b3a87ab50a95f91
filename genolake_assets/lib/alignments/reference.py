"""Reference FASTAs for CRAM: which sequences a reference holds, and whether a BAM fits it.

A CRAM stores reads as differences from the reference, so it is only decodable with the exact
reference it was encoded against. An @SQ line's ``M5`` is the md5 of the sequence (upper case, no
whitespace): when the BAM header names one, the reference must match it, base for base.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pysam

from genolake_assets.lib.errors import AlignmentFileError


@dataclass(frozen=True)
class ReferenceSequences:
    """The sequences of one reference FASTA: name → length, and name → md5 (computed on demand)."""

    path: Path
    lengths: dict[str, int]
    md5s: dict[str, str] = field(default_factory=dict)

    def md5_of(self, name: str) -> str:
        if name not in self.md5s:
            with pysam.FastaFile(str(self.path)) as fasta:
                self.md5s[name] = hashlib.md5(fasta.fetch(name).upper().encode()).hexdigest()  # noqa: S324 - SAM/CRAM M5 is the sequence MD5 by spec; not security
        return self.md5s[name]


def index_paths(fasta: Path) -> list[Path]:
    """The files htslib needs beside a FASTA: ``.fai``, plus ``.gzi`` when it is bgzip-compressed."""
    paths = [Path(f"{fasta}.fai")]
    if fasta.name.endswith((".gz", ".bgz")):
        paths.append(Path(f"{fasta}.gzi"))
    return paths


def read_reference(fasta: Path) -> ReferenceSequences:
    if not fasta.is_file():
        raise AlignmentFileError(str(fasta), "reference FASTA not found", code="reference_missing")
    missing = [p.name for p in index_paths(fasta) if not p.is_file()]
    if missing:
        raise AlignmentFileError(str(fasta), f"reference index missing: {', '.join(missing)} "
                                 "(create it with `samtools faidx`)", code="reference_missing")
    lengths = {}
    for line in Path(f"{fasta}.fai").read_text().splitlines():
        name, length, *_ = line.split("\t")
        lengths[name] = int(length)
    return ReferenceSequences(path=fasta, lengths=lengths)


def header_sequences(header: dict) -> list[dict]:
    return list(header.get("SQ", []))


def check_reference(bam_name: str, header: dict, reference: ReferenceSequences, *, check_md5: bool) -> None:
    """Raise unless the @SQ sequences of ``header`` that ``reference`` holds have the same lengths
    (and, with ``check_md5``, the md5s their ``M5`` names), and it holds at least one of them.

    The compression job leaves the md5 check to htslib, which does it while encoding anyway, rather
    than reading a 3 GB reference twice.
    """
    shared = 0
    for sq in header_sequences(header):
        name, length = sq["SN"], int(sq["LN"])
        if name not in reference.lengths:
            # Allowed: a header may list contigs no read maps to (decoy, alt). htslib fails the
            # encode, with a message we translate, if a read does need a sequence that is absent.
            continue
        shared += 1
        if reference.lengths[name] != length:
            raise AlignmentFileError(bam_name, f"sequence {name!r} is {length} bp in the BAM header but "
                                     f"{reference.lengths[name]} bp in {reference.path.name}", code="reference_mismatch")
        expected = sq.get("M5")
        if expected and check_md5 and reference.md5_of(name) != expected.lower():
            raise AlignmentFileError(bam_name, f"M5 disagreement for sequence {name!r}: the BAM header says {expected}, "
                                     f"{reference.path.name} has {reference.md5_of(name)}", code="reference_mismatch")
    if header_sequences(header) and not shared:
        raise AlignmentFileError(bam_name, f"reference {reference.path.name} has none of the BAM's @SQ sequences "
                                 f"({', '.join(sq['SN'] for sq in header_sequences(header)[:5])}, ...)",
                                 code="reference_mismatch")
