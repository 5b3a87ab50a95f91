"""Sample identifiers that are safe to put in object keys, partition keys and SQL.

VCF sample names are free text (the 1000 Genomes cohort has ``C1046::HG02024``; an
attacker could write ``../x`` or ``a'; drop table``). Every name is mapped to a
``sample_id`` that matches :data:`SAMPLE_ID_PATTERN`. Names that already match are
kept as they are; any other name becomes a readable slug plus a hash of the full
name, so two different names can never share an id by accident.
"""

from __future__ import annotations

import hashlib
import re

SAMPLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SLUG_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]+")
_HASH_CHARS = 10


class InvalidIdentifierError(ValueError):
    """An identifier that would be unsafe in a path, partition key or SQL statement."""


def is_safe_sample_id(value: str) -> bool:
    return bool(SAMPLE_ID_PATTERN.match(value)) and ".." not in value


def sample_id_for(name: str) -> str:
    """The ``sample_id`` for a VCF sample name (deterministic, injective in practice)."""
    if not name or name != name.strip() or "\t" in name or "\n" in name:
        raise InvalidIdentifierError(f"sample name {name!r} is empty or has surrounding whitespace")
    if is_safe_sample_id(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    slug = _SLUG_DISALLOWED.sub("_", name).strip("_-")[:60] or "sample"
    if not slug[0].isalnum():
        slug = "s" + slug
    return f"{slug}-{digest}"


def sample_id_from_file(name: str, source_key: str) -> str:
    """The id for a sample name already taken by another file: the name plus a hash of the file's key.

    The same person sequenced twice (two files, one name) must never overwrite the other.
    """
    base = sample_id_for(name)
    digest = hashlib.sha256(f"{source_key}\0{name}".encode()).hexdigest()[:_HASH_CHARS]
    return f"{base[:80]}-f{digest}"


def require_safe_sample_id(value: str) -> str:
    """Return ``value`` if it is a valid sample id; raise otherwise."""
    if not isinstance(value, str) or not is_safe_sample_id(value):
        raise InvalidIdentifierError(
            f"{value!r} is not a valid sample id (allowed: {SAMPLE_ID_PATTERN.pattern}, no '..')"
        )
    return value


_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.=-]+$")


def require_safe_key(key: str) -> str:
    """Validate an object key relative to the lake root: no absolute paths, no '..'."""
    if not key or key.startswith("/") or "\\" in key:
        raise InvalidIdentifierError(f"unsafe object key {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _KEY_SEGMENT.match(segment):
            raise InvalidIdentifierError(f"unsafe object key {key!r} (segment {segment!r})")
    return key
