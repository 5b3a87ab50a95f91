"""Putting the lifecycle rules on a bucket, on the moto server.

moto stores a bucket's lifecycle configuration and returns it from
GetBucketLifecycleConfiguration, but it never runs the rules: no object is ever transitioned
or aborted there. These tests therefore check what is written and kept, not what S3 would do
to objects (that is ``lib.lifecycle.lifecycle_plan``'s job).
"""

from __future__ import annotations

import pytest

from genolake_assets.lib.lake.lifecycle import LifecycleSettings, lifecycle_rules
from genolake_assets.resources.lake.lifecycle_store import S3LifecycleApplier

FOREIGN_RULE = {
    "ID": "team-logs-expire",
    "Status": "Enabled",
    "Filter": {"Prefix": "logs/"},
    "Expiration": {"Days": 365},
}


def _by_id(rules):
    return {rule["ID"]: rule for rule in rules}


@pytest.fixture
def applier(moto_endpoint, bucket):
    return S3LifecycleApplier(bucket, endpoint_url=moto_endpoint, region="us-east-1")


def test_a_bucket_without_rules_reads_as_empty(applier):
    assert applier.current() == []


def test_apply_then_read_back_equals_our_rules(applier, raw_s3, bucket):
    rules = lifecycle_rules(LifecycleSettings(archive_after_days=45, s3_prefix="lake"))
    result = applier.apply(rules)
    assert result["changed"] is True
    assert result["applied"] == [rule["ID"] for rule in rules]
    assert result["kept"] == [] and result["removed"] == []
    assert _by_id(result["rules"]) == _by_id(rules)
    # The same, read by a plain client behind the applier's back.
    stored = raw_s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert _by_id(stored) == _by_id(rules)
    assert _by_id(applier.current()) == _by_id(rules)


def test_a_foreign_rule_survives(applier, raw_s3, bucket):
    raw_s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [FOREIGN_RULE]})
    rules = lifecycle_rules(LifecycleSettings())
    result = applier.apply(rules)
    assert result["kept"] == ["team-logs-expire"]
    on_bucket = _by_id(applier.current())
    assert on_bucket["team-logs-expire"] == FOREIGN_RULE
    assert on_bucket == {**_by_id(rules), "team-logs-expire": FOREIGN_RULE}


def test_reapplying_is_idempotent_and_changed_settings_replace_ours(applier, raw_s3, bucket):
    raw_s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [FOREIGN_RULE]})
    first = applier.apply(lifecycle_rules(LifecycleSettings()))
    again = applier.apply(lifecycle_rules(LifecycleSettings()))
    assert first["changed"] is True and again["changed"] is False
    assert _by_id(again["rules"]) == _by_id(first["rules"])
    assert len(again["rules"]) == len(lifecycle_rules()) + 1  # ours + the foreign one, nothing doubled

    longer = applier.apply(lifecycle_rules(LifecycleSettings(archive_after_days=90)))
    assert longer["changed"] is True
    on_bucket = _by_id(applier.current())
    assert on_bucket["genolake-archive-verified-bam"]["Transitions"] == [{"Days": 90, "StorageClass": "DEEP_ARCHIVE"}]
    assert on_bucket["team-logs-expire"] == FOREIGN_RULE and len(on_bucket) == len(lifecycle_rules()) + 1


def test_rules_genolake_no_longer_has_are_removed(applier, raw_s3, bucket):
    stale = {"ID": "genolake-old-rule", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    raw_s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [stale, FOREIGN_RULE]})
    result = applier.apply(lifecycle_rules())
    assert result["removed"] == ["genolake-old-rule"]
    assert "genolake-old-rule" not in _by_id(applier.current())
    # Withdrawing all of ours keeps the foreign rule; withdrawing everything deletes the configuration.
    assert _by_id(applier.apply([])["rules"]) == {"team-logs-expire": FOREIGN_RULE}
    raw_s3.delete_bucket_lifecycle(Bucket=bucket)
    applier.apply(lifecycle_rules())
    assert applier.apply([])["rules"] == []


def test_refuses_rules_it_would_not_recognise_as_its_own(applier):
    with pytest.raises(ValueError, match="does not start with 'genolake-'"):
        applier.apply([FOREIGN_RULE])
    doubled = lifecycle_rules() + lifecycle_rules()[:1]
    with pytest.raises(ValueError, match="duplicate lifecycle rule IDs: genolake-archive-verified-bam"):
        applier.apply(doubled)
    assert applier.current() == []


def test_a_missing_bucket_fails_clearly(moto_endpoint):
    applier = S3LifecycleApplier("genolake-no-such-bucket", endpoint_url=moto_endpoint)
    with pytest.raises(Exception, match="NoSuchBucket"):
        applier.apply(lifecycle_rules())


def test_a_foreign_rule_in_the_deprecated_prefix_form_is_kept_in_the_filter_form(applier, raw_s3, bucket):
    legacy = {"ID": "old-tool-expire", "Status": "Enabled", "Prefix": "scratch/", "Expiration": {"Days": 3}}
    raw_s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [legacy]})
    applier.apply(lifecycle_rules())
    kept = _by_id(applier.current())["old-tool-expire"]
    assert kept["Filter"] == {"Prefix": "scratch/"} and "Prefix" not in kept
    assert kept["Expiration"] == {"Days": 3}
