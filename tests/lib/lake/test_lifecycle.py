"""The lifecycle rules as data, their validation, and the plan on a real local lake."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from genolake_assets.lib.lake import lifecycle as lc
from genolake_assets.lib.lake.lifecycle import (
    ABORT_MULTIPART_RULE_ID,
    ARCHIVE_BAM_RULE_ID,
    ARCHIVE_TAG_KEY,
    ARCHIVE_TAG_VALUE,
    CRAM_TAG_KEY,
    DEEP_ARCHIVE,
    STANDARD_IA,
    VCF_INFREQUENT_RULE_ID,
    LifecycleSettings,
    PlanRow,
    lifecycle_plan,
    lifecycle_rules,
    render_plan_markdown,
)
from genolake_assets.resources.lake.local_store import LocalObjectStore

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)
DAY = 86_400
BIG = 200 * 1024  # above S3's 128 KiB transition minimum


def _rule(rules, rule_id):
    return next(rule for rule in rules if rule["ID"] == rule_id)


# -- rules --------------------------------------------------------------------------------

def test_default_rules_have_the_shape_put_bucket_lifecycle_configuration_takes():
    rules = lifecycle_rules(LifecycleSettings())
    assert [rule["ID"] for rule in rules] == [ARCHIVE_BAM_RULE_ID, VCF_INFREQUENT_RULE_ID, ABORT_MULTIPART_RULE_ID,
                                              lc.EXPIRE_COPIED_LANDING_RULE_ID, lc.EXPIRE_NONCURRENT_RULE_ID]
    assert all(rule["Status"] == "Enabled" for rule in rules)
    assert all(rule["ID"].startswith("genolake-") for rule in rules)

    assert _rule(rules, ARCHIVE_BAM_RULE_ID) == {
        "ID": ARCHIVE_BAM_RULE_ID,
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "raw/bam/", "Tags": [{"Key": "genolake-archive", "Value": "verified"}]}},
        "Transitions": [{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}],
    }
    assert _rule(rules, VCF_INFREQUENT_RULE_ID) == {
        "ID": VCF_INFREQUENT_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": "raw/vcf/"},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
    }
    assert _rule(rules, ABORT_MULTIPART_RULE_ID) == {
        "ID": ABORT_MULTIPART_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    # The only current objects a timer deletes are landed files tagged as copied into raw/.
    assert [rule["ID"] for rule in rules if "Expiration" in rule] == [lc.EXPIRE_COPIED_LANDING_RULE_ID]
    assert _rule(rules, lc.EXPIRE_COPIED_LANDING_RULE_ID) == {
        "ID": lc.EXPIRE_COPIED_LANDING_RULE_ID,
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "landing/", "Tags": [{"Key": "genolake-copied", "Value": "true"}]}},
        "Expiration": {"Days": 7},
    }
    assert _rule(rules, lc.EXPIRE_NONCURRENT_RULE_ID) == {
        "ID": lc.EXPIRE_NONCURRENT_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
    }


@pytest.mark.parametrize("prefix", ["lake", "lake/", "/lake/", "org/lake"])
def test_rules_live_under_the_lake_prefix(prefix):
    settings = LifecycleSettings(archive_after_days=90, vcf_infrequent_after_days=45,
                                 abort_incomplete_multipart_days=3, s3_prefix=prefix)
    rules = lifecycle_rules(settings)
    lake = prefix.strip("/") + "/"
    bam = _rule(rules, ARCHIVE_BAM_RULE_ID)
    assert bam["Filter"]["And"]["Prefix"] == f"{lake}raw/bam/"
    assert bam["Transitions"] == [{"Days": 90, "StorageClass": DEEP_ARCHIVE}]
    vcf = _rule(rules, VCF_INFREQUENT_RULE_ID)
    assert vcf["Filter"] == {"Prefix": f"{lake}raw/vcf/"}
    assert vcf["Transitions"] == [{"Days": 45, "StorageClass": STANDARD_IA}]
    abort = _rule(rules, ABORT_MULTIPART_RULE_ID)
    assert abort["Filter"] == {"Prefix": lake}
    assert abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}


def test_no_transition_touches_crams_references_or_tables():
    for rule in lifecycle_rules(LifecycleSettings(s3_prefix="lake")):
        if "Transitions" not in rule:
            continue
        prefix = rule["Filter"].get("And", rule["Filter"])["Prefix"]
        for hot in ("lake/alignments/cram/x.cram", "lake/references/abc/ce.fa.gz", "lake/variants/sample_id=a/p.parquet"):
            assert not hot.startswith(prefix), (rule["ID"], hot)
            assert not prefix.startswith("lake/alignments") and not prefix.startswith("lake/references")


def test_prefixes_match_the_lake_layout():
    """The rules use the lake layout's prefixes, and the layout loads without pyarrow (deploy tooling)."""
    import subprocess
    import sys

    from genolake_assets.lib.lake import layout as lake_layout

    for name in ("RAW_VCF_PREFIX", "RAW_BAM_PREFIX", "CRAM_PREFIX", "REFERENCES_PREFIX", "LANDING_PREFIX"):
        assert getattr(lc, name) == getattr(lake_layout, name), name
    probe = subprocess.run([sys.executable, "-c", "import sys, genolake_assets.lib.lake.lifecycle; "
                            "sys.exit('pyarrow' in sys.modules)"], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr or "lifecycle (and the layout) imported pyarrow"


def test_cloudformation_shape_is_derived_from_the_same_rules():
    rules = lc.cloudformation_rules(LifecycleSettings(archive_after_days=60, s3_prefix="lake"))
    assert rules == [
        {"Id": ARCHIVE_BAM_RULE_ID, "Status": "Enabled", "Prefix": "lake/raw/bam/",
         "TagFilters": [{"Key": ARCHIVE_TAG_KEY, "Value": ARCHIVE_TAG_VALUE}],
         "Transitions": [{"TransitionInDays": 60, "StorageClass": DEEP_ARCHIVE}]},
        {"Id": VCF_INFREQUENT_RULE_ID, "Status": "Enabled", "Prefix": "lake/raw/vcf/",
         "Transitions": [{"TransitionInDays": 30, "StorageClass": STANDARD_IA}]},
        {"Id": ABORT_MULTIPART_RULE_ID, "Status": "Enabled", "Prefix": "lake/",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"Id": lc.EXPIRE_COPIED_LANDING_RULE_ID, "Status": "Enabled", "Prefix": "lake/landing/",
         "TagFilters": [{"Key": "genolake-copied", "Value": "true"}], "ExpirationInDays": 7},
        {"Id": lc.EXPIRE_NONCURRENT_RULE_ID, "Status": "Enabled", "Prefix": "lake/",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 30}},
    ]


def test_cloudformation_rules_without_a_lake_prefix_cover_the_whole_bucket():
    abort = lc.cloudformation_rules(LifecycleSettings())[2]
    assert abort == {"Id": ABORT_MULTIPART_RULE_ID, "Status": "Enabled",
                     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}


def test_archive_tags_name_the_cram():
    assert lc.archive_tags("alignments/cram/ab/x.cram") == {
        ARCHIVE_TAG_KEY: ARCHIVE_TAG_VALUE, CRAM_TAG_KEY: "alignments/cram/ab/x.cram"}
    with pytest.raises(ValueError):
        lc.archive_tags("../x.cram")


# -- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vcf_infrequent_after_days": 29}, "STANDARD_IA earlier than 30 days"),
        ({"vcf_infrequent_after_days": 0}, "vcf_infrequent_after_days must be at least 30"),
        ({"archive_after_days": -1}, "archive_after_days must be at least 0"),
        ({"archive_after_days": 1.5}, "archive_after_days must be a whole number of days"),
        ({"archive_after_days": True}, "archive_after_days must be a whole number of days"),
        ({"abort_incomplete_multipart_days": 0}, "abort_incomplete_multipart_days must be at least 1"),
        ({"s3_prefix": "lake/../other"}, "s3_prefix 'lake/../other' is not a safe key prefix"),
    ],
)
def test_invalid_settings_fail_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        LifecycleSettings(**kwargs)


def test_settings_from_env():
    env = {"GENOLAKE_ARCHIVE_AFTER_DAYS": "120", "GENOLAKE_VCF_INFREQUENT_AFTER_DAYS": "60",
           "GENOLAKE_S3_PREFIX": "lake"}
    assert LifecycleSettings.from_env(env) == LifecycleSettings(120, 60, 7, "lake")
    assert LifecycleSettings.from_env({}) == LifecycleSettings()
    with pytest.raises(ValueError, match="GENOLAKE_ARCHIVE_AFTER_DAYS must be a whole number"):
        LifecycleSettings.from_env({"GENOLAKE_ARCHIVE_AFTER_DAYS": "soon"})
    with pytest.raises(ValueError, match="30 days"):
        LifecycleSettings.from_env({"GENOLAKE_VCF_INFREQUENT_AFTER_DAYS": "7"})


def test_transition_date_rounds_up_to_the_next_midnight_utc():
    written = datetime(2025, 1, 1, 13, 30, tzinfo=timezone.utc).timestamp()
    assert lc.transition_date(written, 30) == datetime(2025, 2, 1, tzinfo=timezone.utc)
    at_midnight = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
    assert lc.transition_date(at_midnight, 30) == datetime(2025, 1, 31, tzinfo=timezone.utc)


# -- the plan on a real local lake ---------------------------------------------------------

def _write(store: LocalObjectStore, key: str, size: int, age_days: float) -> None:
    store.write_bytes(key, b"\0" * size)
    moment = NOW.timestamp() - age_days * DAY
    os.utime(store.local_path(key), (moment, moment))


@pytest.fixture
def lake(tmp_path):
    store = LocalObjectStore(tmp_path / "lake")
    _write(store, "raw/bam/aa/verified-old.bam", BIG, age_days=45)
    _write(store, "raw/bam/bb/verified-new.bam", BIG, age_days=2)
    _write(store, "raw/bam/cc/unverified.bam", BIG, age_days=400)
    _write(store, "raw/bam/dd/pending.bam", BIG, age_days=400)
    _write(store, "raw/bam/ee/verified-tiny.bam", 1000, age_days=400)
    _write(store, "raw/vcf/ff/old.vcf.gz", BIG, age_days=31)
    _write(store, "raw/vcf/gg/new.vcf.gz", BIG, age_days=1)
    _write(store, "alignments/cram/aa/verified-old.cram", BIG, age_days=400)
    _write(store, "references/hh/ce.fa.gz", BIG, age_days=400)
    _write(store, "variants/sample_id=s1/part-00000.parquet", BIG, age_days=400)
    store.put_tags("raw/bam/aa/verified-old.bam", lc.archive_tags("alignments/cram/aa/verified-old.cram"))
    store.put_tags("raw/bam/bb/verified-new.bam", lc.archive_tags("alignments/cram/bb/verified-new.cram"))
    store.put_tags("raw/bam/dd/pending.bam", {ARCHIVE_TAG_KEY: "pending"})
    store.put_tags("raw/bam/ee/verified-tiny.bam", {ARCHIVE_TAG_KEY: ARCHIVE_TAG_VALUE})
    return store


def test_plan_says_what_the_rules_would_do_to_each_object(lake):
    asked = []

    def tags_of(key):
        asked.append(key)
        return lake.get_tags(key)

    rows = lifecycle_plan(lake.list_objects(""), tags_of, LifecycleSettings(), NOW)
    by_key = {row.key: row for row in rows}
    assert len(rows) == 10 and all(isinstance(row, PlanRow) for row in rows)
    assert all(row.current_class == "STANDARD" for row in rows)
    # Tags are only read for raw BAMs (one GET per object on S3).
    assert sorted(asked) == sorted(key for key in by_key if key.startswith("raw/bam/"))

    old = by_key["raw/bam/aa/verified-old.bam"]
    assert (old.rule_id, old.target_class, old.action) == (ARCHIVE_BAM_RULE_ID, DEEP_ARCHIVE, lc.DUE)
    written = NOW - timedelta(days=45)
    assert old.due == (written + timedelta(days=31)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert "alignments/cram/aa/verified-old.cram" in old.reason

    new = by_key["raw/bam/bb/verified-new.bam"]
    assert (new.target_class, new.action) == (DEEP_ARCHIVE, lc.SCHEDULED)
    assert new.due == datetime(2025, 7, 14, tzinfo=timezone.utc)  # 2 days old + 30, next midnight

    unverified = by_key["raw/bam/cc/unverified.bam"]
    assert (unverified.rule_id, unverified.action, unverified.due) == (ARCHIVE_BAM_RULE_ID, lc.NOT_ELIGIBLE, None)
    assert "not verified yet" in unverified.reason

    pending = by_key["raw/bam/dd/pending.bam"]
    assert pending.action == lc.NOT_ELIGIBLE and "'pending'" in pending.reason

    tiny = by_key["raw/bam/ee/verified-tiny.bam"]
    assert tiny.action == lc.NOT_ELIGIBLE and "128 KiB" in tiny.reason

    vcf_old, vcf_new = by_key["raw/vcf/ff/old.vcf.gz"], by_key["raw/vcf/gg/new.vcf.gz"]
    assert (vcf_old.rule_id, vcf_old.target_class, vcf_old.action) == (VCF_INFREQUENT_RULE_ID, STANDARD_IA, lc.DUE)
    assert (vcf_new.target_class, vcf_new.action) == (STANDARD_IA, lc.SCHEDULED)
    assert vcf_new.due == datetime(2025, 7, 15, tzinfo=timezone.utc)

    for hot in ("alignments/cram/aa/verified-old.cram", "references/hh/ce.fa.gz"):
        row = by_key[hot]
        assert (row.rule_id, row.target_class, row.due, row.action) == (None, None, None, lc.STAYS)
        assert "kept hot" in row.reason
    assert old.as_dict()["due"] == old.due.isoformat() and unverified.as_dict()["due"] is None
    table = by_key["variants/sample_id=s1/part-00000.parquet"]
    assert table.action == lc.STAYS and table.rule_id is None


def test_plan_follows_the_configured_days(lake):
    rows = lifecycle_plan(lake.list_objects("raw"), lake.get_tags,
                          LifecycleSettings(archive_after_days=60, vcf_infrequent_after_days=30), NOW.timestamp())
    by_key = {row.key: row for row in rows}
    assert by_key["raw/bam/aa/verified-old.bam"].action == lc.SCHEDULED  # 45 days old < 60
    assert by_key["raw/vcf/ff/old.vcf.gz"].action == lc.DUE


def test_plan_markdown_lists_covered_and_hot_objects_and_summarises_the_rest(lake):
    rows = lifecycle_plan(lake.list_objects(""), lake.get_tags, LifecycleSettings(), NOW)
    text = render_plan_markdown(rows)
    assert text.startswith("| action | objects | size |")
    assert "| due → DEEP_ARCHIVE | 1 | 200.0 KiB |" in text
    assert "| due → STANDARD_IA | 1 | 200.0 KiB |" in text
    assert "| not eligible | 3 |" in text
    assert "| stays | 3 | 600.0 KiB |" in text
    assert "| raw/bam/cc/unverified.bam | 200.0 KiB | STANDARD | genolake-archive-verified-bam | DEEP_ARCHIVE | — |" in text
    assert "| raw/bam/aa/verified-old.bam |" in text and "| 2025-06-01 | due |" in text
    assert "| alignments/cram/aa/verified-old.cram |" in text  # kept hot, listed
    assert "variants/sample_id=s1" not in text  # counted in the summary only
    short = render_plan_markdown(rows, limit=2)
    assert "| … and 7 more |" in short


def test_plan_of_an_empty_lake(tmp_path):
    store = LocalObjectStore(tmp_path / "empty")
    rows = lifecycle_plan(store.list_objects(""), store.get_tags, LifecycleSettings(), NOW)
    assert rows == []
    assert "(empty lake)" in render_plan_markdown(rows)


def test_the_module_stays_pure():
    """Importable by deploy tooling (issue 9) without boto3, Dagster or pyarrow."""
    code = ("import sys, genolake_assets.lib.lake.lifecycle; "
            "print(sorted(m for m in ('boto3', 'botocore', 'dagster', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_landed_file_expires_only_once_tagged_as_copied(tmp_path):
    from genolake_assets.resources.lake.local_store import LocalObjectStore

    store = LocalObjectStore(tmp_path / "lake")
    store.write_bytes("landing/a.vcf.gz", b"x" * 10)
    store.write_bytes("landing/b.vcf.gz", b"y" * 10)
    store.put_tags("landing/b.vcf.gz", {"genolake-copied": "true"})
    written = store.head("landing/b.vcf.gz").last_modified

    rows = {r.key: r for r in lc.lifecycle_plan(store.list_objects(""), store.get_tags, now=written + 86_400)}

    assert rows["landing/a.vcf.gz"].action == lc.STAYS
    copied = rows["landing/b.vcf.gz"]
    assert (copied.rule_id, copied.target_class, copied.action) == (lc.EXPIRE_COPIED_LANDING_RULE_ID, lc.EXPIRED, lc.SCHEDULED)
    assert copied.due == lc.transition_date(written, 7)
