"""Which landed files are new since the last look (pure: no Dagster, no storage)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from genolake_assets.lib.lake.layout import is_vcf_key


@dataclass
class LandingCursor:
    """Files already handled, by key → etag. A changed etag means a re-upload: handled again.

    Keys that disappear from the landing zone are forgotten, so the cursor stays the size of
    the landing zone, not of history.
    """

    seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> LandingCursor:
        if not raw:
            return cls()
        return cls(seen=dict(json.loads(raw).get("seen", {})))

    def dump(self) -> str:
        return json.dumps({"seen": self.seen}, sort_keys=True)


def new_landed_files(listing, cursor: LandingCursor, limit: int,
                     accept: Callable[[str], bool] = is_vcf_key) -> tuple[list, LandingCursor]:
    """The first ``limit`` files ``accept`` takes (VCFs by default; in key order) not yet handled at
    their current etag, and the cursor to store once they have been handled."""
    present = {obj.key: obj for obj in listing if accept(obj.key)}
    fresh = [obj for key, obj in sorted(present.items()) if cursor.seen.get(key) != obj.etag][:limit]
    kept = {key: etag for key, etag in cursor.seen.items() if key in present}
    kept.update({obj.key: obj.etag for obj in fresh})
    return fresh, LandingCursor(seen=kept)


def mark_copied_into_raw(store, landing_key: str, landing_etag: str, raw_key: str) -> bool:
    """Tag the landed object ``genolake-copied=true`` (so the lifecycle rule may expire it) when it is
    still the version that was copied and ``raw_key`` holds as many bytes. Returns whether it was tagged.

    The etag check matters: a file re-uploaded since the copy is a new version the lake has not
    taken in yet, and must not expire.
    """
    from genolake_assets.lib.lake.lifecycle import COPIED_TAG_KEY, COPIED_TAG_VALUE

    landed, copied = store.head(landing_key), store.head(raw_key)
    if landed is None or copied is None or landed.etag != landing_etag or landed.size != copied.size:
        return False
    tags = store.get_tags(landing_key)
    if tags.get(COPIED_TAG_KEY) != COPIED_TAG_VALUE:
        store.put_tags(landing_key, {**tags, COPIED_TAG_KEY: COPIED_TAG_VALUE})
    return True
