"""One profile setting picks the whole resource set."""

from __future__ import annotations

from genolake_assets.resources.catalog import DuckDbCatalog
from genolake_assets.resources.engine import ConverterResource
from genolake_assets.resources.lake import LakeResource
from genolake_assets.settings import Settings


def build_resources(settings: Settings | None = None) -> dict:
    settings = settings or Settings.from_env()
    lake = LakeResource(profile=settings.profile, home=str(settings.home), s3_bucket=settings.s3_bucket,
                        s3_prefix=settings.s3_prefix, endpoint_url=settings.endpoint_url, region=settings.region,
                        kms_key_id=settings.kms_key_id)
    if settings.profile == "aws":
        # The Glue/Athena catalog is its own capability (issue #3); until it lands the aws profile
        # stores the lake in S3 and refuses to start rather than pretend to catalog it.
        raise ValueError("GENOLAKE_PROFILE=aws needs the Glue/Athena catalog, which is not built yet; "
                         "use the local profile (the S3 object store is available to it via LakeResource)")
    catalog = DuckDbCatalog(database=str(settings.home / "catalog.duckdb"), lake_root=str(settings.home / "lake"))
    return {"lake": lake, "catalog": catalog, "converter": ConverterResource()}
