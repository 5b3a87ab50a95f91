"""Input limits: how far genolake reads a hostile or broken file before refusing it with file, line and field.

Every limit is documented in docs/security.md and can be changed by the operator through the environment
(``GENOLAKE_MAX_*``, read when first needed); a file beyond a limit is refused and quarantined, never read
into memory whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache

MIB = 1 << 20


@dataclass(frozen=True)
class InputLimits:
    max_line_bytes: int = 64 * MIB
    """``GENOLAKE_MAX_LINE_BYTES``: one VCF line (header or record), read in bounded pieces."""
    max_header_bytes: int = 64 * MIB
    """``GENOLAKE_MAX_HEADER_BYTES``: a VCF's whole header, every line up to and with ``#CHROM`` (real headers
    are kilobytes to a few megabytes); more is not a VCF."""
    max_header_fields: int = 10_000
    """``GENOLAKE_MAX_HEADER_FIELDS``: ``##INFO`` plus ``##FORMAT`` declarations of one VCF; each is a column
    of every sample's tables (real VCFs declare tens to hundreds)."""
    max_allele_bytes: int = 1 * MIB
    """``GENOLAKE_MAX_ALLELE_BYTES``: one REF or ALT allele of a VCF record (the longest spelled-out
    structural-variant alleles are ~100 kB)."""
    max_bam_header_bytes: int = 256 * MIB
    """``GENOLAKE_MAX_BAM_HEADER_BYTES``: a BAM header, its text and its binary reference list together."""
    max_bam_references: int = 1_000_000
    """``GENOLAKE_MAX_BAM_REFERENCES``: reference sequences (``@SQ`` lines, ``n_ref``) of one BAM."""
    max_clinvar_partitions: int = 1_000
    """``GENOLAKE_MAX_CLINVAR_PARTITIONS``: distinct assembly × chromosome partitions of one ClinVar file (a
    real release has about a hundred)."""
    duckdb_memory_limit_mib: int = 2048
    """``GENOLAKE_DUCKDB_MEMORY_LIMIT_MIB``: DuckDB's memory while re-sorting a converted table that arrived
    out of order; beyond it DuckDB spills to a temporary folder beside the output."""

    @classmethod
    def from_env(cls, environ: dict | None = None) -> InputLimits:
        environ = os.environ if environ is None else environ
        values = {}
        for item in fields(cls):
            name = f"GENOLAKE_{item.name.upper()}"
            text = environ.get(name, "").strip()
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {text!r}")
            values[item.name] = int(text)
        return cls(**values)


@lru_cache(maxsize=1)
def input_limits() -> InputLimits:
    """The operator's limits (environment), read once per process."""
    return InputLimits.from_env()
