"""Quarantine: a bad input is copied aside with a machine-readable reason; nothing is deleted."""

from __future__ import annotations

import json
import re

from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.lake.layout import ALIGNMENT_SUFFIXES, QUARANTINE_PREFIX, VCF_SUFFIXES
from genolake_assets.lib.lake.registry import utc_now

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.=-]")
_UNSAFE_FOLDER_CHARS = re.compile(r"[^A-Za-z0-9_.=/-]")


def safe_file_name(name: str) -> str:
    cleaned = _UNSAFE_NAME_CHARS.sub("_", name.rsplit("/", 1)[-1]).lstrip(".") or "file"
    return cleaned[:200]


_TYPE_SUFFIXES = sorted(VCF_SUFFIXES + ALIGNMENT_SUFFIXES, key=len, reverse=True)


def stored_file_name(source_key: str, pseudonymous: bool, stand_in: str) -> str:
    """The file name a copy of a landed file gets in the lake: the uploader's (made safe), or when
    pseudonymising ``stand_in`` plus the file's type suffix, since an uploader's file name is often
    the sample name itself (docs/phi.md)."""
    if not pseudonymous:
        return safe_file_name(source_key)
    lowered = source_key.lower()
    suffix = next((s for s in _TYPE_SUFFIXES if lowered.endswith(s)), "")
    return safe_file_name(stand_in + suffix)


def quarantine(store, source_key: str, problem: InputProblem, *, folder: str, name: str | None = None) -> dict:
    """Copy ``source_key`` to ``quarantine/<folder>/<name>`` (by default the file's own name) with
    ``reason.json``; return the reason."""
    base = f"{QUARANTINE_PREFIX}{_UNSAFE_FOLDER_CHARS.sub('_', folder)}/"
    name = name or safe_file_name(source_key)
    reason = {**problem.as_dict(), "source_key": source_key, "source_uri": store.uri(source_key),
              "quarantined_at": utc_now(), "quarantined_copy": store.uri(base + name)}
    if store.exists(source_key):
        store.copy(source_key, base + name)
    store.write_bytes(base + "reason.json", json.dumps(reason, indent=2, sort_keys=True).encode())
    return reason
