"""Versions of one landed alignment: a re-landed BAM the lake already holds, and CRAMs no result vouches for.

A version is named after the landed object's etag. On S3 an identical re-upload keeps its etag (same part
size), so it is the same version; a local file copied again gets a new mtime, hence a new etag. Copying
and compressing it again would duplicate the raw copy, the CRAM and the catalog entries, so a landed BAM
whose bytes equal an earlier version's raw copy is that version (checked by sha256, only where the store
reads files in place: streaming a 100 GB BAM through the orchestrator to learn it is a repeat would cost
more than it saves).
"""

from __future__ import annotations

import hashlib
import json

from genolake_assets.lib.lake.identifiers import require_safe_sample_id
from genolake_assets.lib.lake.layout import RAW_BAM_PREFIX, compression_result_key, cram_key


def raw_copies(store, alignment_id: str) -> dict[str, str]:
    """version → raw copy key, for every version of ``alignment_id`` copied into ``raw/bam/``."""
    prefix = f"{RAW_BAM_PREFIX}{require_safe_sample_id(alignment_id)}/"
    copies = {}
    for obj in store.list_objects(prefix):
        version, _, name = obj.key[len(prefix):].partition("/")
        if name and "/" not in name:
            copies[version] = obj.key
    return copies


def verified_result(store, alignment_id: str, version: str) -> dict | None:
    """The version's compression result, if it says verified."""
    key = compression_result_key(alignment_id, version)
    if not store.exists(key):
        return None
    result = json.loads(store.read_bytes(key))
    return result if result.get("status") == "verified" else None


def _sha256(store, key: str) -> str:
    digest = hashlib.sha256()
    with store.open_read(key) as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def same_content_version(store, alignment_id: str, landed_key: str, landed_size: int) -> tuple[str, str] | None:
    """(version, raw copy key) of an earlier version whose raw copy holds exactly the landed bytes, or None.

    Only where the store reads in place (a local lake); the landed file is hashed at most once, and an
    earlier copy's sha256 comes from its verified compression result when there is one."""
    if store.local_path(landed_key) is None:
        return None
    candidates = [(version, key) for version, key in sorted(raw_copies(store, alignment_id).items())
                  if (head := store.head(key)) is not None and head.size == landed_size]
    if not candidates:
        return None
    landed = _sha256(store, landed_key)
    for version, key in candidates:
        result = verified_result(store, alignment_id, version)
        known = (result or {}).get("input", {}).get("sha256")
        if (known or _sha256(store, key)) == landed:
            return version, key
    return None


def unvouched_crams(store, alignment_id: str, keep_version: str) -> list[str]:
    """CRAM files (and indexes) of versions other than ``keep_version`` that no verified result vouches for:
    what a compression killed between publishing its CRAM and writing its result left. They were never
    catalogued and their BAM never tagged; the BAM's raw copy stays, so nothing is lost by removing them."""
    orphans = []
    for version, raw_key in sorted(raw_copies(store, alignment_id).items()):
        if version == keep_version:
            continue
        cram = cram_key(alignment_id, version, raw_key.rsplit("/", 1)[-1])
        published = store.head(cram)
        if published is None:
            continue
        result = verified_result(store, alignment_id, version)
        if result is None or result.get("output", {}).get("size") != published.size:
            orphans += [key for key in (cram, cram + ".crai") if store.exists(key)]
    return orphans
