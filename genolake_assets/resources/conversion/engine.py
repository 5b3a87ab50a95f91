"""The VCF → Parquet engine as a resource.

``engine="arrow"``: the in-process streaming converter (genolake_assets/lib/vcf/convert.py), the fast path
on one machine. ``engine="hail"``: ``spark/vcf_to_parquet.py`` with Hail on local Spark, in a child process
(the same job the aws profile runs on EMR, see :mod:`genolake_assets.resources.conversion.emr_hail`). Every engine
takes a :class:`ConversionManifest` and returns a :class:`BatchResult` of staged, unpublished files.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.vcf.batch import BatchResult, ConversionManifest, JobOutcome
from genolake_assets.lib.vcf.convert import ENGINE, ENGINE_VERSION, ConversionReport, convert_to_staging, verify_outputs
from genolake_assets.lib.vcf.header import read_header
from genolake_assets.lib.vcf.schema import schemas
from genolake_assets.resources.processes import EngineUnavailable, run_logged
from genolake_assets.settings import ENGINES

SPARK_JOB = Path(__file__).resolve().parents[3] / "spark" / "vcf_to_parquet.py"
"""The repo's spark/ job (genolake is used from a checkout: `make install` installs it editable)."""


class ConverterResource(dg.ConfigurableResource):
    """Converts VCFs' samples into staged, verified Parquet files (docs/variant-table.md)."""

    engine: str = "arrow"
    spark_master: str = "local[2]"
    """``engine=hail`` only: the local Spark master."""
    driver_memory: str = "2g"
    timeout_seconds: int = 6 * 3600
    regions_bed: str | None = None
    """Hail engine: convert only records whose position lies in this BED file's intervals (path or s3://)."""

    def stages_in_lake(self) -> bool:
        """Whether staged files are objects in the lake (a remote engine) rather than local files."""
        return False

    def convert(self, vcf_path: Path, sample_ids: dict[str, str], staging: Path,
                pseudonymous: bool = False) -> ConversionReport:
        """One VCF with the in-process engine (``sample_ids``: VCF name → the id it is registered under).

        ``pseudonymous``: the tables' ``sample_name`` column holds the (pseudonymous) id as well, so the
        real name stays in the samples table only (docs/phi.md)."""
        names = dict(sample_ids) if pseudonymous else None
        return convert_to_staging(vcf_path, staging, list(sample_ids), sample_ids=sample_ids, name_columns=names)

    def convert_batch(self, context, manifest: ConversionManifest, store, log: Callable[[str], None]) -> BatchResult:
        """Convert every job of ``manifest``; a VCF that fails is an outcome, not an exception."""
        if self.engine == "arrow":
            return self._convert_in_process(manifest)
        if self.engine == "hail":
            return self._convert_with_local_spark(manifest, log)
        raise ValueError(f"unknown conversion engine {self.engine!r} (available: {', '.join(ENGINES)})")

    def _convert_in_process(self, manifest: ConversionManifest) -> BatchResult:
        if manifest.regions_bed_uri:
            raise EngineUnavailable("a BED region filter (GENOLAKE_REGIONS_BED) needs engine=hail; the in-process "
                                    "converter writes whole files")
        started = time.perf_counter()
        outcomes = []
        for job in manifest.jobs:
            job_started = time.perf_counter()
            try:
                report = convert_to_staging(job.vcf_uri, Path(job.staging_uri), list(job.samples),
                                            sample_ids=job.samples, name_columns=job.name_columns)
                outcomes.append(JobOutcome(job.job_id, job.vcf_uri, report=report,
                                           seconds=time.perf_counter() - job_started))
            except VcfFormatError as exc:
                outcomes.append(JobOutcome(job.job_id, job.vcf_uri, problem=exc.detail,
                                           seconds=time.perf_counter() - job_started))
        return BatchResult(ENGINE, ENGINE_VERSION, outcomes, time.perf_counter() - started)

    def _convert_with_local_spark(self, manifest: ConversionManifest, log: Callable[[str], None]) -> BatchResult:
        if importlib.util.find_spec("hail") is None:
            raise EngineUnavailable("engine=hail needs Hail on this machine: pip install -e '.[hail]' "
                                    "(hail==0.2.139, Java 11+)")
        if not SPARK_JOB.is_file():
            raise EngineUnavailable(f"the Hail job {SPARK_JOB} is missing: run genolake from a checkout")
        result_path = Path(manifest.result_uri)
        result_path.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="genolake-spark-") as tmp:
            manifest_path = Path(tmp) / "manifest.json"
            manifest_path.write_text(manifest.to_json())
            command = [sys.executable, str(SPARK_JOB), "--manifest", str(manifest_path),
                       "--master", self.spark_master, "--driver-memory", self.driver_memory,
                       "--tmp-dir", str(Path(tmp) / "hail")]
            exit_code, tail = run_logged(command, log, self.timeout_seconds)
        if exit_code != 0 or not result_path.is_file():
            raise RuntimeError(f"the Hail job exited with {exit_code} without a result; last lines:\n"
                               + "\n".join(tail))
        result = BatchResult.from_json(result_path.read_text())
        for outcome in result.outcomes:
            if outcome.ok:  # the same check the in-process engine makes before anything is published
                verify_outputs(outcome.report, schemas(read_header(outcome.vcf_uri)))
        return result


__all__ = ["ConverterResource", "EngineUnavailable", "run_logged"]
