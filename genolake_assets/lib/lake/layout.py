"""Where things live in the lake: every object key and prefix, relative to the lake root, is written here once.

The lifecycle rules, the cohort state, the engines, the stack's IAM scopes (deploy/template.py) and the
Athena settings import these; this module needs only the standard library, so deploy tooling can too.
"""

from __future__ import annotations

from genolake_assets.lib.lake.identifiers import require_safe_sample_id

PART_NAME = "part-00000.parquet"
REGISTRY_PREFIX = "registry/"
LANDING_PREFIX = "landing/"
LANDING_SEQUENCERS_PREFIX = f"{LANDING_PREFIX}sequencers/"
"""Where sequencer transfers (DataSync or the local copier) put run folders."""
LANDING_INDEX_PREFIX = "ingest/landing_index/"
SAMPLE_REGISTRY_PREFIX = f"{REGISTRY_PREFIX}samples/"
PUBLISHED_REGISTRY_PREFIX = f"{REGISTRY_PREFIX}published/"
RAW_VCF_PREFIX = "raw/vcf/"
QUARANTINE_PREFIX = "quarantine/"
VARIANTS_TABLE = "variants"
REFERENCE_BLOCKS_TABLE = "reference_blocks"
"""The per-sample tables: each is a folder ``<table>/sample_id=<id>/`` (``partition_key``)."""
SAMPLES_TABLE_KEY = f"samples/{PART_NAME}"
SAMPLES_TABLE_INDEX_KEY = f"{REGISTRY_PREFIX}samples_table_index.parquet"
"""The registry ETags the samples table was last built from (lib/lake/samples_table.py); outside samples/,
which catalogs read as the table, and outside registry/samples/, which is the registry."""
COHORT_PREFIX = "cohort/"
COHORT_STATE_KEY = f"{REGISTRY_PREFIX}cohort/state.json"
"""The cohort manifest: which files under ``cohort/`` are live (lib/cohort/state.py)."""
STAGING_CONVERT_PREFIX = "staging/convert/"
"""Where a conversion batch stages its Parquet files before the orchestrator publishes them."""
STAGING_COHORT_PREFIX = "staging/cohort/"
"""A distributed cohort update's job and result (spark/cohort_update.py); its files go to ``cohort/``."""
EMR_LOGS_PREFIX = "emr-logs/"
EMR_PIPES_PREFIX = f"{EMR_LOGS_PREFIX}pipes"
"""The Hail job's Pipes messages, under the logs the cluster's role already writes."""
EMR_CODE_PREFIX = "code/"
"""The Hail job's script, package zip and bootstrap action, content-addressed."""
ATHENA_RESULTS_PREFIX = "athena-results/"
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



CLINVAR_RAW_PREFIX = "raw/clinvar/"
CLINVAR_TABLE_PREFIX = "clinvar/"
CLINVAR_REJECTED_PREFIX = f"{QUARANTINE_PREFIX}clinvar/"
CLINVAR_SOURCE_KEY = f"{REGISTRY_PREFIX}clinvar/source.json"
CLINVAR_SNAPSHOT_KEY = f"{REGISTRY_PREFIX}clinvar/snapshot.json"
CLINVAR_PUBLISHED_KEY = f"{REGISTRY_PREFIX}clinvar/published.json"
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
REFERENCE_REGISTRY_PREFIX = f"{REGISTRY_PREFIX}references/"
ALIGNMENT_REGISTRY_PREFIX = f"{REGISTRY_PREFIX}alignments/"
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
