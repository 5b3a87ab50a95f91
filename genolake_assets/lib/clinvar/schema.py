"""The unified ClinVar table: one Arrow schema for rows from ``variant_summary.txt`` and the ClinVar VCF.

Column names are snake_case so Glue/Athena (which lower-cases everything) and DuckDB agree. A field one
source does not carry is null in that source's rows; ``source_format`` says which source a row came from.
How each source fills each column is documented in ``lib/clinvar/summary.py`` and ``lib/clinvar/vcf.py``.

``assembly`` and ``chromosome`` are also the partition keys (``assembly=<A>/chromosome=<C>/``) and are stored
in the files as well, with the same partition-safe value: anything outside ``[A-Za-z0-9_.-]`` becomes
``_`` (``.`` and ``..`` become ``_`` and ``__``, never a path step) and an empty or missing value becomes
``na`` (ClinVar's own spelling for "no location"). The real
files only hold safe values (GRCh37, GRCh38, NCBI36, na; 1-22, X, Y, MT, na), so this never fires on them.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VARIANT_SUMMARY = "variant_summary"
VCF = "vcf"

_LIST_STRING = pa.list_(pa.string())

CLINVAR_SCHEMA = pa.schema([
    ("allele_id", pa.int64()),
    ("variation_id", pa.int64()),
    ("type", pa.string()),
    ("name", pa.string()),
    ("gene_ids", pa.list_(pa.int64())),
    ("gene_symbols", _LIST_STRING),
    ("hgnc_id", pa.string()),
    ("clinical_significance", pa.string()),
    ("clin_sig_simple", pa.int8()),
    ("last_evaluated", pa.date32()),
    ("rs_id", pa.int64()),
    ("dbvar_ids", _LIST_STRING),
    ("rcv_accessions", _LIST_STRING),
    ("phenotype_ids", _LIST_STRING),
    ("phenotype_list", _LIST_STRING),
    ("origin", _LIST_STRING),
    ("origin_simple", pa.string()),
    ("assembly", pa.string()),
    ("chromosome_accession", pa.string()),
    ("chromosome", pa.string()),
    ("start", pa.int64()),
    ("stop", pa.int64()),
    ("reference_allele", pa.string()),
    ("alternate_allele", pa.string()),
    ("cytogenetic", pa.string()),
    ("review_status", pa.string()),
    ("number_submitters", pa.int32()),
    ("guidelines", pa.string()),
    ("tested_in_gtr", pa.bool_()),
    ("other_ids", _LIST_STRING),
    ("submitter_categories", pa.int8()),
    ("position_vcf", pa.int64()),
    ("reference_allele_vcf", pa.string()),
    ("alternate_allele_vcf", pa.string()),
    ("molecular_consequences", _LIST_STRING),
    ("hgvs", _LIST_STRING),
    ("source_format", pa.string()),
    ("release", pa.string()),
])

CLINVAR_COLUMNS = {
    "allele_id": "ClinVar AlleleID (summary #AlleleID, VCF INFO/ALLELEID)",
    "variation_id": "ClinVar VariationID: the variation's page on ClinVar (VCF ID)",
    "type": "Variant type, e.g. single nucleotide variant, Deletion (VCF INFO/CLNVC)",
    "name": "ClinVar's preferred name of the variation (summary only)",
    "gene_ids": "NCBI Gene ids (summary GeneID, VCF INFO/GENEINFO)",
    "gene_symbols": "Gene symbols, aligned with gene_ids",
    "hgnc_id": "HGNC id of the gene (summary only)",
    "clinical_significance": "Aggregate clinical significance, e.g. 'Pathogenic, drug response' (VCF INFO/CLNSIG)",
    "clin_sig_simple": "1 at least one pathogenic/likely pathogenic submission, 0 none, -1 no data (summary only)",
    "last_evaluated": "Date the significance was last evaluated (summary only)",
    "rs_id": "dbSNP rs number, without 'rs' (VCF INFO/RS)",
    "dbvar_ids": "dbVar nsv/esv accessions",
    "rcv_accessions": "RCV accessions, one per condition (summary only)",
    "phenotype_ids": "Condition ids per condition, aligned with phenotype_list (VCF INFO/CLNDISDB)",
    "phenotype_list": "Condition names (VCF INFO/CLNDN)",
    "origin": "Allele origins, e.g. germline, somatic (VCF INFO/ORIGIN decoded)",
    "origin_simple": "Simplified origin: germline, somatic, … (summary only)",
    "assembly": "Reference assembly (GRCh37, GRCh38, NCBI36, na); partition key",
    "chromosome_accession": "RefSeq accession of the chromosome, e.g. NC_000013.11",
    "chromosome": "Chromosome without 'chr' (1-22, X, Y, MT, na); partition key",
    "start": "ClinVar's start position (summary only)",
    "stop": "ClinVar's stop position (summary only)",
    "reference_allele": "Reference allele in ClinVar's own normalisation (summary only)",
    "alternate_allele": "Alternate allele in ClinVar's own normalisation (summary only)",
    "cytogenetic": "Cytogenetic band(s) (summary only)",
    "review_status": "Review status, e.g. 'criteria provided, single submitter' (VCF INFO/CLNREVSTAT)",
    "number_submitters": "Number of submitters (summary only)",
    "guidelines": "Guidelines cited, e.g. ACMG2013 (summary only)",
    "tested_in_gtr": "Tested in the Genetic Testing Registry (summary only)",
    "other_ids": "Ids of the variation in other databases (VCF INFO/CLNVI)",
    "submitter_categories": "Submitter categories code (summary only)",
    "position_vcf": "1-based VCF position; joins with the variant table's pos",
    "reference_allele_vcf": "VCF-normalised REF; joins with ref",
    "alternate_allele_vcf": "VCF-normalised ALT; joins with alt",
    "molecular_consequences": "Sequence Ontology consequences, e.g. SO:0001583|missense_variant (VCF only)",
    "hgvs": "HGVS expressions (VCF INFO/CLNHGVS; VCF only)",
    "source_format": "Which ClinVar file the row came from: variant_summary or vcf",
    "release": "The ClinVar release the row belongs to",
}
"""The UI's one line per column (Dagster column schema)."""

# Nulls last. The sort is stable (ties keep file order), so the same input always gives the same files.
SORT_COLUMNS = ("position_vcf", "start")

# Rows that could not be typed: kept aside with the physical line they came from (1-based, header included).
REJECTED_SCHEMA = pa.schema([
    ("line_number", pa.int64()),
    ("reason", pa.string()),
    ("raw_line", pa.string()),
])

PARTITION_VALUE = re.compile(r"^[A-Za-z0-9_.-]+$")
_UNSAFE_PARTITION_CHARS = r"[^A-Za-z0-9_.-]"
MISSING_PARTITION_VALUE = "na"


def partition_safe(value: str | None) -> str:
    """The partition-key spelling of an assembly or chromosome name (see the module docstring)."""
    if not value:
        return MISSING_PARTITION_VALUE
    if set(value) == {"."}:
        return "_" * len(value)
    return re.sub(_UNSAFE_PARTITION_CHARS, "_", value)


def partition_safe_array(values: pa.Array) -> pa.Array:
    """Vectorised :func:`partition_safe`."""
    values = pc.replace_substring_regex(values, _UNSAFE_PARTITION_CHARS, "_")
    values = pc.if_else(pc.fill_null(pc.match_substring_regex(values, r"^\.+$"), False),
                        pc.replace_substring(values, ".", "_"), values)
    return pc.if_else(pc.fill_null(pc.equal(values, ""), True), MISSING_PARTITION_VALUE, values)


def partition_label(assembly: str, chromosome: str) -> str:
    """How a partition is named in reports: ``GRCh38/7``."""
    return f"{assembly}/{chromosome}"


def partition_path(assembly: str, chromosome: str) -> str:
    for value in (assembly, chromosome):
        if not PARTITION_VALUE.match(value) or value in (".", ".."):
            raise ValueError(f"{value!r} is not a partition-safe value")
    return f"assembly={assembly}/chromosome={chromosome}"


def clinvar_batch(columns: dict[str, pa.Array], num_rows: int) -> pa.RecordBatch:
    """A record batch in :data:`CLINVAR_SCHEMA`; columns not given are null."""
    unknown = set(columns) - set(CLINVAR_SCHEMA.names)
    if unknown:
        raise KeyError(f"not ClinVar table columns: {sorted(unknown)}")
    arrays = []
    for field in CLINVAR_SCHEMA:
        array = columns.get(field.name)
        if array is None:
            arrays.append(pa.nulls(num_rows, field.type))
        elif not isinstance(array, (pa.Array, pa.ChunkedArray)):  # a constant, e.g. the release
            arrays.append(pa.repeat(pa.scalar(array, field.type), num_rows))
        else:
            arrays.append(array.cast(field.type) if array.type != field.type else array)
    return pa.RecordBatch.from_arrays(arrays, schema=CLINVAR_SCHEMA)


def rejected_table(line_numbers: np.ndarray, reasons: list[str] | np.ndarray, raw_lines: pa.Array) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array(np.asarray(line_numbers, np.int64)), pa.array(list(reasons), pa.string()),
         raw_lines.cast(pa.string())],
        schema=REJECTED_SCHEMA,
    )
