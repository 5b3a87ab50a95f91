"""The contract between the orchestrator and a batch conversion job (the Hail job in spark/).

The orchestrator writes a *manifest*: which VCFs to convert, which of their samples, under which ids,
and where each job stages its files. The job writes a *result*: one outcome per VCF, either the same
:class:`ConversionReport` the in-process converter returns (files are staged, never published) or the
problem that stopped that VCF. One bad VCF never fails the batch: its outcome says why and the others
go on. Both are plain JSON so they travel through S3 to an EMR cluster and back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.vcf.convert import ConversionReport, SampleReport

MANIFEST_VERSION = 1


@dataclass
class ConversionJob:
    """One VCF: its samples (VCF name → sample id) and where the job stages their files."""

    job_id: str
    vcf_uri: str
    samples: dict[str, str]
    staging_uri: str
    """Folder (local path or s3:// URI) under which ``<table>/sample_id=<id>/part-00000.parquet`` is staged."""
    name_columns: dict[str, str] | None = None
    """What each sample's ``sample_name`` column holds instead of its VCF name (pseudonymous ids)."""


@dataclass
class ConversionManifest:
    jobs: list[ConversionJob]
    result_uri: str
    """Where the job writes its :class:`BatchResult` as JSON (local path or s3:// URI)."""
    regions_bed_uri: str | None = None
    """Optional BED file: only records overlapping its intervals are converted (both engines)."""
    version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> ConversionManifest:
        data = json.loads(text)
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"conversion manifest version {data.get('version')!r}, expected {MANIFEST_VERSION}")
        jobs = [ConversionJob(**job) for job in data["jobs"]]
        return cls(jobs=jobs, result_uri=data["result_uri"], regions_bed_uri=data.get("regions_bed_uri"))


@dataclass
class JobOutcome:
    job_id: str
    vcf_uri: str
    report: ConversionReport | None = None
    problem: InputProblem | None = None
    seconds: float = 0.0
    staged: dict[str, dict[str, dict]] = field(default_factory=dict)
    """sample id → table → {"sha256", "bytes", "rows"} of each staged file, so staged files on S3 need
    not be read back by the orchestrator."""

    @property
    def ok(self) -> bool:
        return self.report is not None and self.problem is None


@dataclass
class BatchResult:
    engine: str
    engine_version: str
    outcomes: list[JobOutcome]
    seconds: float = 0.0
    spark: dict = field(default_factory=dict)
    """Spark master, application id and Hail version, for the run's metadata."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> BatchResult:
        data = json.loads(text)
        outcomes = []
        for item in data["outcomes"]:
            report = item.get("report")
            if report is not None:
                samples = {name: SampleReport(**sample) for name, sample in report.pop("samples").items()}
                report = ConversionReport(samples=samples, **report)
            problem = item.get("problem")
            outcomes.append(JobOutcome(
                job_id=item["job_id"], vcf_uri=item["vcf_uri"], report=report,
                problem=InputProblem(**problem) if problem else None, seconds=item.get("seconds", 0.0),
                staged=item.get("staged", {})))
        return cls(engine=data["engine"], engine_version=data["engine_version"], outcomes=outcomes,
                   seconds=data.get("seconds", 0.0), spark=data.get("spark", {}))
