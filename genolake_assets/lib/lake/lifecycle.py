"""The lake's storage lifecycle as code: one source of truth for the rules.

Pure data and arithmetic (no boto3, no Dagster), so three consumers read the same rules:
the ``lake_lifecycle_policy`` asset (aws profile: PUT them on the bucket through
``resources/lake/lifecycle_store.py``; local profile: print :func:`lifecycle_plan`), the CLI, and
the infrastructure templates (issue 9), which import :func:`lifecycle_rules` or
:func:`cloudformation_rules` instead of copying them.

The rules:

- **Verified original BAMs → Glacier Deep Archive.** A raw BAM under ``raw/bam/`` transitions
  ``archive_after_days`` after it was written, but only if it carries the tag
  ``genolake-archive=verified``. The compression step sets that tag only after the CRAM
  decoded back to the same records (never on size alone), so an unverified original is never
  archived. S3 counts the age from the object's creation, not from the tagging, so an old BAM
  that is tagged today moves at the next daily lifecycle run.
- **Raw VCFs → Standard-IA** ``vcf_infrequent_after_days`` after they were written (S3 requires
  at least 30 days for Standard-IA). They are read again only when a sample is re-converted.
- **Everything the lake reads often stays hot**: CRAMs under ``alignments/cram/``, the reference
  FASTAs under ``references/`` (a CRAM is undecodable without its reference), the Parquet
  tables, registries and reports. No transition rule's prefix overlaps them.
- **Abandoned multipart uploads** anywhere under the lake prefix are aborted after
  ``abort_incomplete_multipart_days`` (otherwise their parts are billed forever, unseen).
- **Landed files already copied into ``raw/`` expire** from ``landing/`` ``landing_expire_days``
  after they landed, but only if they carry ``genolake-copied=true``. ``raw_vcf``/``raw_bam`` set
  that tag after their byte-for-byte copy into ``raw/`` exists with the same size, so a file that
  was refused (quarantined) or not yet registered is never expired. Without this, every BAM would be
  stored twice (landing and raw), which doubles the largest line of the bill (docs/cost.md).
- **Overwritten or deleted versions** (the lake bucket is versioned) expire
  ``noncurrent_expire_days`` after they stopped being current: a window to recover from a mistake,
  without paying for every old version forever.

No current object outside ``landing/`` is ever expired: deleting an original is a decision the lake
makes explicitly after verification, not a timer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from genolake_assets.lib.lake.identifiers import require_safe_key
from genolake_assets.lib.lake.layout import CRAM_PREFIX, LANDING_PREFIX, RAW_BAM_PREFIX, RAW_VCF_PREFIX, REFERENCES_PREFIX

# -- tags -------------------------------------------------------------------------------

ARCHIVE_TAG_KEY = "genolake-archive"
ARCHIVE_TAG_VALUE = "verified"
"""An original BAM carries ``genolake-archive=verified`` only after its CRAM was verified."""
CRAM_TAG_KEY = "genolake-cram"
"""On an archive-tagged original: the lake key of the verified CRAM that replaces it (for tracing)."""


def archive_tags(cram_key: str) -> dict[str, str]:
    """The tags to put on an original BAM once its CRAM (at ``cram_key``) is verified."""
    return {ARCHIVE_TAG_KEY: ARCHIVE_TAG_VALUE, CRAM_TAG_KEY: require_safe_key(cram_key)}


HOT_PREFIXES = (CRAM_PREFIX, REFERENCES_PREFIX)
"""Prefixes that must never be transitioned out of S3 Standard."""

# -- rule ids and S3 vocabulary -------------------------------------------------------------

OWNED_RULE_ID_PREFIX = "genolake-"
"""Rules whose ID starts with this are genolake's; any other rule on the bucket is left alone."""
ARCHIVE_BAM_RULE_ID = "genolake-archive-verified-bam"
VCF_INFREQUENT_RULE_ID = "genolake-raw-vcf-infrequent-access"
ABORT_MULTIPART_RULE_ID = "genolake-abort-incomplete-multipart"
EXPIRE_COPIED_LANDING_RULE_ID = "genolake-expire-copied-landing"
EXPIRE_NONCURRENT_RULE_ID = "genolake-expire-noncurrent-versions"
COPIED_TAG_KEY = "genolake-copied"
COPIED_TAG_VALUE = "true"
"""On a landed object: its bytes are in ``raw/`` (same size, checked), so the landing copy may expire."""
EXPIRED = "EXPIRED"

STANDARD = "STANDARD"
STANDARD_IA = "STANDARD_IA"
DEEP_ARCHIVE = "DEEP_ARCHIVE"

MIN_STANDARD_IA_DAYS = 30
"""S3 rejects a transition to STANDARD_IA (or ONEZONE_IA) earlier than 30 days after creation."""
MIN_TRANSITION_SIZE = 128 * 1024
"""Since September 2024 S3 does not transition objects smaller than 128 KiB (the bucket's
``TransitionDefaultMinimumObjectSize`` default, ``all_storage_classes_128K``); the plan says so."""
TRANSITION_DEFAULT_MINIMUM_OBJECT_SIZE = "all_storage_classes_128K"



# -- settings ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LifecycleSettings:
    archive_after_days: int = 30
    """Days after creation when an archive-tagged original BAM moves to Glacier Deep Archive."""
    vcf_infrequent_after_days: int = 30
    """Days after creation when a raw VCF moves to Standard-IA (S3 minimum: 30)."""
    abort_incomplete_multipart_days: int = 7
    """Days after which an unfinished multipart upload is aborted and its parts deleted."""
    s3_prefix: str = ""
    """The lake's key prefix in the bucket ('' = the whole bucket); rule prefixes start with it."""
    landing_expire_days: int = 7
    """Days after landing when a landed file that was copied into raw/ (tagged genolake-copied=true) is deleted."""
    noncurrent_expire_days: int = 30
    """Days after an object version stopped being current (overwritten or deleted) when it is removed."""

    def __post_init__(self) -> None:
        _require_days("archive_after_days", self.archive_after_days, minimum=0)
        _require_days(
            "vcf_infrequent_after_days", self.vcf_infrequent_after_days, minimum=MIN_STANDARD_IA_DAYS,
            why="S3 does not allow a transition to STANDARD_IA earlier than 30 days after an object is created",
        )
        _require_days("abort_incomplete_multipart_days", self.abort_incomplete_multipart_days, minimum=1)
        _require_days("landing_expire_days", self.landing_expire_days, minimum=1)
        _require_days("noncurrent_expire_days", self.noncurrent_expire_days, minimum=1)
        if not isinstance(self.s3_prefix, str):
            raise ValueError(f"s3_prefix must be a string, not {type(self.s3_prefix).__name__}")
        prefix = self.s3_prefix.strip("/")
        if prefix:
            try:
                require_safe_key(prefix)
            except ValueError as error:
                raise ValueError(f"s3_prefix {self.s3_prefix!r} is not a safe key prefix: {error}") from error

    @property
    def lake_prefix(self) -> str:
        """The S3 key prefix of the lake root: '' or 'some/prefix/'."""
        prefix = self.s3_prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LifecycleSettings:
        """Read ``GENOLAKE_ARCHIVE_AFTER_DAYS``, ``GENOLAKE_VCF_INFREQUENT_AFTER_DAYS``,
        ``GENOLAKE_ABORT_MULTIPART_DAYS``, ``GENOLAKE_LANDING_EXPIRE_DAYS``, ``GENOLAKE_NONCURRENT_EXPIRE_DAYS``
        and ``GENOLAKE_S3_PREFIX`` (unset = the defaults)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"s3_prefix": env.get("GENOLAKE_S3_PREFIX", "")}
        for field_name, variable in (
            ("archive_after_days", "GENOLAKE_ARCHIVE_AFTER_DAYS"),
            ("vcf_infrequent_after_days", "GENOLAKE_VCF_INFREQUENT_AFTER_DAYS"),
            ("abort_incomplete_multipart_days", "GENOLAKE_ABORT_MULTIPART_DAYS"),
            ("landing_expire_days", "GENOLAKE_LANDING_EXPIRE_DAYS"),
            ("noncurrent_expire_days", "GENOLAKE_NONCURRENT_EXPIRE_DAYS"),
        ):
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    values[field_name] = int(raw)
                except ValueError:
                    raise ValueError(f"{variable} must be a whole number of days, not {raw!r}") from None
        return cls(**values)


def _require_days(name: str, value: object, *, minimum: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number of days, not {value!r}")
    if value < minimum:
        reason = f": {why}" if why else ""
        raise ValueError(f"{name} must be at least {minimum} (got {value}){reason}")


# -- the rules --------------------------------------------------------------------------

def lifecycle_rules(settings: LifecycleSettings | None = None) -> list[dict]:
    """The genolake rules, shaped exactly as ``PutBucketLifecycleConfiguration`` takes them
    (``LifecycleConfiguration={"Rules": lifecycle_rules(settings)}``)."""
    settings = settings or LifecycleSettings()
    lake = settings.lake_prefix
    return [
        {
            "ID": ARCHIVE_BAM_RULE_ID,
            "Status": "Enabled",
            "Filter": {
                "And": {
                    "Prefix": lake + RAW_BAM_PREFIX,
                    "Tags": [{"Key": ARCHIVE_TAG_KEY, "Value": ARCHIVE_TAG_VALUE}],
                }
            },
            "Transitions": [{"Days": settings.archive_after_days, "StorageClass": DEEP_ARCHIVE}],
        },
        {
            "ID": VCF_INFREQUENT_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": lake + RAW_VCF_PREFIX},
            "Transitions": [{"Days": settings.vcf_infrequent_after_days, "StorageClass": STANDARD_IA}],
        },
        {
            "ID": ABORT_MULTIPART_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": lake},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": settings.abort_incomplete_multipart_days},
        },
        {
            "ID": EXPIRE_COPIED_LANDING_RULE_ID,
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": lake + LANDING_PREFIX,
                               "Tags": [{"Key": COPIED_TAG_KEY, "Value": COPIED_TAG_VALUE}]}},
            "Expiration": {"Days": settings.landing_expire_days},
        },
        {
            "ID": EXPIRE_NONCURRENT_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": lake},
            "NoncurrentVersionExpiration": {"NoncurrentDays": settings.noncurrent_expire_days},
        },
    ]


def cloudformation_rules(settings: LifecycleSettings | None = None) -> list[dict]:
    """The same rules in the shape of CloudFormation's ``AWS::S3::Bucket``
    ``LifecycleConfiguration.Rules`` (Id/Prefix/TagFilters/TransitionInDays), for the templates."""
    converted = []
    for rule in lifecycle_rules(settings):
        filter_ = rule["Filter"]
        both = filter_.get("And", {})
        out: dict = {"Id": rule["ID"], "Status": rule["Status"]}
        prefix = both.get("Prefix", filter_.get("Prefix", ""))
        if prefix:  # no Prefix (and no TagFilters) = the whole bucket
            out["Prefix"] = prefix
        if both.get("Tags"):
            out["TagFilters"] = [{"Key": t["Key"], "Value": t["Value"]} for t in both["Tags"]]
        if "Transitions" in rule:
            out["Transitions"] = [
                {"TransitionInDays": t["Days"], "StorageClass": t["StorageClass"]} for t in rule["Transitions"]
            ]
        if "AbortIncompleteMultipartUpload" in rule:
            out["AbortIncompleteMultipartUpload"] = dict(rule["AbortIncompleteMultipartUpload"])
        if "Expiration" in rule:
            out["ExpirationInDays"] = rule["Expiration"]["Days"]
        if "NoncurrentVersionExpiration" in rule:
            out["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]}
        converted.append(out)
    return converted


def is_owned_rule(rule: Mapping) -> bool:
    """True for a rule genolake manages (and may replace); False for anyone else's."""
    return str(rule.get("ID", "")).startswith(OWNED_RULE_ID_PREFIX)


# -- the plan (what the rules would do; the local profile's answer) ----------------------

class ObjectLike(Protocol):
    key: str
    size: int
    last_modified: float


@dataclass(frozen=True)
class PlanRow:
    key: str
    """Relative to the lake root."""
    size: int
    current_class: str
    rule_id: str | None
    """The genolake rule whose prefix covers the object (None: no rule, stays where it is)."""
    target_class: str | None
    """Where that rule moves it (None when no rule covers it)."""
    due: datetime | None
    """When S3 would move it (UTC); None when it is not eligible."""
    action: str
    """One of ACTIONS."""
    reason: str

    def as_dict(self) -> dict:
        """JSON-ready (``due`` as an ISO date-time or None), e.g. for Dagster metadata."""
        return {
            "key": self.key, "size": self.size, "current_class": self.current_class, "rule_id": self.rule_id,
            "target_class": self.target_class, "due": self.due.isoformat() if self.due else None,
            "action": self.action, "reason": self.reason,
        }


DUE = "due"
"""Eligible and old enough: moves at S3's next daily lifecycle run."""
SCHEDULED = "scheduled"
"""Eligible; moves on ``due``."""
NOT_ELIGIBLE = "not eligible"
"""Covered by a rule's prefix but not (yet) eligible, e.g. an original whose CRAM is not verified."""
STAYS = "stays"
"""No rule applies: kept in its current storage class."""
ACTIONS = (DUE, SCHEDULED, NOT_ELIGIBLE, STAYS)


def transition_date(last_modified: float, days: int) -> datetime:
    """When S3 transitions an object: creation time plus ``days``, rounded up to the next
    midnight UTC (S3's documented rule)."""
    moment = datetime.fromtimestamp(last_modified, tz=timezone.utc) + timedelta(days=days)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def _as_datetime(now: datetime | float | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    if isinstance(now, (int, float)) and math.isfinite(now):
        return datetime.fromtimestamp(now, tz=timezone.utc)
    raise ValueError(f"now must be a datetime or seconds since the epoch, not {now!r}")


def _under(key: str, prefix: str) -> bool:
    return key.startswith(prefix)


def lifecycle_plan(
    objects: Iterable[ObjectLike],
    tags_of: Callable[[str], Mapping[str, str]],
    settings: LifecycleSettings | None = None,
    now: datetime | float | None = None,
) -> list[PlanRow]:
    """What the rules would do to each object (keys relative to the lake root).

    ``tags_of`` is called only for raw BAMs and landed files (on S3 it is one GET per object). Every object is
    assumed to be in S3 Standard now: the local lake has no tiers, and on S3 this is the plan
    for a freshly written lake.
    """
    settings = settings or LifecycleSettings()
    moment = _as_datetime(now)
    rows = []
    for obj in objects:
        rows.append(_plan_one(obj, tags_of, settings, moment))
    return rows


def _plan_one(obj: ObjectLike, tags_of, settings: LifecycleSettings, now: datetime) -> PlanRow:
    key, size = obj.key, int(obj.size)

    def row(rule_id, target, due, action, reason) -> PlanRow:
        return PlanRow(key=key, size=size, current_class=STANDARD, rule_id=rule_id, target_class=target,
                       due=due, action=action, reason=reason)

    if _under(key, RAW_BAM_PREFIX):
        rule_id, target, days = ARCHIVE_BAM_RULE_ID, DEEP_ARCHIVE, settings.archive_after_days
        tags = dict(tags_of(key) or {})
        value = tags.get(ARCHIVE_TAG_KEY)
        if value is None:
            return row(rule_id, target, None, NOT_ELIGIBLE,
                       f"not verified yet: no {ARCHIVE_TAG_KEY}={ARCHIVE_TAG_VALUE} tag")
        if value != ARCHIVE_TAG_VALUE:
            return row(rule_id, target, None, NOT_ELIGIBLE,
                       f"not verified: tag {ARCHIVE_TAG_KEY}={value!r}, the rule needs {ARCHIVE_TAG_VALUE!r}")
        cram = tags.get(CRAM_TAG_KEY)
        because = f"verified; CRAM at {cram}" if cram else "verified"
    elif _under(key, LANDING_PREFIX) and dict(tags_of(key) or {}).get(COPIED_TAG_KEY) == COPIED_TAG_VALUE:
        due = transition_date(obj.last_modified, settings.landing_expire_days)
        return row(EXPIRE_COPIED_LANDING_RULE_ID, EXPIRED, due, DUE if due <= now else SCHEDULED,
                   "copied into raw/ (same size): the landing copy expires")
    elif _under(key, RAW_VCF_PREFIX):
        rule_id, target, days = VCF_INFREQUENT_RULE_ID, STANDARD_IA, settings.vcf_infrequent_after_days
        because = "raw VCF"
    else:
        hot = next((p for p in HOT_PREFIXES if _under(key, p)), None)
        reason = f"kept hot: nothing under {hot} is ever transitioned" if hot else "no lifecycle rule covers this prefix"
        return row(None, None, None, STAYS, reason)

    if size < MIN_TRANSITION_SIZE:
        return row(rule_id, target, None, NOT_ELIGIBLE,
                   f"{because}, but smaller than 128 KiB: S3 does not transition it "
                   f"({TRANSITION_DEFAULT_MINIMUM_OBJECT_SIZE})")
    due = transition_date(obj.last_modified, days)
    if due <= now:
        return row(rule_id, target, due, DUE, f"{because}; {days} days old: moves at the next lifecycle run")
    return row(rule_id, target, due, SCHEDULED, f"{because}; moves {days} days after it was written")


def plan_summary(rows: Iterable[PlanRow]) -> dict[str, dict[str, int]]:
    """Objects and bytes per action/target, e.g. ``{"due → DEEP_ARCHIVE": {"objects": 2, "bytes": …}}``."""
    summary: dict[str, dict[str, int]] = {}
    for r in rows:
        label = f"{r.action} → {r.target_class}" if r.target_class and r.action in (DUE, SCHEDULED) else r.action
        entry = summary.setdefault(label, {"objects": 0, "bytes": 0})
        entry["objects"] += 1
        entry["bytes"] += r.size
    return summary


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_plan_markdown(rows: Iterable[PlanRow], *, limit: int | None = 200) -> str:
    """A summary table and a per-object table (at most ``limit`` rows; None = all), for Dagster
    metadata and the CLI. The per-object table lists the objects a rule covers and those kept hot
    (CRAMs, references); everything else (tables, registries) is counted in the summary only."""
    rows = list(rows)
    lines = ["| action | objects | size |", "|---|---:|---:|"]
    for label, entry in sorted(plan_summary(rows).items()):
        lines.append(f"| {_cell(label)} | {entry['objects']} | {_human_size(entry['bytes'])} |")
    if not rows:
        lines.append("| (empty lake) | 0 | 0 B |")
    covered = [r for r in rows if r.rule_id is not None or any(_under(r.key, p) for p in HOT_PREFIXES)]
    lines += ["", "| key | size | tier | rule | target | due (UTC) | action | reason |",
              "|---|---:|---|---|---|---|---|---|"]
    shown = covered if limit is None else covered[:limit]
    for r in shown:
        due = r.due.strftime("%Y-%m-%d") if r.due else "—"
        lines.append(
            f"| {_cell(r.key)} | {_human_size(r.size)} | {r.current_class} | {_cell(r.rule_id or '—')} | "
            f"{_cell(r.target_class or '—')} | {due} | {r.action} | {_cell(r.reason)} |"
        )
    if not covered:
        lines.append("| (no raw BAM, raw VCF, CRAM or reference in the lake) | | | | | | | |")
    elif len(shown) < len(covered):
        lines.append(f"| … and {len(covered) - len(shown)} more | | | | | | | |")
    return "\n".join(lines) + "\n"
