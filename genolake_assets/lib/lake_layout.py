"""Where things live in the lake (keys relative to the lake root)."""

from __future__ import annotations

from genolake_assets.lib.identifiers import require_safe_sample_id
from genolake_assets.lib.parquet_output import PART_NAME

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
