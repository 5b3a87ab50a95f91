"""Quarantine: a bad input is copied aside with a machine-readable reason; nothing is deleted."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

from genolake_assets.lib.errors import InputProblem
from genolake_assets.lib.lake.identifiers import InvalidIdentifierError, is_safe_key
from genolake_assets.lib.lake.layout import ALIGNMENT_SUFFIXES, QUARANTINE_PREFIX, VCF_SUFFIXES
from genolake_assets.lib.lake.registry import utc_now

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.=-]")
_UNSAFE_FOLDER_CHARS = re.compile(r"[^A-Za-z0-9_.=/-]")


def safe_file_name(name: str) -> str:
    """The last segment of ``name`` as an object name the lake may write: accents dropped (``résumé`` →
    ``resume``), any other character outside ``[A-Za-z0-9_.=-]`` (spaces, parentheses, other scripts) made
    ``_``, no leading dot, at most 200 characters."""
    folded = unicodedata.normalize("NFKD", name.rsplit("/", 1)[-1])
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    cleaned = _UNSAFE_NAME_CHARS.sub("_", folded).lstrip(".") or "file"
    return cleaned[:200]


def shown_name(text: str) -> str:
    """``text`` with control characters and undecodable bytes escaped (``\\n``, ``\\udce9``): safe in a log line."""
    return "".join(char if char.isprintable() or char == " " else ascii(char)[1:-1] for char in text)


def shown_uri(store, key: str) -> str:
    """``store.uri(key)``; for a key the store refuses, the lake's root and the key escaped (for reasons and logs)."""
    try:
        return store.uri(key)
    except ValueError:
        return f"{store.root_uri.rstrip('/')}/{shown_name(key)}"


def landed_file_problem(store, key: str, error: BaseException) -> InputProblem:
    """Why a landing sensor refuses the landed file ``key`` after ``error``: the error's own problem when it has
    one (a bad VCF header, a bad BAM), else what kind of failure it was, with its message."""
    detail = getattr(error, "detail", None)
    if isinstance(detail, InputProblem):
        return detail
    where = shown_uri(store, key)
    if not is_safe_key(key):
        return InputProblem(file=where, code="unsafe_landed_name",
                            problem="the file name has control characters, a backslash or bytes that are not UTF-8: "
                                    "it cannot be read safely; rename it")
    if isinstance(error, InvalidIdentifierError):
        return InputProblem(file=where, problem=str(error), code="unsafe_sample_name")
    return InputProblem(file=where, problem=f"cannot read the landed file ({type(error).__name__}: {error})",
                        code="unreadable_landed_file")


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


def quarantine(store, source_key: str, problem: InputProblem, *, folder: str, name: str | None = None,
               copy: bool = True) -> dict:
    """Copy ``source_key`` to ``quarantine/<folder>/<name>`` (by default the file's own name, made safe) with
    ``reason.json``; return the reason (and ``reason_uri``, where it was written).

    A folder that already holds another file's reason is never overwritten: this one gets the folder plus a
    hash of its key. A file that cannot be copied (gone, a key the store refuses, a link leading out of the
    lake) is recorded with ``quarantined_copy: null`` and ``copy_refused`` saying why; ``copy=False`` records
    the reason only (a BAM is not duplicated to say it is bad).
    """
    base = _folder_for(store, f"{QUARANTINE_PREFIX}{_UNSAFE_FOLDER_CHARS.sub('_', folder)}/", source_key)
    name = name or safe_file_name(source_key)
    reason = {**problem.as_dict(), "source_key": source_key, "source_uri": shown_uri(store, source_key),
              "quarantined_at": utc_now(), "quarantined_copy": None}
    if copy:
        try:
            if store.exists(source_key):
                store.copy(source_key, base + name)
                reason["quarantined_copy"] = store.uri(base + name)
            else:
                reason["copy_refused"] = "not a regular file in the lake (gone since it was listed?)"
        except Exception as error:  # noqa: BLE001 - not copying is recorded; the reason must still be written
            reason["copy_refused"] = f"{type(error).__name__}: {error}"
    store.write_bytes(base + "reason.json", json.dumps(reason, indent=2, sort_keys=True).encode())
    return {**reason, "reason_uri": store.uri(base + "reason.json")}


def quarantine_landed(store, obj, problem: InputProblem, *, token: str | None = None, copy: bool = True) -> dict:
    """Quarantine a landed file (``obj``: its listing) that a landing sensor refused, under
    ``quarantine/landing/<file name>-<etag>/``; when pseudonymising (``token``: the file's keyed token) under
    ``<token>-<etag>`` with the copy named ``<token><type suffix>``, so no key carries the uploader's name."""
    label = token or safe_file_name(obj.key)
    return quarantine(store, obj.key, problem, folder=f"landing/{label}-{obj.etag[:16]}",
                      name=stored_file_name(obj.key, token is not None, token or ""), copy=copy)


def _folder_for(store, base: str, source_key: str) -> str:
    """``base``, unless it already holds the reason of another file: then ``base`` + a hash of ``source_key``."""
    held = base + "reason.json"
    try:
        holder = json.loads(store.read_bytes(held)).get("source_key") if store.exists(held) else source_key
    except (OSError, ValueError):
        holder = None
    if holder == source_key:
        return base
    digest = hashlib.sha256(source_key.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{base.rstrip('/')}-{digest}/"
