"""Quarantine: a bad input is copied aside with a machine-readable reason; nothing is deleted."""

from __future__ import annotations

import json
import re

from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.lake_layout import QUARANTINE_PREFIX
from genolake_assets.lib.registry import utc_now

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.=-]")
_UNSAFE_FOLDER_CHARS = re.compile(r"[^A-Za-z0-9_.=/-]")


def safe_file_name(name: str) -> str:
    cleaned = _UNSAFE_NAME_CHARS.sub("_", name.rsplit("/", 1)[-1]).lstrip(".") or "file"
    return cleaned[:200]


def quarantine(store, source_key: str, problem: InputProblem, *, folder: str) -> dict:
    """Copy ``source_key`` to ``quarantine/<folder>/`` with ``reason.json``; return the reason."""
    base = f"{QUARANTINE_PREFIX}{_UNSAFE_FOLDER_CHARS.sub('_', folder)}/"
    name = safe_file_name(source_key)
    reason = {**problem.as_dict(), "source_key": source_key, "source_uri": store.uri(source_key),
              "quarantined_at": utc_now(), "quarantined_copy": store.uri(base + name)}
    if store.exists(source_key):
        store.copy(source_key, base + name)
    store.write_bytes(base + "reason.json", json.dumps(reason, indent=2, sort_keys=True).encode())
    return reason
