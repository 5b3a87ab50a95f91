"""lake_lifecycle_policy: the lake's storage tiering, applied as code (aws) or reported as a plan (local)."""

import dagster as dg

from genolake_assets.lib.lake.lifecycle import (
    LifecycleSettings, lifecycle_plan, lifecycle_rules, plan_summary, render_plan_markdown,
)
from genolake_assets.resources.lake.lake import LakeResource


@dg.asset(group_name="alignments", kinds={"s3"}, owners=["team:genomics-data-engineering"],
          description="S3 lifecycle rules as code: original BAMs tagged genolake-archive=verified (only after their "
                      "CRAM verified and was catalogued) move to Glacier Deep Archive, raw VCFs to Standard-IA; CRAMs "
                      "and references stay hot; unfinished multipart uploads are aborted. The aws profile writes the "
                      "rules to the lake bucket (keeping rules it does not own); the local profile reports what the "
                      "rules would do to each object in the lake.")
def lake_lifecycle_policy(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    settings = LifecycleSettings.from_env()
    rules = lifecycle_rules(settings)
    metadata = {"rules": dg.MetadataValue.json(rules), "profile": lake.profile}
    if lake.profile == "aws":
        applied = lake.lifecycle_applier().apply(rules)
        context.log.info(f"lifecycle rules on s3://{lake.s3_bucket}: wrote {applied['applied']}, kept {applied['kept']}")
        metadata.update({"bucket": lake.s3_bucket, "changed": applied["changed"],
                         "kept_foreign_rules": dg.MetadataValue.json(applied["kept"]),
                         "bucket_rules": dg.MetadataValue.json(applied["rules"])})
        return dg.MaterializeResult(metadata=metadata)
    store = lake.store()
    rows = lifecycle_plan(store.list_objects(""), store.get_tags, settings)
    metadata.update({"plan": dg.MetadataValue.md(render_plan_markdown(rows, limit=100)),
                     "summary": dg.MetadataValue.json(plan_summary(rows)), "objects": len(rows)})
    return dg.MaterializeResult(metadata=metadata)
