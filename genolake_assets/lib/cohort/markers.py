"""A marker (the locus a lookup asks about) and the statuses a sample can have at it.

The status rules (what ``variant``, ``other_allele``, ``hom_ref`` and ``no_call`` mean) are in
``lib/cohort/lookup.py``'s module docstring; ``lib/cohort/result.py`` decides them column-wise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

VARIANT = "variant"
OTHER_ALLELE = "other_allele"
HOM_REF = "hom_ref"
NO_CALL = "no_call"
REFERENCE_BLOCK_KIND = "reference_block"

RESULT_SCHEMA = pa.schema([
    pa.field("marker", pa.string()),
    pa.field("contig", pa.string()),
    pa.field("pos", pa.int32()),
    pa.field("sample_id", pa.string()),
    pa.field("status", pa.string()),
    pa.field("ref", pa.string()),
    pa.field("alt", pa.string()),
    pa.field("genotype", pa.string()),
    pa.field("gt", pa.list_(pa.int16())),
    pa.field("gq", pa.int32()),
    pa.field("dp", pa.int32()),
])


# The contig as the VCF specification allows it, except ':' (which separates the marker's fields).
_MARKER = re.compile(r"(?P<contig>[0-9A-Za-z!#$%&+./;?@^_|~-][0-9A-Za-z!#$%&*+./;=?@^_|~-]*):(?P<pos>[0-9]+)"
                     r"(?::(?P<ref>[A-Za-z*]+):(?P<alt>[A-Za-z*]+))?\Z")


@dataclass(frozen=True)
class Marker:
    contig: str
    pos: int
    ref: str | None = None
    alt: str | None = None

    def __str__(self) -> str:
        if self.ref is None and self.alt is None:
            return f"{self.contig}:{self.pos}"
        return f"{self.contig}:{self.pos}:{self.ref}:{self.alt}"


def parse_marker(text: str) -> Marker:
    """``chr22:19951271`` or ``chr22:19951271:A:G`` (alleles are upper-cased)."""
    match = _MARKER.match(text.strip()) if isinstance(text, str) else None
    if match is None or int(match.group("pos")) < 1:
        raise ValueError(f"marker {text!r} is not CONTIG:POS or CONTIG:POS:REF:ALT (e.g. chr22:19951271:A:G, "
                         "POS 1-based)")
    ref, alt = match.group("ref"), match.group("alt")
    return Marker(match.group("contig"), int(match.group("pos")),
                  ref.upper() if ref else None, alt.upper() if alt else None)
