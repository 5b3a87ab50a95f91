"""The Hail conversion engine on a transient EMR cluster, launched and followed through dagster-aws Pipes.

One batch is one cluster: ``convert_batch`` uploads the job code to the lake (content-addressed, so an
unchanged job is uploaded once), writes the manifest next to ``result_uri``, starts a cluster whose only
step is ``spark/vcf_to_parquet.py --manifest <uri>`` and which terminates when the step ends, forwards
the job's Pipes messages (per-sample progress) while it runs, then reads the job's :class:`BatchResult`.
A VCF the job could not convert is an outcome in that result; only a cluster that ended without writing
one (bootstrap or step failure, timeout) raises :class:`EmrClusterFailed`. A terminated Dagster run, a
timeout or an error while waiting terminates the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

from genolake_assets.lib.vcf.batch import BatchResult, ConversionManifest
from genolake_assets.resources.conversion.engine import ConverterResource
from genolake_assets.resources.emr.cluster import (
    CLUSTER_PYTHON,
    SPARK_DIR,
    TERMINAL_ERROR_STATE,
    EmrClusterFailed,
    cluster_failure,
    lake_key,
    package_zip,
    partition_range,
    run_transient_cluster,
    transient_cluster_params,
    upload_code,
)
from genolake_assets.resources.lake.object_store import ObjectStore
from genolake_assets.resources.lake.s3_store import S3ObjectStore, aws_client

__all__ = ["EmrClusterFailed", "EmrHailConverter", "package_zip"]
_partition_range = partition_range  # the name tests of the run-name helper use

JOB_SCRIPT = "vcf_to_parquet.py"
BOOTSTRAP_SCRIPT = "emr_bootstrap.sh"
HAIL_JAR = "/opt/genolake/hail-all-spark.jar"
"""Where emr_bootstrap.sh (or a custom AMI) links Hail's jar: spark-submit starts the driver JVM before Hail's
Python code runs, so the jar must be given on the command line."""
# On the spark-submit line rather than as cluster Configurations: dagster-aws merges its Pipes variables into
# a caller's spark-env classification by dropping them, and the driver would never find its Pipes context.
HAIL_SPARK_CONF = {
    "spark.pyspark.python": CLUSTER_PYTHON,
    "spark.pyspark.driver.python": CLUSTER_PYTHON,
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
    "spark.kryo.registrator": "is.hail.kryo.HailKryoRegistrator",
}
DEFAULT_SPARK_CONF = {"spark.driver.memory": "8g"}
"""Hail's driver needs more than Spark's 1 GiB default heap; spark_conf entries override these."""


class EmrHailConverter(ConverterResource):
    """Runs a batch of VCF → Parquet conversions with Hail on one transient EMR cluster.

    Fields: ``region``/``endpoint_url`` of the EMR API; ``release_label`` (an EMR 7.x release: Spark 3.5, as
    Hail 0.2.139 needs; 7.5.0 has Spark 3.5.2); ``master_instance_type``, ``core_instance_type`` and
    ``core_instance_count``; ``subnet_id`` (tag it ``for-use-with-amazon-emr-managed-policies=true``);
    ``service_role`` and ``job_flow_role`` (the instance profile; names or ARNs); ``security_configuration``;
    ``log_uri`` (default ``s3://<lake>/emr-logs/``); ``hail_install``: ``"bootstrap"`` (spark/emr_bootstrap.sh
    pip-installs Hail on every node) or ``"custom_ami"`` (``custom_ami_id`` already has it, linked at
    :data:`HAIL_JAR`); ``idle_timeout_seconds`` (AutoTerminationPolicy); ``startup_timeout_seconds`` plus
    ``step_timeout_seconds``: how long the cluster may take before it is terminated; ``poll_interval_seconds``
    for cluster state and messages; ``spark_conf``: ``--conf`` entries over :data:`DEFAULT_SPARK_CONF` (driver
    and executor memory); ``job_dir`` holding the job and bootstrap scripts (default: the repo's spark/).
    """

    engine: str = "hail"
    region: str | None = None
    endpoint_url: str | None = None
    release_label: str = "emr-7.5.0"
    master_instance_type: str = "m5.xlarge"
    core_instance_type: str = "r5.2xlarge"
    core_instance_count: int = 4
    subnet_id: str | None = None
    service_role: str = "EMR_DefaultRole_V2"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    security_configuration: str | None = None
    log_uri: str | None = None
    hail_install: str = "bootstrap"
    custom_ami_id: str | None = None
    idle_timeout_seconds: int = 900
    startup_timeout_seconds: int = 45 * 60
    step_timeout_seconds: int = 8 * 3600
    poll_interval_seconds: float = 15.0
    spark_conf: dict[str, str] | None = None
    job_dir: str | None = None

    def stages_in_lake(self) -> bool:
        return True

    def convert_batch(self, context, manifest: ConversionManifest, store: ObjectStore,
                      log: Callable[[str], None]) -> BatchResult:
        if not isinstance(store, S3ObjectStore):
            raise TypeError(f"the EMR engine needs the lake on S3, not {type(store).__name__}")
        self._check_hail_install()
        result_key = lake_key(store, manifest.result_uri)
        manifest_key = str(PurePosixPath(result_key).parent / "manifest.json")
        code = self._upload_code(store)
        store.write_bytes(manifest_key, manifest.to_json().encode())
        store.delete(result_key)  # a result left by an earlier attempt must not pass for this cluster's
        params = self.job_flow_params(context, manifest, code, store.uri(manifest_key), store)
        emr = aws_client("emr", endpoint_url=self.endpoint_url, region_name=self.region)
        client = run_transient_cluster(self, context, store, emr, params, log, lambda payload: log(_describe(payload)))
        cluster = client.final_cluster
        try:
            result = BatchResult.from_json(store.read_bytes(result_key).decode())
        except FileNotFoundError:
            raise cluster_failure(client.client, cluster, "the step ended without writing a result") from None
        if cluster["Status"]["State"] == TERMINAL_ERROR_STATE:
            log(f"warning: {cluster_failure(client.client, cluster, '')} (after the job wrote its result)")
        result.spark.setdefault("emr_cluster_id", cluster["Id"])
        result.spark.setdefault("emr_release_label", self.release_label)
        return result

    def job_flow_params(self, context, manifest: ConversionManifest, code: dict[str, str], manifest_uri: str,
                        store: S3ObjectStore) -> dict:
        """RunJobFlow's parameters: a cluster that runs the one conversion step and terminates."""
        self._check_hail_install()
        samples = sum(len(job.samples) for job in manifest.jobs)
        partitions = partition_range(context)
        spark_conf = {**HAIL_SPARK_CONF, **DEFAULT_SPARK_CONF, **(self.spark_conf or {})}
        conf = [arg for key, value in spark_conf.items() for arg in ("--conf", f"{key}={value}")]
        spark_submit = ["spark-submit", "--deploy-mode", "client", "--jars", HAIL_JAR, *conf,
                        "--py-files", code["package"], code["script"], "--manifest", manifest_uri]
        return transient_cluster_params(
            self, store, name=f"genolake-hail {context.run_id}{' ' + partitions if partitions else ''}",
            step_name="hail-convert", command=spark_submit,
            tags={"genolake:run-id": context.run_id, "genolake:samples": str(samples),
                  "genolake:component": "hail-convert"},
            bootstrap=("install-hail", code["bootstrap"]) if self.hail_install == "bootstrap" else None,
            custom_ami_id=self.custom_ami_id)

    def _check_hail_install(self) -> None:
        if self.hail_install not in ("bootstrap", "custom_ami"):
            raise ValueError(f"hail_install must be 'bootstrap' or 'custom_ami', not {self.hail_install!r}")
        if self.hail_install == "custom_ami" and not self.custom_ami_id:
            raise ValueError(f"hail_install='custom_ami' needs custom_ami_id (an AMI with Hail linked at {HAIL_JAR})")

    def _upload_code(self, store: S3ObjectStore) -> dict[str, str]:
        """The job script, the package zip and the bootstrap script under code/<sha256>/ (uploaded once)."""
        folder = Path(self.job_dir) if self.job_dir else SPARK_DIR
        names = {"script": JOB_SCRIPT}
        if self.hail_install == "bootstrap":
            names["bootstrap"] = BOOTSTRAP_SCRIPT
        missing = [name for name in names.values() if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} not found in {folder} (set job_dir to the spark/ folder)")
        files = {role: (name, (folder / name).read_bytes()) for role, name in names.items()}
        files["package"] = ("genolake_assets.zip", package_zip())
        return upload_code(store, files)


def _describe(payload) -> str:
    """A log line for the job's per-sample ("sample") and per-VCF ("failed") messages."""
    kind, get = (payload.get("kind"), payload.get) if isinstance(payload, dict) else (None, None)
    if kind == "sample":
        return (f"{get('job_id')}: sample {get('sample_id')} converted: {get('rows')} rows, {get('bytes')} bytes "
                f"in {float(get('seconds') or 0):.1f} s")
    if kind == "failed":
        return f"{get('job_id')}: {get('vcf_uri')} failed: {get('problem')}"
    return f"job message: {payload}"


