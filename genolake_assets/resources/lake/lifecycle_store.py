"""Put the lake's lifecycle rules (``lib/lake/lifecycle.py``) on its S3 bucket.

``PutBucketLifecycleConfiguration`` replaces the bucket's whole configuration, so a naive PUT
would delete rules that other teams or tools keep on a shared bucket. The applier reads the
current rules first, keeps every rule whose ID does not start with ``genolake-``, replaces
genolake's own (including ones a newer version no longer has), and leaves the bucket's
``TransitionDefaultMinimumObjectSize`` as it was. A foreign rule in the deprecated form
(top-level ``Prefix``) is rewritten to the equivalent ``Filter`` form, because S3 rejects a
configuration that mixes the two. Applying the same rules twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import ClientError

from genolake_assets.lib.lake.lifecycle import OWNED_RULE_ID_PREFIX, is_owned_rule
from genolake_assets.resources.lake.s3_store import s3_client

_NO_CONFIGURATION_CODES = frozenset({"NoSuchLifecycleConfiguration"})


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class S3LifecycleApplier:
    """Reads and writes one bucket's lifecycle configuration, owning only ``genolake-*`` rules."""

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str | None = None, *, client=None):
        if not bucket:
            raise ValueError("an S3 bucket name is required to apply lifecycle rules")
        self.bucket = bucket
        self.client = client if client is not None else s3_client(endpoint_url, region)

    def _read(self) -> tuple[list[dict], str | None]:
        try:
            response = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except ClientError as error:
            if _error_code(error) in _NO_CONFIGURATION_CODES:
                return [], None
            raise
        return list(response.get("Rules", [])), response.get("TransitionDefaultMinimumObjectSize")

    def current(self) -> list[dict]:
        """Every rule on the bucket now (genolake's and anyone else's); [] when there is none."""
        return self._read()[0]

    def apply(self, rules: Sequence[dict]) -> dict:
        """Make genolake's rules on the bucket exactly ``rules``, keeping foreign rules.

        Returns ``{"bucket", "changed", "applied", "kept", "removed", "rules"}``: the IDs written,
        the foreign IDs kept, genolake IDs dropped because ``rules`` no longer has them, and the
        bucket's rules as GetBucketLifecycleConfiguration reads them back afterwards.
        """
        rules = [dict(rule) for rule in rules]
        ids = [str(rule.get("ID", "")) for rule in rules]
        strangers = [rule_id or "(no ID)" for rule_id in ids if not rule_id.startswith(OWNED_RULE_ID_PREFIX)]
        if strangers:
            raise ValueError(
                f"refusing to apply rules whose ID does not start with {OWNED_RULE_ID_PREFIX!r} "
                f"({', '.join(strangers)}): the applier would not recognise them as its own next time"
            )
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"duplicate lifecycle rule IDs: {', '.join(duplicates)}")

        existing, minimum_size = self._read()
        foreign = [_with_filter(rule) for rule in existing if not is_owned_rule(rule)]
        ours_before = [rule for rule in existing if is_owned_rule(rule)]
        desired = foreign + rules
        changed = _canonical(ours_before) != _canonical(rules)
        if changed:
            self._write(desired, minimum_size)
        removed = sorted({str(rule.get("ID")) for rule in ours_before} - set(ids))
        return {
            "bucket": self.bucket,
            "changed": changed,
            "applied": ids,
            "kept": [str(rule.get("ID", "")) for rule in foreign],
            "removed": removed,
            "rules": self.current(),
        }

    def _write(self, rules: list[dict], minimum_size: str | None) -> None:
        try:
            if not rules:
                # S3 rejects an empty rule list; no rules at all means no configuration.
                self.client.delete_bucket_lifecycle(Bucket=self.bucket)
                return
            extra = {"TransitionDefaultMinimumObjectSize": minimum_size} if minimum_size else {}
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": rules}, **extra
            )
        except ClientError as error:
            raise RuntimeError(
                f"could not put the lifecycle configuration on s3://{self.bucket}: "
                f"{_error_code(error)} {error.response.get('Error', {}).get('Message', '')}".rstrip()
            ) from error


def _with_filter(rule: dict) -> dict:
    """A rule in the deprecated form (top-level ``Prefix``, no ``Filter``) rewritten to the
    equivalent ``Filter: {Prefix}``: S3 rejects a configuration that mixes the two forms, and
    genolake's rules use ``Filter``. Other rules are returned unchanged."""
    if "Filter" in rule or "Prefix" not in rule:
        return rule
    modern = {key: value for key, value in rule.items() if key != "Prefix"}
    modern["Filter"] = {"Prefix": rule["Prefix"]}
    return modern


def _canonical(rules: Sequence[dict]) -> list:
    """Rules compared by content, in ID order (S3 may return them in another order)."""
    return sorted((_freeze(rule) for rule in rules), key=repr)


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value
