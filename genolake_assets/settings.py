"""One place that reads the environment: which profile, where the lake is."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from genolake_assets.lib.lake.layout import ATHENA_RESULTS_PREFIX
from genolake_assets.lib.limits import InputLimits
from genolake_assets.lib.clinvar.fetch import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, NCBI_CLINVAR_PREFIX, SourcePolicy

PROFILES = ("local", "aws")
ENGINES = ("arrow", "hail")
COHORT_ENGINES = ("in-process", "spark")
HAIL_INSTALLS = ("bootstrap", "custom_ami")
PSEUDONYMISE_VARIABLE = "GENOLAKE_PSEUDONYMISE"
PSEUDONYM_KEY_VARIABLE = "GENOLAKE_PSEUDONYM_KEY"
PSEUDONYM_KEY_FILE_VARIABLE = "GENOLAKE_PSEUDONYM_KEY_FILE"
PSEUDONYM_KEY_PARAMETER_VARIABLE = "GENOLAKE_PSEUDONYM_KEY_PARAMETER"
PSEUDONYM_KEY_VARIABLES = (PSEUDONYM_KEY_VARIABLE, PSEUDONYM_KEY_FILE_VARIABLE, PSEUDONYM_KEY_PARAMETER_VARIABLE)


@dataclass(frozen=True)
class Settings:
    profile: str
    home: Path
    """Local working directory: the lake itself in the local profile, plus the catalog and scratch."""
    s3_bucket: str | None
    s3_prefix: str
    endpoint_url: str | None
    region: str | None
    kms_key_id: str | None
    glue_database: str = "genolake"
    athena_workgroup: str = "primary"
    athena_output: str | None = None
    """Where Athena writes results; None means ``s3://<bucket>/<prefix>/athena-results/``."""
    batch_job_queue: str = "genolake-bam-compress"
    batch_job_definition: str = "genolake-bam-compress"
    sensors_running: bool = True
    """Whether the landing sensors start RUNNING (``GENOLAKE_SENSORS=stopped`` for a staging copy or a demo
    where someone else decides when files are picked up; the UI can still turn them on)."""
    file_catalog_table: str = "genolake-file-catalog"
    """The DynamoDB table of the aws profile's alignment file catalog (SQLite under the home locally)."""
    pseudonymise: bool = False
    """``GENOLAKE_PSEUDONYMISE=1``: sample ids are keyed hashes of the names (docs/phi.md)."""
    pseudonym_key_file: str | None = None
    """A file holding the pseudonym key as hex or base64 text (``GENOLAKE_PSEUDONYM_KEY_FILE``)."""
    pseudonym_key_parameter: str | None = None
    """ARN or name of the Secrets Manager secret (or an SSM SecureString parameter ARN) holding the key
    (``GENOLAKE_PSEUDONYM_KEY_PARAMETER``). The key itself (``GENOLAKE_PSEUDONYM_KEY``) is never held
    here: it is read when ids are minted (:func:`pseudonym_key_text`), so it is in no config or repr."""
    engine: str = "arrow"
    """``GENOLAKE_ENGINE``: the VCF → Parquet engine, ``arrow`` (in-process) or ``hail`` (EMR in aws)."""
    cohort_engine: str = "in-process"
    """``GENOLAKE_COHORT_ENGINE``: where the cohort update runs, ``in-process`` or ``spark`` (local Spark in the
    local profile, a transient EMR cluster in aws; docs/cohort-layout.md)."""
    regions_bed: str | None = None
    """``GENOLAKE_REGIONS_BED``: Hail engine only: convert only records whose position lies in this BED file's
    intervals (a path locally, an s3:// URI on EMR)."""
    emr_release_label: str | None = None
    """``GENOLAKE_EMR_*``: the Hail engine's cluster; None keeps the resource's default."""
    emr_subnet_id: str | None = None
    emr_service_role: str | None = None
    emr_instance_profile: str | None = None
    emr_security_configuration: str | None = None
    emr_core_instances: int | None = None
    emr_instance_type: str | None = None
    """The core nodes' instance type."""
    hail_install: str = "bootstrap"
    """``GENOLAKE_HAIL_INSTALL``: ``bootstrap`` (pip on every node) or ``custom_ami``
    (``GENOLAKE_EMR_CUSTOM_AMI_ID``, an AMI with Hail installed)."""
    emr_custom_ami_id: str | None = None
    input_limits: InputLimits = InputLimits()
    """``GENOLAKE_MAX_*``: how far a hostile or broken input is read before it is refused (lib/limits.py);
    checked here so a malformed value stops the code location from loading."""
    clinvar_sources: SourcePolicy = SourcePolicy()
    """Where a ClinVar ``uri`` may point: ``GENOLAKE_CLINVAR_SOURCES`` (URL prefixes, default NCBI's ClinVar
    folder), ``GENOLAKE_CLINVAR_LOCAL_DIRS`` (folders, none by default), ``GENOLAKE_CLINVAR_MAX_BYTES`` and
    ``GENOLAKE_CLINVAR_MAX_SECONDS`` (docs/security.md)."""

    @property
    def athena_output_location(self) -> str | None:
        if self.athena_output:
            return self.athena_output
        if not self.s3_bucket:
            return None
        prefix = self.s3_prefix.strip("/")
        return f"s3://{self.s3_bucket}/{prefix + '/' if prefix else ''}{ATHENA_RESULTS_PREFIX}"

    @classmethod
    def from_env(cls) -> Settings:
        profile = os.environ.get("GENOLAKE_PROFILE", "local").strip().lower()
        if profile not in PROFILES:
            raise ValueError(f"GENOLAKE_PROFILE must be one of {PROFILES}, not {profile!r}")
        return cls(
            profile=profile,
            home=Path(os.environ.get("GENOLAKE_HOME", ".genolake")).resolve(),
            s3_bucket=os.environ.get("GENOLAKE_S3_BUCKET"),
            s3_prefix=os.environ.get("GENOLAKE_S3_PREFIX", ""),
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            kms_key_id=os.environ.get("GENOLAKE_KMS_KEY_ID") or None,
            glue_database=os.environ.get("GENOLAKE_GLUE_DATABASE") or "genolake",
            athena_workgroup=os.environ.get("GENOLAKE_ATHENA_WORKGROUP") or "primary",
            athena_output=os.environ.get("GENOLAKE_ATHENA_OUTPUT") or None,
            batch_job_queue=os.environ.get("GENOLAKE_BATCH_JOB_QUEUE") or "genolake-bam-compress",
            batch_job_definition=os.environ.get("GENOLAKE_BATCH_JOB_DEFINITION") or "genolake-bam-compress",
            file_catalog_table=os.environ.get("GENOLAKE_FILE_CATALOG_TABLE") or "genolake-file-catalog",
            sensors_running=_sensors_running(os.environ.get("GENOLAKE_SENSORS", "running")),
            clinvar_sources=clinvar_source_policy(),
            input_limits=InputLimits.from_env(),
            **_pseudonym_settings(),
            **_engine_settings(),
        )


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def samples_per_run() -> int:
    """``GENOLAKE_SAMPLES_PER_CLUSTER`` (default 100): samples per backfill run, and so per EMR cluster."""
    return _positive_int("GENOLAKE_SAMPLES_PER_CLUSTER") or 100


def _positive_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


def _text(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _engine_settings() -> dict:
    """The conversion engine and its EMR cluster (used by the aws profile's Hail engine only)."""
    hail_install = _choice("GENOLAKE_HAIL_INSTALL", HAIL_INSTALLS, "bootstrap")
    custom_ami_id = _text("GENOLAKE_EMR_CUSTOM_AMI_ID")
    if hail_install == "custom_ami" and not custom_ami_id:
        raise ValueError("GENOLAKE_HAIL_INSTALL=custom_ami needs GENOLAKE_EMR_CUSTOM_AMI_ID: "
                         "an AMI with Hail installed")
    samples_per_run()  # refused here, at start-up, if malformed
    return {
        "engine": _choice("GENOLAKE_ENGINE", ENGINES, "arrow"),
        "cohort_engine": _choice("GENOLAKE_COHORT_ENGINE", COHORT_ENGINES, "in-process"),
        "regions_bed": _text("GENOLAKE_REGIONS_BED"),
        "emr_release_label": _text("GENOLAKE_EMR_RELEASE_LABEL"),
        "emr_subnet_id": _text("GENOLAKE_EMR_SUBNET_ID"),
        "emr_service_role": _text("GENOLAKE_EMR_SERVICE_ROLE"),
        "emr_instance_profile": _text("GENOLAKE_EMR_INSTANCE_PROFILE"),
        "emr_security_configuration": _text("GENOLAKE_EMR_SECURITY_CONFIGURATION"),
        "emr_core_instances": _positive_int("GENOLAKE_EMR_CORE_INSTANCES"),
        "emr_instance_type": _text("GENOLAKE_EMR_INSTANCE_TYPE"),
        "hail_install": hail_install,
        "emr_custom_ami_id": custom_ami_id,
    }


def clinvar_source_policy() -> SourcePolicy:
    """The operator's ClinVar source rules; refused here, when the code location loads, if malformed."""
    prefixes = os.environ.get("GENOLAKE_CLINVAR_SOURCES", "").replace(",", " ").split() or [NCBI_CLINVAR_PREFIX]
    folders = [Path(p).expanduser() for p in os.environ.get("GENOLAKE_CLINVAR_LOCAL_DIRS", "").split(os.pathsep)
               if p.strip()]
    return SourcePolicy(allowed_prefixes=tuple(prefixes), local_dirs=tuple(folders),
                        max_bytes=_positive_int("GENOLAKE_CLINVAR_MAX_BYTES") or DEFAULT_MAX_BYTES,
                        max_seconds=float(_positive_int("GENOLAKE_CLINVAR_MAX_SECONDS") or DEFAULT_MAX_SECONDS))


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 1 or 0 (true/false), not {value!r}")


def _pseudonym_settings() -> dict:
    """Pseudonymisation settings. ``GENOLAKE_PSEUDONYMISE`` is the one switch: a key variable without it
    is ignored (the stack always creates the secret; using it is a choice). With it, a missing or
    ambiguous key is refused here, when the code location loads, rather than at the first sensor tick."""
    if not _flag(PSEUDONYMISE_VARIABLE):
        return {}
    given = [name for name in PSEUDONYM_KEY_VARIABLES if os.environ.get(name, "").strip()]
    if not given:
        raise ValueError(f"{PSEUDONYMISE_VARIABLE}=1 needs the pseudonym key: {PSEUDONYM_KEY_VARIABLE} (hex or "
                         f"base64 text), {PSEUDONYM_KEY_FILE_VARIABLE} (a file holding it) or "
                         f"{PSEUDONYM_KEY_PARAMETER_VARIABLE} (the Secrets Manager secret holding it, aws)")
    if len(given) > 1:
        raise ValueError(f"set only one of {', '.join(given)}: they all name the pseudonym key")
    return {"pseudonymise": True,
            "pseudonym_key_file": os.environ.get(PSEUDONYM_KEY_FILE_VARIABLE, "").strip() or None,
            "pseudonym_key_parameter": os.environ.get(PSEUDONYM_KEY_PARAMETER_VARIABLE, "").strip() or None}


def pseudonym_key_text() -> str | None:
    """The pseudonym key given inline (``GENOLAKE_PSEUDONYM_KEY``), read only when ids are minted."""
    return os.environ.get(PSEUDONYM_KEY_VARIABLE, "").strip() or None


def _sensors_running(value: str) -> bool:
    value = value.strip().lower()
    if value not in ("running", "stopped"):
        raise ValueError(f"GENOLAKE_SENSORS must be 'running' or 'stopped', not {value!r}")
    return value == "running"


def default_sensor_status():
    """The sensors' default status from ``GENOLAKE_SENSORS`` (imported lazily: settings stays Dagster-free)."""
    import dagster as dg

    running = Settings.from_env().sensors_running
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
