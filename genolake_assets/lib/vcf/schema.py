"""The Arrow schemas of the variant and reference-block tables, derived from a VCF header."""

from __future__ import annotations

import pyarrow as pa

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.lake.layout import REFERENCE_BLOCKS_TABLE, VARIANTS_TABLE
from genolake_assets.lib.lake.registry import SAMPLE_COLUMNS
from genolake_assets.lib.vcf.fields import arrow_type
from genolake_assets.lib.limits import input_limits
from genolake_assets.lib.vcf.header import VcfHeader

VARIANTS = VARIANTS_TABLE
REFERENCE_BLOCKS = REFERENCE_BLOCKS_TABLE
TABLES = (VARIANTS, REFERENCE_BLOCKS)
SORT_KEYS = ("contig", "pos")
# Fields split_multi_hts rewrites; their original values are kept in `<column>_unsplit`.
SPLIT_REWRITTEN_FORMAT = ("AD", "PL", "GQ", "PGT")

GENOTYPE = pa.list_(pa.int16())

LOCUS_FIELDS = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("sample_name", pa.string(), nullable=False),
    pa.field("contig", pa.string(), nullable=False),
    pa.field("pos", pa.int32(), nullable=False),
    pa.field("end", pa.int32()),
    pa.field("ref", pa.string(), nullable=False),
    pa.field("alt", pa.string()),
]
# Variants only: a reference block's id would be contig:pos:ref, derivable from its own columns,
# and as the only unique string per row it cost more Parquet bytes than all other columns together.
VARIANT_ID = pa.field("variant_id", pa.string(), nullable=False)
RECORD_FIELDS = [
    pa.field("rsid", pa.string()),
    pa.field("qual", pa.float64()),
    pa.field("filters", pa.list_(pa.string())),
    pa.field("alleles", pa.list_(pa.string()), nullable=False),
    pa.field("allele_index", pa.int16(), nullable=False),
]


def check_field_count(header: VcfHeader) -> None:
    """Refuse a header declaring more INFO and FORMAT fields than ``GENOLAKE_MAX_HEADER_FIELDS``.

    Each declared field is a column of every sample's tables, written whether or not a record uses it:
    100k declarations in a 267 KB file made the Parquet writers of 10 samples exhaust memory. Checked
    here, where the header becomes Arrow schemas (both engines build theirs with :func:`schemas`), before
    any column is allocated; the error names the first declaration beyond the limit."""
    limit = input_limits().max_header_fields
    declared = len(header.info) + len(header.format)
    if declared <= limit:
        return
    first_beyond = sorted([*header.info.values(), *header.format.values()], key=lambda f: f.line)[limit]
    raise VcfFormatError(header.path, f"the header declares {declared:,} INFO and FORMAT fields, more than the "
                         f"limit of {limit:,} (GENOLAKE_MAX_HEADER_FIELDS): each would be a column of every "
                         "sample's tables", line=first_beyond.line,
                         field=f"{first_beyond.section}/{first_beyond.id}", code="too_many_header_fields")


def _value_fields(header: VcfHeader) -> list[pa.Field]:
    check_field_count(header)
    fields = [pa.field("gt", GENOTYPE), pa.field("gt_phased", pa.bool_())]
    fields += [pa.field(f.column, arrow_type(f)) for f in header.info.values()]
    fields.append(pa.field("undeclared_info", pa.string()))
    fields += [pa.field(f.column, arrow_type(f)) for key, f in header.format.items() if key != "GT"]
    return fields


def unsplit_fields(header: VcfHeader) -> list[pa.Field]:
    fields = [pa.field("gt_unsplit", GENOTYPE)] if "GT" in header.format else []
    for key in SPLIT_REWRITTEN_FORMAT:
        fdef = header.format.get(key)
        if fdef is not None:
            fields.append(pa.field(fdef.column + "_unsplit", arrow_type(fdef)))
    return fields


def variants_schema(header: VcfHeader) -> pa.Schema:
    split = [pa.field("was_split", pa.bool_(), nullable=False)]
    core = LOCUS_FIELDS + [VARIANT_ID] + RECORD_FIELDS + split
    return pa.schema(core + _value_fields(header) + unsplit_fields(header))


def reference_blocks_schema(header: VcfHeader) -> pa.Schema:
    return pa.schema(LOCUS_FIELDS + RECORD_FIELDS + _value_fields(header))


def schemas(header: VcfHeader) -> dict[str, pa.Schema]:
    return {VARIANTS: variants_schema(header), REFERENCE_BLOCKS: reference_blocks_schema(header)}


VARIANT_COLUMNS = {  # docs/variant-table.md
    "sample_id": SAMPLE_COLUMNS["sample_id"],
    "sample_name": SAMPLE_COLUMNS["sample_name"],
    "contig": "CHROM",
    "pos": "1-based position (after min_rep for split rows)",
    "end": "Last position covered (reference blocks: INFO/END)",
    "ref": "Reference allele of this row",
    "alt": "The row's ALT allele (null for reference blocks)",
    "variant_id": "contig:pos:ref:alt",
    "rsid": "VCF ID, null for '.'",
    "qual": "QUAL, null for '.'",
    "filters": "FILTER split on ';' (PASS kept)",
    "alleles": "The record's original REF and ALT alleles",
    "allele_index": "Index of alt in the original ALTs (1-based; 0 for reference blocks)",
    "was_split": "The row comes from a multi-allelic record split with split_multi_hts semantics",
    "gt": "Genotype allele indices after downcoding (null element for '.')",
    "gt_phased": "The GT is phased ('|')",
    "undeclared_info": "INFO entries the header does not declare, verbatim",
    "gt_unsplit": "GT before splitting (split rows only)",
}
"""The UI's one line per column (Dagster column schema)."""
