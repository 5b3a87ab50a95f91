"""The distributed cohort update on a transient EMR cluster (Spark), launched and followed through dagster-aws
Pipes like the Hail converter (resources/emr/cluster.py).

One update is one cluster: the job (``CohortJob``: the manifest, the samples' per-sample files, the drops)
is written under ``staging/cohort/<run>/``, the cluster's only step is
``spark-submit --py-files genolake_assets.zip cohort_update.py --job <uri>``, its tasks write the new
partition files under ``cohort/`` and its driver writes the assembled update beside the job. The
orchestrator then checks the result and publishes the manifest (lib/cohort/build.py). Nothing reads the
per-sample files on the orchestrator: they stay on S3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from genolake_assets.lib.cohort.build import CohortUpdater
from genolake_assets.lib.cohort.layout import CohortUpdate
from genolake_assets.resources.cohort.engine import CohortEngine
from genolake_assets.resources.cohort.local_spark import cohort_job, job_id, read_result
from genolake_assets.resources.emr.cluster import (
    CLUSTER_PYTHON,
    SPARK_DIR,
    TERMINAL_ERROR_STATE,
    cluster_failure,
    package_zip,
    run_transient_cluster,
    transient_cluster_params,
    upload_code,
)
from genolake_assets.resources.lake.s3_store import S3ObjectStore, aws_client

JOB_SCRIPT = "cohort_update.py"
BOOTSTRAP_SCRIPT = "emr_bootstrap.sh"
"""The Hail converter's bootstrap: it installs the job's packages (pyarrow, numpy, dagster-pipes) for
python3.11; Hail itself is not used by this job."""
SPARK_CONF = {
    "spark.pyspark.python": CLUSTER_PYTHON,
    "spark.pyspark.driver.python": CLUSTER_PYTHON,
    "spark.sql.execution.arrow.maxRecordsPerBatch": "16384",
    "spark.sql.adaptive.enabled": "false",  # keep one fold task per shuffle partition, as asked
}


class EmrSparkCohortEngine(CohortEngine):
    """Runs the cohort update with Spark on one transient EMR cluster.

    Fields as :class:`~genolake_assets.resources.conversion.emr_hail.EmrHailConverter`'s (region, release,
    instances, roles, subnet, security configuration, log URI, timeouts, polling, ``spark_conf``, ``job_dir``)
    plus ``fold_partitions``: the fold tasks (default: twice Spark's default parallelism). A fold task holds
    one locus partition's new rows at a time.
    """

    engine: str = "emr-spark"
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
    idle_timeout_seconds: int = 900
    startup_timeout_seconds: int = 45 * 60
    step_timeout_seconds: int = 8 * 3600
    poll_interval_seconds: float = 15.0
    spark_conf: dict[str, str] | None = None
    fold_partitions: int | None = None
    job_dir: str | None = None
    packages_install: str = "bootstrap"
    """``bootstrap`` (spark/emr_bootstrap.sh on every node) or ``custom_ami`` (``custom_ami_id`` has the
    packages already: the Hail converter's AMI, GENOLAKE_HAIL_INSTALL=custom_ami)."""
    custom_ami_id: str | None = None

    def updater(self, context, log: Callable[[str], None]) -> CohortUpdater:
        run_id = context.run_id if context is not None else "cli"

        def update(store, fetch, state, samples, drop, work_dir, max_files) -> CohortUpdate:
            if not isinstance(store, S3ObjectStore):
                raise TypeError(f"the EMR cohort engine needs the lake on S3, not {type(store).__name__}")
            job = cohort_job(store, state, samples, drop, max_files, job_id(run_id))
            return self.run_job(context, store, job, log)

        return update

    def run_job(self, context, store: S3ObjectStore, job, log: Callable[[str], None]) -> CohortUpdate:
        folder = job.result_key.rsplit("/", 1)[0]
        job_key = f"{folder}/job.json"
        store.write_bytes(job_key, job.to_json().encode())
        store.delete(job.result_key)
        try:
            params = self.job_flow_params(context, self._upload_code(store), store.uri(job_key), store,
                                          samples=len(job.samples))
            emr = aws_client("emr", endpoint_url=self.endpoint_url, region_name=self.region)
            client = run_transient_cluster(self, context, store, emr, params, log,
                                           lambda payload: log(f"cohort job: {payload}"))
            cluster = client.final_cluster
            if not store.exists(job.result_key):
                raise cluster_failure(client.client, cluster, "the step ended without writing a result")
            if cluster["Status"]["State"] == TERMINAL_ERROR_STATE:
                log(f"warning: {cluster_failure(client.client, cluster, '')} (after the job wrote its result)")
            return read_result(store, job)
        finally:
            store.delete_prefix(folder + "/")

    def job_flow_params(self, context, code: dict[str, str], job_uri: str, store: S3ObjectStore,
                        samples: int) -> dict:
        """RunJobFlow's parameters: a cluster that runs the one cohort step and terminates."""
        conf = [arg for key, value in {**SPARK_CONF, **(self.spark_conf or {})}.items()
                for arg in ("--conf", f"{key}={value}")]
        job_args = ["--job", job_uri] + (["--fold-partitions", str(self.fold_partitions)]
                                         if self.fold_partitions else [])
        spark_submit = ["spark-submit", "--deploy-mode", "client", *conf, "--py-files", code["package"],
                        code["script"], *job_args]
        if self.packages_install not in ("bootstrap", "custom_ami") or (
                self.packages_install == "custom_ami" and not self.custom_ami_id):
            raise ValueError(f"packages_install must be 'bootstrap', or 'custom_ami' with custom_ami_id; got "
                             f"{self.packages_install!r} (AMI {self.custom_ami_id!r})")
        run_id = context.run_id if context is not None else "cli"
        return transient_cluster_params(
            self, store, name=f"genolake-cohort {run_id}", step_name="cohort-update", command=spark_submit,
            tags={"genolake:run-id": run_id, "genolake:samples": str(samples), "genolake:component": "cohort-update"},
            bootstrap=("install-python-packages", code["bootstrap"]) if self.packages_install == "bootstrap" else None,
            custom_ami_id=self.custom_ami_id)

    def _upload_code(self, store: S3ObjectStore) -> dict[str, str]:
        folder = Path(self.job_dir) if self.job_dir else SPARK_DIR
        names = {"script": JOB_SCRIPT, "bootstrap": BOOTSTRAP_SCRIPT}
        missing = [name for name in names.values() if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} not found in {folder} (set job_dir to the spark/ folder)")
        files = {role: (name, (folder / name).read_bytes()) for role, name in names.items()}
        files["package"] = ("genolake_assets.zip", package_zip())
        return upload_code(store, files)
