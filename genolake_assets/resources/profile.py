"""One profile setting picks the whole resource set."""

from __future__ import annotations

import dagster as dg

from genolake_assets.lib.transfers.rules import TransferConfig
from genolake_assets.resources.catalog.duckdb_catalog import DuckDbCatalog
from genolake_assets.resources.catalog.glue_catalog import GlueCatalog
from genolake_assets.resources.cohort.emr_spark import EmrSparkCohortEngine
from genolake_assets.resources.cohort.engine import CohortEngine
from genolake_assets.resources.compression.batch import AwsBatchCompressionRunner
from genolake_assets.resources.compression.local import LocalCompressionRunner
from genolake_assets.resources.conversion.emr_hail import EmrHailConverter
from genolake_assets.resources.conversion.engine import ConverterResource
from genolake_assets.resources.file_catalog.dynamodb import DynamoDbFileCatalog
from genolake_assets.resources.file_catalog.sqlite import SqliteFileCatalog
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.resources.sql.athena import AthenaQueryEngine
from genolake_assets.resources.sql.duckdb_engine import DuckDbQueryEngine
from genolake_assets.resources.transfer.datasync import DataSyncTransfer
from genolake_assets.resources.transfer.local import LocalTransfer
from genolake_assets.settings import Settings


def build_resources(settings: Settings | None = None, transfer_config: TransferConfig | None = None) -> dict:
    """The resources of ``settings.profile``: keys lake, catalog, sql, converter, cohort_engine, compression_runner,
    file_catalog, transfer."""
    settings = settings or Settings.from_env()
    transfer_config = transfer_config or TransferConfig.from_env()
    if settings.profile == "aws" and not settings.s3_bucket:
        raise ValueError("GENOLAKE_PROFILE=aws needs GENOLAKE_S3_BUCKET: the bucket that holds the lake "
                         "(optionally GENOLAKE_S3_PREFIX for a folder in it)")
    lake = LakeResource(profile=settings.profile, home=str(settings.home), s3_bucket=settings.s3_bucket,
                        s3_prefix=settings.s3_prefix, endpoint_url=settings.endpoint_url, region=settings.region,
                        kms_key_id=settings.kms_key_id, **_pseudonym_config(settings))
    if settings.profile == "aws":
        catalog = GlueCatalog(database=settings.glue_database, s3_bucket=settings.s3_bucket,
                              s3_prefix=settings.s3_prefix, region=settings.region,
                              endpoint_url=settings.endpoint_url)
        sql = AthenaQueryEngine(database=settings.glue_database, workgroup=settings.athena_workgroup,
                                output_location=settings.athena_output_location, region=settings.region,
                                endpoint_url=settings.endpoint_url)
        runner = AwsBatchCompressionRunner(job_queue=settings.batch_job_queue,
                                           job_definition=settings.batch_job_definition,
                                           region=settings.region, endpoint_url=settings.endpoint_url)
        file_catalog = DynamoDbFileCatalog(table_name=settings.file_catalog_table, region=settings.region,
                                           endpoint_url=settings.endpoint_url)
        # Without a task the transfer automation is stopped (no sequencer paths) and start() names what is missing.
        transfer = DataSyncTransfer(task_arn=transfer_config.task_arn or "", region=settings.region,
                                    endpoint_url=settings.endpoint_url)
        converter = _emr_converter(settings) if settings.engine == "hail" else ConverterResource(engine="arrow")
        cohort_engine = _emr_cohort_engine(settings) if settings.cohort_engine == "spark" else CohortEngine()
    else:
        database = str(settings.home / "catalog.duckdb")
        catalog = DuckDbCatalog(database=database, lake_root=str(settings.home / "lake"))
        sql = DuckDbQueryEngine(database=database)
        runner = LocalCompressionRunner()
        file_catalog = SqliteFileCatalog(path=str(settings.home / "file_catalog.sqlite"))
        transfer = LocalTransfer(source_root=transfer_config.source_root or str(settings.home / "sequencer-share"),
                                 lake_root=str(settings.home / "lake"), state_dir=str(settings.home / "transfers"),
                                 destination_prefix=transfer_config.destination_prefix,
                                 quiet_seconds=transfer_config.quiet_seconds)
        converter = ConverterResource(engine=settings.engine, regions_bed=settings.regions_bed)
        cohort_engine = CohortEngine(engine=settings.cohort_engine)
    return {"lake": lake, "catalog": catalog, "sql": sql, "converter": converter, "cohort_engine": cohort_engine,
            "compression_runner": runner, "file_catalog": file_catalog, "transfer": transfer}


DEPLOYMENT_ONLY = ("set by the deployment (GENOLAKE_* environment, GENOLAKE_TRANSFER_CONFIG), validated at "
                   "start-up; run config cannot change it (docs/security.md)")


def deployment_resources(resources: dict) -> dict[str, dg.ResourceDefinition]:
    """``resources`` bound as deployment configuration: a run may use them but not reconfigure them.

    A ``ConfigurableResource`` handed to ``Definitions`` exposes every field as run config, so anyone who can
    launch a run (Launchpad, GraphQL ``launchRun``) could point the lake, the transfer or the compression
    program elsewhere, or switch pseudonymisation off. Each resource here has an empty config schema instead:
    a launch that sets ``resources.<name>.config.<field>`` fails config validation before the run starts.
    """
    return {name: _deployment_only(resource) for name, resource in resources.items()}


def _deployment_only(resource) -> dg.ResourceDefinition:
    return dg.ResourceDefinition(resource_fn=lambda _context: resource,
                                 config_schema=dg.Field({}, is_required=False, description=DEPLOYMENT_ONLY),
                                 description=f"{type(resource).__name__}: {DEPLOYMENT_ONLY}")


def _emr_cluster(settings: Settings) -> dict:
    """The GENOLAKE_EMR_* settings both EMR jobs' clusters use; one left unset keeps the resource's default."""
    given = {"release_label": settings.emr_release_label, "subnet_id": settings.emr_subnet_id,
             "service_role": settings.emr_service_role, "job_flow_role": settings.emr_instance_profile,
             "security_configuration": settings.emr_security_configuration,
             "core_instance_count": settings.emr_core_instances, "core_instance_type": settings.emr_instance_type,
             "custom_ami_id": settings.emr_custom_ami_id}
    return {"region": settings.region, "endpoint_url": settings.endpoint_url,
            **{name: value for name, value in given.items() if value is not None}}


def _emr_converter(settings: Settings) -> EmrHailConverter:
    """Hail on transient EMR clusters."""
    return EmrHailConverter(regions_bed=settings.regions_bed, hail_install=settings.hail_install,
                            **_emr_cluster(settings))


def _emr_cohort_engine(settings: Settings) -> EmrSparkCohortEngine:
    """The cohort update with Spark on transient EMR clusters (the Hail AMI, if one is set, has its packages)."""
    return EmrSparkCohortEngine(packages_install=settings.hail_install, **_emr_cluster(settings))


def _pseudonym_config(settings: Settings) -> dict:
    """The lake's pseudonymisation config; empty when off, so the default resource config is unchanged."""
    if not settings.pseudonymise:
        return {}
    return {"pseudonymise": True, "pseudonym_key_file": settings.pseudonym_key_file,
            "pseudonym_key_parameter": settings.pseudonym_key_parameter}
