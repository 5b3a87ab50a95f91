"""What the UI shows of the lake's tables: column schemas with one line per column, and the ``dagster/*``
metadata keys the asset pages surface (row count, URI, table name).

Dagster 1.13 reads these keys by name (``TableMetadataSet`` is not exported from ``dagster``), and merges
the column descriptions of an asset's definition schema into the schema of its latest materialisation.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg
import pyarrow as pa

from genolake_assets.lib.vcf.header import VcfHeader
from genolake_assets.resources.catalog.catalog import Catalog, DuckDbCatalog

COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
URI = "dagster/uri"
TABLE_NAME = "dagster/table_name"

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

SAMPLE_COLUMNS = {
    "sample_id": "Safe id of the sample: the partition key of the per-sample tables",
    "sample_name": "The sample's name in the VCF header",
    "source_uri": "Where the VCF was landed",
    "source_key": "Lake key of the landed VCF",
    "raw_key": "Lake key of the registered, content-addressed copy",
    "raw_uri": "URI of the registered copy the tables were converted from",
    "sha256": "SHA-256 of the registered VCF",
    "size_bytes": "Size of the VCF in bytes",
    "file_format": "VCF version (##fileformat)",
    "reference_genome": "Reference assembly, from the header (##reference, ##contig) or the file name",
    "caller": "Variant caller, from ##source or ##GATKCommandLine",
    "samples_in_file": "Samples in the VCF the sample came from",
    "registered_at": "When raw_vcf registered the file (UTC)",
    "status": "landed, registered, converted or quarantined",
    "reason": "Why the latest upload was quarantined",
    "engine": "Conversion engine",
    "engine_version": "Conversion engine version",
    "converted_at": "When the sample's tables were published (UTC)",
    "conversion_seconds": "Seconds to convert the whole VCF the sample came from",
    "records_read": "VCF records read",
    "variant_rows": "Rows in the sample's variants partition",
    "reference_block_rows": "Rows in the sample's reference_blocks partition",
    "variant_bytes": "Parquet bytes of the variants partition",
    "reference_block_bytes": "Parquet bytes of the reference_blocks partition",
}

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

COHORT_COLUMNS = {  # docs/cohort-layout.md
    "contig": "As in the VCF; partition key",
    "bin": "pos // 1,000,000; partition key",
    "pos": "1-based start",
    "end": "Last position covered",
    "ref": "Reference allele",
    "alt": "ALT allele, null for reference blocks",
    "variant_id": "contig:pos:ref:alt, null for reference blocks",
    "sample_id": SAMPLE_COLUMNS["sample_id"],
    "kind": "variant or reference_block",
    "gt": "Split genotype (null elements are no-call alleles)",
    "gt_phased": "The GT is phased",
    "gq": "FORMAT GQ when the sample has it",
    "dp": "FORMAT DP when the sample has it",
}

REPORT_COLUMNS = {  # docs/clinvar-and-reports.md
    "chromosome": "Chromosome of the ClinVar variant",
    "pos": "VCF position",
    "ref": "Reference allele",
    "alt": "Alternate allele",
    "genotype": "The samples' split genotype for this ALT, unphased alleles sorted",
    "samples_with_genotype": "Samples of the sub-population with this genotype",
    "cohort_samples": "Samples in the sub-population",
    "called_samples": "Samples of the sub-population called or covered by a reference block here",
    "seed_frequency": "samples_with_genotype / cohort_samples (the seed pipeline's figure)",
    "called_frequency": "samples_with_genotype / called_samples",
    "variation_id": CLINVAR_COLUMNS["variation_id"],
    "rs_id": CLINVAR_COLUMNS["rs_id"],
    "genes": "Gene symbols of the ClinVar rows at this site",
    "clinical_significance": "ClinVar clinical significance",
    "review_status": "ClinVar review status",
    "phenotypes": "ClinVar conditions",
}


def _describe(name: str, descriptions: Mapping[str, str]) -> str | None:
    if name in descriptions:
        return descriptions[name]
    if name.endswith("_unsplit"):
        return f"{name.removesuffix('_unsplit')} before splitting (split rows only)"
    if name.startswith(("info_", "fmt_")):
        section, key = name.split("_", 1)
        return f"{'INFO' if section == 'info' else 'FORMAT'}/{key.upper()} from the VCF header"
    return None


def _type_name(type_: pa.DataType) -> str:
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return f"list<{_type_name(type_.value_type)}>"
    return "date" if pa.types.is_date32(type_) else str(type_)


def arrow_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(field.name, _type_name(field.type)) for field in schema]


def table_schema(columns: Iterable[tuple[str, str]], descriptions: Mapping[str, str] = {}) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=name, type=type_, description=_describe(name, descriptions))
                                   for name, type_ in columns])


def header_descriptions(header: VcfHeader) -> dict[str, str]:
    """Each info_/fmt_ column described by its ##INFO/##FORMAT line."""
    return {field.column: f"{field.section}/{field.id} (Number={field.number}): {field.description}"
            for field in (*header.info.values(), *header.format.values())}


def table_name(catalog: Catalog, name: str) -> str:
    """The name a SQL user types: ``<duckdb file>.main.<view>`` locally, ``<glue database>.<table>`` on AWS."""
    if isinstance(catalog, DuckDbCatalog):
        return f"{Path(catalog.database).stem}.main.{name}"
    database = getattr(catalog, "database", None)
    return f"{database}.{name}" if database else name


def link(uri: str | None) -> dg.MetadataValue:
    """A clickable URL for a URI; a plain path for a local path (a ClinVar file given as one)."""
    if uri and "://" in uri:
        return dg.MetadataValue.url(uri)
    return dg.MetadataValue.path(uri or "")
