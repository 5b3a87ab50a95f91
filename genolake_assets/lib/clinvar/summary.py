"""NCBI ``variant_summary.txt(.gz)`` → batches of the unified ClinVar table.

The file is the 34-column layout whose header starts ``#AlleleID``. Newer NCBI files append more
columns (the 2024 somatic/oncogenicity ones, ``SCVsForAggregate…``); they are accepted, not carried
(the unified table has no columns for them) and are reported as ignored.

How each column is read (checked against the 2021-01 release; "null" means SQL NULL):

======================  ====================  ============================================================
column                  source                rule
======================  ====================  ============================================================
allele_id               #AlleleID             integer, required
variation_id            VariationID           integer, required
type, name              Type, Name            as is
gene_ids                GeneID                ``-1`` → null; otherwise a list (split on ``;``) of integers
gene_symbols            GeneSymbol            split on ``;``; ``-`` → null. Free text such as ``covers 148
                                              genes, none of which …`` stays one element
hgnc_id                 HGNC_ID               ``-`` → null
clinical_significance   ClinicalSignificance  as is (``Pathogenic/Likely pathogenic, drug response``)
clin_sig_simple         ClinSigSimple         int8; ``-1`` ("no data") is kept, it is a value not a gap
last_evaluated          LastEvaluated         ``Jun 29, 2010`` → date; ``-`` → null
rs_id                   RS# (dbSNP)           ``-1`` → null
dbvar_ids               nsv/esv (dbVar)       split on ``;`` or ``,`` (accessions contain neither);
                                              ``-`` → null. The real file only has single values
rcv_accessions          RCVaccession          split on ``|``; ``-`` → null
phenotype_ids           PhenotypeIDS          split on ``|``; element *i* belongs to rcv_accessions[*i*]
                                              and phenotype_list[*i*] (the counts agree on every real
                                              row). Inside an element ``,`` separates the IDs of one
                                              condition and ``;`` separates conditions; both are kept
phenotype_list          PhenotypeList         split on ``|`` (``;`` inside an element kept, see above)
origin                  Origin                split on ``;``
origin_simple           OriginSimple          as is
assembly, chromosome    Assembly, Chromosome  partition-safe (see lib/clinvar/schema.py); ``na`` stays ``na``
chromosome_accession    ChromosomeAccession   ``na`` → null
start, stop             Start, Stop           ``-1`` ("no location") → null
reference_allele        ReferenceAllele       ``na`` → null
alternate_allele        AlternateAllele       ``na`` → null
cytogenetic             Cytogenetic           ``-`` → null; ``3p26;7p11.2`` kept as one string
review_status           ReviewStatus          as is
number_submitters       NumberSubmitters      int32
guidelines              Guidelines            ``-`` → null; ``ACMG2013,ACMG2016`` kept as one string
tested_in_gtr           TestedInGTR           ``Y``/``N`` → true/false
other_ids               OtherIDs              split on ``,``; ``-`` → null
submitter_categories    SubmitterCategories   int8
position_vcf            PositionVCF           ``-1`` → null
reference_allele_vcf    ReferenceAlleleVCF    ``na`` or ``-`` → null
alternate_allele_vcf    AlternateAlleleVCF    ``na`` or ``-`` → null
molecular_consequences  —                     null (VCF only)
hgvs                    —                     null (VCF only)
======================  ====================  ============================================================

An empty field is null everywhere. Any other value that does not fit its type (a non-integer id, a
date that does not exist, a ``TestedInGTR`` of ``maybe``) rejects the row, as does a line with the
wrong number of fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.clinvar.schema import VARIANT_SUMMARY, partition_safe_array
from genolake_assets.lib.clinvar.source import (ClinvarFormatError, ParsedBatch, RowProblems, head_lines,
                                                line_batches, map_list_elements, null_tokens, parse_bool, parse_date,
                                                parse_int, parsed_batch, split_fields, split_list)

SUMMARY_COLUMNS = (
    "#AlleleID", "Type", "Name", "GeneID", "GeneSymbol", "HGNC_ID", "ClinicalSignificance", "ClinSigSimple",
    "LastEvaluated", "RS# (dbSNP)", "nsv/esv (dbVar)", "RCVaccession", "PhenotypeIDS", "PhenotypeList", "Origin",
    "OriginSimple", "Assembly", "ChromosomeAccession", "Chromosome", "Start", "Stop", "ReferenceAllele",
    "AlternateAllele", "Cytogenetic", "ReviewStatus", "NumberSubmitters", "Guidelines", "TestedInGTR", "OtherIDs",
    "SubmitterCategories", "VariationID", "PositionVCF", "ReferenceAlleleVCF", "AlternateAlleleVCF",
)
# NCBI's archive names monthly releases variant_summary_2021-01.txt.gz.
_RELEASE_IN_NAME = re.compile(r"variant_summary[_.-](\d{4}-\d{2}(?:-\d{2})?)")


def read_summary_header(path: str | Path) -> list[str]:
    """The header's column names; raise unless it starts with the 34 columns this module reads."""
    lines = head_lines(path, 1)
    if not lines:
        raise ClinvarFormatError(str(path), "the file is empty", code="empty_file")
    columns = lines[0].rstrip("\r\n").split("\t")
    for index, expected in enumerate(SUMMARY_COLUMNS):
        found = columns[index] if index < len(columns) else None
        if found != expected:
            raise ClinvarFormatError(
                str(path), f"not the variant_summary layout this converter reads: header column {index + 1} is "
                f"{found!r}, expected {expected!r}", line=1, field=expected, code="invalid_header")
    return columns


def release_from_name(path: str | Path) -> str | None:
    """``variant_summary_2021-01.first86362rows.txt.gz`` → ``2021-01``; None when the name has no date.

    The file itself carries no release date (LastEvaluated is a submitter's date and lags the release).
    """
    match = _RELEASE_IN_NAME.search(Path(path).name)
    return match.group(1) if match else None


def summary_batches(path: str | Path, columns: list[str], release: str | None) -> Iterator[ParsedBatch]:
    """The file's rows, typed, a block at a time."""
    constants = {"source_format": VARIANT_SUMMARY, "release": release}
    for lines in line_batches(path, skip_lines=1):
        fields = split_fields(lines, len(columns))
        problems = RowProblems(len(fields.line_numbers))
        typed = _typed_columns(dict(zip(columns, fields.columns)), problems)
        yield parsed_batch(fields, lines, typed, problems, constants)


def _text(values: pa.Array, *tokens: str) -> pa.Array:
    return null_tokens(values, ("",) + tokens)


def _typed_columns(raw: dict[str, pa.Array], problems: RowProblems) -> dict[str, pa.Array]:
    def integers(elements: pa.Array, rows: np.ndarray) -> pa.Array:
        return parse_int(elements, problems, "GeneID", rows=rows)

    no_position = ("", "-1")
    return {
        "allele_id": parse_int(raw["#AlleleID"], problems, "AlleleID", required=True),
        "variation_id": parse_int(raw["VariationID"], problems, "VariationID", required=True),
        "type": _text(raw["Type"]),
        "name": _text(raw["Name"]),
        "gene_ids": map_list_elements(split_list(raw["GeneID"], ";", ("", "-1")), integers),
        "gene_symbols": split_list(raw["GeneSymbol"], ";", ("", "-")),
        "hgnc_id": _text(raw["HGNC_ID"], "-"),
        "clinical_significance": _text(raw["ClinicalSignificance"]),
        "clin_sig_simple": parse_int(raw["ClinSigSimple"], problems, "ClinSigSimple", int_type=pa.int8()),
        "last_evaluated": parse_date(raw["LastEvaluated"], problems, "LastEvaluated"),
        "rs_id": parse_int(raw["RS# (dbSNP)"], problems, "RS# (dbSNP)", tokens=no_position),
        "dbvar_ids": pc.split_pattern_regex(_text(raw["nsv/esv (dbVar)"], "-"), "[;,]"),
        "rcv_accessions": split_list(raw["RCVaccession"], "|", ("", "-")),
        "phenotype_ids": split_list(raw["PhenotypeIDS"], "|", ("", "-")),
        "phenotype_list": split_list(raw["PhenotypeList"], "|", ("", "-")),
        "origin": split_list(raw["Origin"], ";"),
        "origin_simple": _text(raw["OriginSimple"]),
        "assembly": partition_safe_array(raw["Assembly"]),
        "chromosome_accession": _text(raw["ChromosomeAccession"], "na"),
        "chromosome": partition_safe_array(raw["Chromosome"]),
        "start": parse_int(raw["Start"], problems, "Start", tokens=no_position),
        "stop": parse_int(raw["Stop"], problems, "Stop", tokens=no_position),
        "reference_allele": _text(raw["ReferenceAllele"], "na"),
        "alternate_allele": _text(raw["AlternateAllele"], "na"),
        "cytogenetic": _text(raw["Cytogenetic"], "-"),
        "review_status": _text(raw["ReviewStatus"]),
        "number_submitters": parse_int(raw["NumberSubmitters"], problems, "NumberSubmitters", int_type=pa.int32()),
        "guidelines": _text(raw["Guidelines"], "-"),
        "tested_in_gtr": parse_bool(_text(raw["TestedInGTR"]), problems, "TestedInGTR"),
        "other_ids": split_list(raw["OtherIDs"], ",", ("", "-")),
        "submitter_categories": parse_int(raw["SubmitterCategories"], problems, "SubmitterCategories", int_type=pa.int8()),
        "position_vcf": parse_int(raw["PositionVCF"], problems, "PositionVCF", tokens=no_position),
        "reference_allele_vcf": _text(raw["ReferenceAlleleVCF"], "na", "-"),
        "alternate_allele_vcf": _text(raw["AlternateAlleleVCF"], "na", "-"),
    }
