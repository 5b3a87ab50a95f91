"""ClinVar VCF (sites-only, ``##source=ClinVar``) → batches of the unified ClinVar table.

The VCF writes spaces as ``_`` and percent-encodes ``=``/``;``/``,`` inside values. Values are normalised
to the spelling ``variant_summary`` uses, so one query works on rows from both sources:

=======================  ================  =============================================================
column                   source            rule
=======================  ================  =============================================================
allele_id                INFO/ALLELEID     integer, required
variation_id             ID                integer, required
type                     INFO/CLNVC        ``_`` → space (``single nucleotide variant``)
gene_ids, gene_symbols   INFO/GENEINFO     ``HPDL:84842|LOC129930440:129930440`` → [84842, 129930440],
                                           ["HPDL", "LOC129930440"]
clinical_significance    INFO/CLNSIG       ``_`` → space and ``|`` → ``, ``: ``Pathogenic/Likely_pathogenic|
                                           drug_response`` → ``Pathogenic/Likely pathogenic, drug response``,
                                           as variant_summary joins them. Vocabulary is not translated:
                                           2026 files say ``Conflicting classifications of pathogenicity``
                                           where 2021 summaries said ``… interpretations …``
review_status            INFO/CLNREVSTAT   same rule (``criteria provided, single submitter``)
rs_id                    INFO/RS           integer (several RS values reject the row)
dbvar_ids                INFO/DBVARID      split on ``,``
phenotype_list           INFO/CLNDN        split on ``|``, ``_`` → space; an element ``.`` → null
phenotype_ids            INFO/CLNDISDB     split on ``|`` (aligned with CLNDN); an element ``.`` → null;
                                           ``_`` → space only in database names
                                           (``Human_Phenotype_Ontology:HP:0001258`` →
                                           ``Human Phenotype Ontology:HP:0001258``, ``EFO:EFO_0000407`` kept)
other_ids                INFO/CLNVI        split on ``|``, database names as for phenotype_ids
origin                   INFO/ORIGIN       the bit mask decoded with the header's table (1 germline,
                                           2 somatic, 4 inherited, … 0 unknown), in bit order, spelled as
                                           variant_summary does (``de-novo`` → ``de novo``); bits the table
                                           does not name are kept as their number
molecular_consequences   INFO/MC           split on ``,``; entries kept whole (``SO:0001583|missense_variant``)
hgvs                     INFO/CLNHGVS      split on ``,``
assembly                 ##reference       partition-safe (``GRCh38``); ``na`` if absent
chromosome               CHROM             without a ``chr`` prefix, partition-safe
chromosome_accession     INFO/CLNHGVS      the accession before ``:g.`` (``NC_000013.11``)
position_vcf             POS               integer, required
reference_allele_vcf     REF               as is
alternate_allele_vcf     ALT               ``.`` → null
=======================  ================  =============================================================

Not in the VCF, so null: name, hgnc_id, clin_sig_simple, last_evaluated, rcv_accessions, origin_simple,
start, stop (ClinVar's Start/Stop come from its own HGVS normalisation; deriving them from CLNHGVS
disagreed with variant_summary on a quarter of deletions, so none is invented), reference_allele,
alternate_allele, cytogenetic, number_submitters, guidelines, tested_in_gtr, submitter_categories.
INFO keys outside this table (AF_*, CLNSIGCONF, CLNSIGSCV, CLNVCSO, ONC*, SCI*, *INCL) are not carried.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.clinvar.schema import VCF, partition_safe, partition_safe_array
from genolake_assets.lib.clinvar.source import (ClinvarFormatError, ParsedBatch, RowProblems, file_errors,
                                                line_batches, list_elements, map_distinct, map_list_elements,
                                                null_tokens, parse_int, parsed_batch, percent_decode,
                                                split_fields, split_list, text_lines, to_mask)
from genolake_assets.lib.vcf.header import parse_header

INFO_KEYS = ("ALLELEID", "CLNSIG", "CLNDN", "CLNDISDB", "CLNREVSTAT", "CLNVC", "GENEINFO", "MC", "ORIGIN", "RS",
             "DBVARID", "CLNHGVS", "CLNVI")
# The table in ClinVar's ##INFO=<ID=ORIGIN,…> description; used when a header lacks it.
ORIGIN_BITS = {0: "unknown", 1: "germline", 2: "somatic", 4: "inherited", 8: "paternal", 16: "maternal",
               32: "de-novo", 64: "biparental", 128: "uniparental", 256: "not-tested", 512: "tested-inconclusive",
               1073741824: "other"}
# Where the VCF header's spelling differs from the Origin column of variant_summary.
SUMMARY_ORIGIN_SPELLING = {"de-novo": "de novo"}
_ORIGIN_TABLE_ENTRY = re.compile(r"(\d+) - ([^;\"]+)")
_FILE_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
_GENE = r"^(?P<symbol>[^:]+):(?P<id>[0-9]{1,18})$"
_ACCESSION = r"^(?P<accession>[A-Z]{2}_[0-9]+\.[0-9]+):"
# One underscore of a database name (before the first ':') per pass; names have a handful.
_DB_NAME_UNDERSCORE = r"^([^:_]*)_([^:]*:)"


@dataclass(frozen=True)
class ClinvarVcfHeader:
    lines: int
    assembly: str
    file_date: str | None
    origin_bits: dict[int, str]


def read_vcf_header(path: str | Path) -> ClinvarVcfHeader:
    """Validate the header of a ClinVar VCF and pick out what the rows need."""
    with file_errors(path):
        header = parse_header(text_lines(path), str(path))
    meta = {line[2:].split("=", 1)[0]: line.split("=", 1)[1] for line in header.meta if "=" in line}
    if meta.get("source") != "ClinVar" and "ALLELEID" not in header.info:
        raise ClinvarFormatError(str(path), "a VCF, but not a ClinVar VCF: no ##source=ClinVar and no ALLELEID INFO "
                                 "field", code="not_clinvar")
    if header.samples:
        raise ClinvarFormatError(str(path), f"has {len(header.samples)} sample columns; a ClinVar VCF is sites-only",
                                 line=header.header_lines, code="invalid_header")
    file_date = meta.get("fileDate", "").strip()
    dated = _FILE_DATE.match(file_date)
    origin = header.info.get("ORIGIN")
    table = {int(bit): name.strip() for bit, name in _ORIGIN_TABLE_ENTRY.findall(origin.description if origin else "")}
    return ClinvarVcfHeader(
        lines=header.header_lines,
        assembly=partition_safe(meta.get("reference", "").strip() or header.reference_genome),
        file_date="-".join(dated.groups()) if dated else (file_date or None),
        origin_bits=table or ORIGIN_BITS,
    )


def vcf_batches(path: str | Path, header: ClinvarVcfHeader, release: str | None) -> Iterator[ParsedBatch]:
    """The file's records, typed, a block at a time."""
    constants = {"source_format": VCF, "release": release}
    for lines in line_batches(path, skip_lines=header.lines):
        fields = split_fields(lines, 8)
        problems = RowProblems(len(fields.line_numbers))
        typed = _typed_columns(fields.columns, header, problems)
        yield parsed_batch(fields, lines, typed, problems, constants)


def info_fields(info: pa.Array, keys: tuple[str, ...], problems: RowProblems) -> dict[str, pa.Array]:
    """One string column per INFO key (null where the record lacks it or it is a bare flag)."""
    entries = pc.split_pattern(null_tokens(info, (".",)), ";")
    _, elements, rows = list_elements(entries)
    pairs = pc.split_pattern(elements, "=", max_splits=1)
    offsets, parts, _ = list_elements(pairs)
    lengths = np.diff(offsets)
    names = parts.take(pa.array(offsets[:-1])).dictionary_encode()
    value_at = np.where(lengths == 2, offsets[:-1] + 1, -1)
    values = parts.take(pa.array(value_at, mask=value_at < 0))
    codes = names.indices.to_numpy(zero_copy_only=False)
    vocabulary = names.dictionary.to_pylist()
    columns = {}
    for key in keys:
        if key not in vocabulary:
            columns[key] = pa.nulls(len(info), pa.string())
            continue
        where = np.flatnonzero(codes == vocabulary.index(key))
        repeated = np.bincount(rows[where], minlength=len(info)) > 1
        problems.flag(repeated, f"INFO/{key}: given more than once")
        index = np.full(len(info), -1, dtype=np.int64)
        index[rows[where]] = where
        columns[key] = values.take(pa.array(index, mask=index < 0))
    return columns


def _spaced(values: pa.Array) -> pa.Array:
    """VCF ``_`` for space and ``|`` between values → variant_summary's spaces and ``, ``."""
    return pc.replace_substring(pc.replace_substring(percent_decode(values), "_", " "), "|", ", ")


def _database_names_spaced(entries: pa.Array) -> pa.Array:
    affected = to_mask(pc.match_substring_regex(entries, _DB_NAME_UNDERSCORE))
    if not affected.any():
        return entries
    names = entries.filter(pa.array(affected))  # few: HPO, BIC, GTR …
    while to_mask(pc.match_substring_regex(names, _DB_NAME_UNDERSCORE)).any():
        names = pc.replace_substring_regex(names, _DB_NAME_UNDERSCORE, r"\1 \2")
    return pc.replace_with_mask(entries, pa.array(affected), names)


def _id_groups(values: pa.Array, group_separator: str) -> pa.ListArray:
    """``db:id,db:id|db:id`` → one element per group, database names spaced, ``.`` → null."""
    def spaced_group(groups: pa.Array, _rows: np.ndarray) -> pa.Array:
        entries = map_list_elements(pc.split_pattern(groups, ","),
                                    lambda items, _: percent_decode(_database_names_spaced(items)))
        return null_tokens(pc.binary_join(entries, ","), (".",))

    return map_list_elements(split_list(values, group_separator), spaced_group)


def _genes(geneinfo: pa.Array, problems: RowProblems) -> tuple[pa.ListArray, pa.ListArray]:
    pairs = split_list(geneinfo, "|")
    offsets, elements, rows = list_elements(pairs)
    parsed = pc.extract_regex(elements, _GENE)
    problems.flag(~to_mask(pc.is_valid(parsed)), "INFO/GENEINFO: not SYMBOL:GeneID pairs", rows)
    ids = pc.cast(pc.struct_field(parsed, "id"), pa.int64())
    list_offsets, missing = pa.array(offsets, pa.int32()), pc.is_null(pairs)
    return (pa.ListArray.from_arrays(list_offsets, ids, mask=missing),
            pa.ListArray.from_arrays(list_offsets, pc.struct_field(parsed, "symbol"), mask=missing))


def _decode_origin(value: str, bits: dict[int, str]) -> list[str]:
    names: list[str] = []
    for part in value.split(","):
        code = int(part)
        if code == 0:
            names.append(bits.get(0, "unknown"))
        for bit, name in sorted(bits.items()):
            if bit and code & bit:
                names.append(name)
                code &= ~bit
        if code:
            names.append(str(code))
    spelled = [SUMMARY_ORIGIN_SPELLING.get(name, name) for name in names]
    return list(dict.fromkeys(spelled))


def _origin(values: pa.Array, bits: dict[int, str], problems: RowProblems) -> pa.Array:
    values = null_tokens(values, ("", "."))
    is_mask = pc.match_substring_regex(values, r"^[0-9]{1,10}(,[0-9]{1,10})*$")
    problems.flag(to_mask(pc.invert(is_mask)), "INFO/ORIGIN: not an integer bit mask")
    values = pc.if_else(pc.fill_null(is_mask, False), values, pa.scalar(None, pa.string()))
    return map_distinct(values, lambda value: _decode_origin(value, bits), pa.list_(pa.string()))


def _typed_columns(columns: list[pa.Array], header: ClinvarVcfHeader, problems: RowProblems) -> dict[str, pa.Array]:
    chrom, pos, variation, ref, alt, _qual, _filter, info = columns
    fields = info_fields(info, INFO_KEYS, problems)
    gene_ids, gene_symbols = _genes(fields["GENEINFO"], problems)
    hgvs = map_list_elements(split_list(fields["CLNHGVS"], ","), lambda items, _: percent_decode(items))
    first_hgvs = pc.list_element(hgvs, 0)  # split_pattern never yields an empty list
    names = map_list_elements(split_list(fields["CLNDN"], "|"), lambda items, _: null_tokens(
        pc.replace_substring(percent_decode(items), "_", " "), (".",)))
    return {
        "allele_id": parse_int(fields["ALLELEID"], problems, "INFO/ALLELEID", required=True),
        "variation_id": parse_int(variation, problems, "ID", tokens=("", "."), required=True),
        "type": _spaced(fields["CLNVC"]),
        "gene_ids": gene_ids,
        "gene_symbols": gene_symbols,
        "clinical_significance": _spaced(fields["CLNSIG"]),
        "rs_id": parse_int(fields["RS"], problems, "INFO/RS", tokens=("", ".")),
        "dbvar_ids": split_list(fields["DBVARID"], ","),
        "phenotype_ids": _id_groups(fields["CLNDISDB"], "|"),
        "phenotype_list": names,
        "origin": _origin(fields["ORIGIN"], header.origin_bits, problems),
        "assembly": header.assembly,
        "chromosome_accession": pc.struct_field(pc.extract_regex(first_hgvs, _ACCESSION), "accession"),
        "chromosome": partition_safe_array(pc.replace_substring_regex(chrom, "^chr", "")),
        "review_status": _spaced(fields["CLNREVSTAT"]),
        "other_ids": map_list_elements(split_list(fields["CLNVI"], "|"),
                                       lambda items, _: percent_decode(_database_names_spaced(items))),
        "position_vcf": parse_int(pos, problems, "POS", required=True),
        "reference_allele_vcf": null_tokens(ref, ("",)),
        "alternate_allele_vcf": null_tokens(alt, ("", ".")),
        "molecular_consequences": split_list(fields["MC"], ","),
        "hgvs": hgvs,
    }
