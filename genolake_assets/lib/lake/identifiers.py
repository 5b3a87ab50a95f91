"""Sample identifiers that are safe to put in object keys, partition keys and SQL.

VCF sample names are free text (the 1000 Genomes cohort has ``C1046::HG02024``; an
attacker could write ``../x`` or ``a'; drop table``). Every name is mapped to a
``sample_id`` that matches :data:`SAMPLE_ID_PATTERN`. Names that already match are
kept as they are; any other name becomes a readable slug plus a hash of the full
name, so two different names can never share an id by accident.

Pseudonymisation (``GENOLAKE_PSEUDONYMISE=1``, docs/phi.md) swaps that mapping for a keyed hash:
every id is ``p`` + 24 hex characters of HMAC-SHA256(key, name), so object keys and partition keys
carry no sample name, and only the samples table (which keeps ``sample_name``) maps back.
:class:`SampleIdPolicy` is what the landing sensors mint ids with; the default policy is the
unkeyed mapping above, unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field

SAMPLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
_SLUG_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]+")
_HASH_CHARS = 10


class InvalidIdentifierError(ValueError):
    """An identifier that would be unsafe in a path, partition key or SQL statement."""


def is_safe_sample_id(value: str) -> bool:
    return bool(SAMPLE_ID_PATTERN.match(value)) and ".." not in value


def _require_usable_name(name: str) -> None:
    if not name or name != name.strip() or "\t" in name or "\n" in name:
        raise InvalidIdentifierError(f"sample name {name!r} is empty or has surrounding whitespace")


def sample_id_for(name: str) -> str:
    """The ``sample_id`` for a VCF sample name (deterministic, injective in practice)."""
    _require_usable_name(name)
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
    digest = hashlib.sha256(f"{source_key}\0{name}".encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{base[:80]}-f{digest}"


PSEUDONYM_PREFIX = "p"
_PSEUDONYM_HEX_CHARS = 24  # 96 bits: no accidental collision in any realistic cohort


def _keyed_id(key: bytes, message: str) -> str:
    if not key:
        raise ValueError("a pseudonym key must not be empty")
    digest = hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_PSEUDONYM_HEX_CHARS]


def pseudonymous_id(name: str, key: bytes) -> str:
    """``p`` + the first 24 hex characters of HMAC-SHA256(``key``, ``name``): stable for a key, says
    nothing about the name to anyone without the key, and matches :data:`SAMPLE_ID_PATTERN`."""
    _require_usable_name(name)
    return _keyed_id(key, name)


def pseudonymous_id_from_file(name: str, source_key: str, key: bytes) -> str:
    """The pseudonymous id for a sample name already taken by another file (cf. :func:`sample_id_from_file`)."""
    _require_usable_name(name)
    return _keyed_id(key, f"{source_key}\0{name}")


@dataclass(frozen=True)
class SampleIdPolicy:
    """How a landing sensor turns a sample name (or a BAM's file stem) into an id.

    Without a key: :func:`sample_id_for` / :func:`sample_id_from_file` (names kept when safe). With a
    key: :func:`pseudonymous_id` / :func:`pseudonymous_id_from_file`. The key never appears in the repr.
    """

    key: bytes | None = field(default=None, repr=False)

    @property
    def pseudonymous(self) -> bool:
        return self.key is not None

    def sample_id(self, name: str) -> str:
        return sample_id_for(name) if self.key is None else pseudonymous_id(name, self.key)

    def sample_id_from_file(self, name: str, source_key: str) -> str:
        if self.key is None:
            return sample_id_from_file(name, source_key)
        return pseudonymous_id_from_file(name, source_key, self.key)

    def file_token(self, source_key: str) -> str:
        """An id for a landed file itself (a quarantine folder for a file with no readable sample)."""
        if self.key is None:
            raise ValueError("file_token is only for pseudonymising policies")
        return _keyed_id(self.key, f"\0file\0{source_key}")


DEFAULT_POLICY = SampleIdPolicy()
MIN_KEY_BYTES = 16
_HEX = re.compile(r"^[0-9A-Fa-f]+\Z")


def parse_pseudonym_key(text: str | bytes, source: str) -> bytes:
    """The key bytes of a key written as text: hex if it is all hex digits (even length), else base64
    (standard or URL-safe, padding optional). ``source`` names where it came from (an environment
    variable, a file, a secret) for the error; the key itself is never put in a message."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{source}: the pseudonym key must be hex or base64 text") from None
    text = "".join(text.split())
    if not text:
        raise ValueError(f"{source} is empty: the pseudonym key must be hex or base64 text")
    if _HEX.match(text) and len(text) % 2 == 0:
        key = bytes.fromhex(text)
    else:
        try:
            key = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{source}: the pseudonym key is neither hex nor base64 text") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{source}: the pseudonym key is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed "
                         f"(e.g. `openssl rand -hex 32`)")
    return key


def require_safe_sample_id(value: str) -> str:
    """Return ``value`` if it is a valid sample id; raise otherwise."""
    if not isinstance(value, str) or not is_safe_sample_id(value):
        raise InvalidIdentifierError(
            f"{value!r} is not a valid sample id (allowed: {SAMPLE_ID_PATTERN.pattern}, no '..')"
        )
    return value


_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.=-]+\Z")


LANDED_ROOT = "landing"
"""The first segment of the keys uploaders choose (``LANDING_PREFIX`` in layout.py, which imports this module)."""
_REFUSED_IN_LANDED_NAMES = ("C", "Zl", "Zp")  # control, format, surrogate, private, unassigned; line/paragraph breaks


def is_landed_name(segment: str) -> bool:
    """A file or folder name as an uploader wrote it under ``landing/``: any printable text (spaces, parentheses,
    accents, other scripts), but no control or format characters (newlines, NUL, bidi overrides), no undecodable
    bytes, no backslash, and not '.' or '..'. The lake never writes such a name itself: every key it derives
    from one goes through ``safe_file_name`` (lib/lake/quarantine.py) or a sample id."""
    if segment in ("", ".", "..") or "\\" in segment:
        return False
    return not any(unicodedata.category(char).startswith(_REFUSED_IN_LANDED_NAMES) for char in segment)


def require_safe_key(key: str) -> str:
    """Validate an object key relative to the lake root: no absolute paths, no '..'.

    Every segment is ``[A-Za-z0-9_.=-]+``, except below ``landing/``, where names are the uploaders' own and need
    only be :func:`is_landed_name` (so ``landing/my sample (1).vcf.gz`` can be read; keys derived from it are safe).
    """
    if not key or key.startswith("/") or "\\" in key:
        raise InvalidIdentifierError(f"unsafe object key {key!r}")
    segments = key.split("/")
    landed = segments[0] == LANDED_ROOT
    for index, segment in enumerate(segments):
        if segment in ("", ".", ".."):
            raise InvalidIdentifierError(f"unsafe object key {key!r} (segment {segment!r})")
        if _KEY_SEGMENT.fullmatch(segment) or (landed and index > 0 and is_landed_name(segment)):
            continue
        raise InvalidIdentifierError(f"unsafe object key {key!r} (segment {segment!r})")
    return key


def is_safe_key(key: str) -> bool:
    try:
        require_safe_key(key)
    except InvalidIdentifierError:
        return False
    return True
