"""Where things live in the lake (keys relative to the lake root)."""

from __future__ import annotations

from genolake_assets.lib.lake.identifiers import require_safe_sample_id
from genolake_assets.lib.lake.parquet_output import PART_NAME

LANDING_PREFIX = "landing/"
LANDING_INDEX_PREFIX = "ingest/landing_index/"
SAMPLE_REGISTRY_PREFIX = "registry/samples/"
PUBLISHED_REGISTRY_PREFIX = "registry/published/"
RAW_VCF_PREFIX = "raw/vcf/"
QUARANTINE_PREFIX = "quarantine/"
SAMPLES_TABLE_KEY = "samples/part-00000.parquet"
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")


def is_vcf_key(key: str) -> bool:
    return key.lower().endswith(VCF_SUFFIXES)


def landing_index_key(sample_id: str) -> str:
    return f"{LANDING_INDEX_PREFIX}{require_safe_sample_id(sample_id)}.json"


def sample_registry_key(sample_id: str) -> str:
    return f"{SAMPLE_REGISTRY_PREFIX}{require_safe_sample_id(sample_id)}.json"


def published_record_key(sample_id: str) -> str:
    return f"{PUBLISHED_REGISTRY_PREFIX}{require_safe_sample_id(sample_id)}.json"


def raw_vcf_key(sha256: str, file_name: str) -> str:
    return f"{RAW_VCF_PREFIX}{sha256[:2]}/{sha256}/{file_name}"


def partition_key(table: str, sample_id: str) -> str:
    return f"{table}/sample_id={require_safe_sample_id(sample_id)}/{PART_NAME}"


def quarantine_key(sample_id: str, file_name: str) -> str:
    return f"{QUARANTINE_PREFIX}{require_safe_sample_id(sample_id)}/{file_name}"

CLINVAR_RAW_PREFIX = "raw/clinvar/"
CLINVAR_TABLE_PREFIX = "clinvar/"
CLINVAR_REJECTED_PREFIX = f"{QUARANTINE_PREFIX}clinvar/"
CLINVAR_SOURCE_KEY = "registry/clinvar/source.json"
CLINVAR_SNAPSHOT_KEY = "registry/clinvar/snapshot.json"
CLINVAR_PUBLISHED_KEY = "registry/clinvar/published.json"
CLINVAR_PARTITION_KEYS = ["assembly", "chromosome"]
REPORTS_PREFIX = "reports/"


def clinvar_raw_key(sha256: str, file_name: str) -> str:
    return f"{CLINVAR_RAW_PREFIX}{sha256[:2]}/{sha256}/{file_name}"


def clinvar_snapshot_prefix(snapshot_id: str) -> str:
    return f"{CLINVAR_TABLE_PREFIX}snapshot={snapshot_id}"

ALIGNMENT_SUFFIXES = (".bam",)
REFERENCE_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz", ".fa.bgz")
LANDING_REFERENCES_PREFIX = f"{LANDING_PREFIX}references/"
REFERENCES_PREFIX = "references/"
REFERENCE_REGISTRY_PREFIX = "registry/references/"
ALIGNMENT_REGISTRY_PREFIX = "registry/alignments/"
RAW_BAM_PREFIX = "raw/bam/"
CRAM_PREFIX = "alignments/cram/"
COMPRESSION_RESULTS_PREFIX = "alignments/results/"
WORK_ORDERS_PREFIX = "alignments/work_orders/"


def is_alignment_key(key: str) -> bool:
    return key.lower().endswith(ALIGNMENT_SUFFIXES) and not key.startswith(LANDING_REFERENCES_PREFIX)


def is_reference_key(key: str) -> bool:
    return key.startswith(LANDING_REFERENCES_PREFIX) and key.lower().endswith(REFERENCE_SUFFIXES)


def raw_bam_key(alignment_id: str, version: str, file_name: str) -> str:
    """``version`` names the landed object's version (from its etag): checksumming a 100 GB BAM is the
    compression job's work, not the orchestrator's, so BAMs are not content-addressed by sha256."""
    return f"{RAW_BAM_PREFIX}{require_safe_sample_id(alignment_id)}/{version}/{file_name}"


def alignment_registry_key(alignment_id: str) -> str:
    return f"{ALIGNMENT_REGISTRY_PREFIX}{require_safe_sample_id(alignment_id)}.json"


def cram_key(alignment_id: str, version: str, file_name: str) -> str:
    """Per source version, so a re-uploaded BAM never overwrites the verified CRAM of the previous one."""
    stem = file_name[:-4] if file_name.lower().endswith(".bam") else file_name
    return f"{CRAM_PREFIX}{require_safe_sample_id(alignment_id)}/{version}/{stem}.cram"


def compression_result_key(alignment_id: str, version: str) -> str:
    return f"{COMPRESSION_RESULTS_PREFIX}{require_safe_sample_id(alignment_id)}/{version}.json"


def work_order_key(alignment_id: str, version: str) -> str:
    return f"{WORK_ORDERS_PREFIX}{require_safe_sample_id(alignment_id)}/{version}.json"


def alignment_quarantine_prefix(alignment_id: str, version: str) -> str:
    return f"{QUARANTINE_PREFIX}alignments/{require_safe_sample_id(alignment_id)}/{version}/"
