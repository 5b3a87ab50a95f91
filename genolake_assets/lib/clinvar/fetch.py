"""Fetching a reference file (ClinVar) from an allowed URL or an operator's folder into a local file.

The ClinVar ``uri`` is run config: anyone who can launch a run chooses it. So a source is taken only from
what the operator allowed (docs/security.md): URL prefixes (NCBI's ClinVar folder by default), checked again
on every redirect, and local folders (none by default). Size and total time are capped, and no error ever
quotes what was read.
"""

from __future__ import annotations

import email.utils
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

NCBI_CLINVAR_PREFIX = "https://ftp.ncbi.nlm.nih.gov/pub/clinvar/"
REMOTE_SCHEMES = ("https", "http", "ftp")
DEFAULT_PORTS = {"https": 443, "http": 80, "ftp": 21}
DEFAULT_MAX_BYTES = 4 << 30  # variant_summary.txt.gz is ~0.4 GB, the GRCh38 ClinVar VCF ~0.2 GB
DEFAULT_MAX_SECONDS = 1800.0
CHUNK = 1 << 20


class SourceRefused(ValueError):
    """The source is outside what the operator allowed, or broke a size or time limit."""


@dataclass(frozen=True)
class SourcePolicy:
    allowed_prefixes: tuple[str, ...] = (NCBI_CLINVAR_PREFIX,)
    local_dirs: tuple[Path, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    max_seconds: float = DEFAULT_MAX_SECONDS
    _parsed: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        parsed = []
        for prefix in self.allowed_prefixes:
            parts = urllib.parse.urlsplit(prefix)
            if parts.scheme not in REMOTE_SCHEMES or not parts.hostname or parts.username or parts.password \
                    or parts.query or parts.fragment or _has_dot_segment(parts.path) or not prefix.endswith("/"):
                raise ValueError(f"allowed source {prefix!r} must be an http(s) or ftp URL prefix with a host, "
                                 "ending in '/', with no user, query or '..'")
            parsed.append((parts.scheme, parts.hostname.lower(), parts.port or DEFAULT_PORTS[parts.scheme],
                           parts.path or "/"))
        for folder in self.local_dirs:
            if not Path(folder).is_dir():
                raise ValueError(f"allowed local source folder {str(folder)!r} is not a folder")
        if self.max_bytes < 1 or self.max_seconds <= 0:
            raise ValueError("source size and time limits must be positive")
        object.__setattr__(self, "_parsed", tuple(parsed))

    def check_url(self, url: str) -> str:
        """``url`` if an allowed prefix covers it; else :class:`SourceRefused`."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in REMOTE_SCHEMES and parts.hostname and not (parts.username or parts.password) \
                and not _has_dot_segment(parts.path):
            where = (parts.scheme, parts.hostname.lower(), parts.port or DEFAULT_PORTS[parts.scheme])
            for scheme, host, port, path in self._parsed:
                if where == (scheme, host, port) and parts.path.startswith(path):
                    return url
        raise SourceRefused(f"source {_shown(url)} is not under an allowed source "
                            f"({', '.join(self.allowed_prefixes) or 'none'}); the operator sets "
                            "GENOLAKE_CLINVAR_SOURCES")

    def check_path(self, uri: str) -> Path:
        """The real file ``uri`` names, if it lies in an allowed folder (symlinks resolved)."""
        parsed = urllib.parse.urlsplit(uri)
        path = Path(urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else uri)
        if not self.local_dirs:
            raise SourceRefused(f"source {_shown(uri)}: local files are not enabled; the operator allows a "
                                "folder with GENOLAKE_CLINVAR_LOCAL_DIRS")
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise FileNotFoundError(f"ClinVar source {_shown(uri)} is not a readable file") from None
        if not any(real.is_relative_to(Path(folder).resolve()) for folder in self.local_dirs):
            raise SourceRefused(f"source {_shown(uri)} is not in an allowed folder "
                                f"({', '.join(str(d) for d in self.local_dirs)})")
        if not real.is_file():
            raise FileNotFoundError(f"ClinVar source {_shown(uri)} is not a readable file")
        return real


def _has_dot_segment(path: str) -> bool:
    return ".." in urllib.parse.unquote(path).split("/")


def _shown(uri: str) -> str:
    """The uri as given, without control characters, shortened."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in uri)
    return repr(clean if len(clean) <= 300 else clean[:300] + "…")


def file_name_of(uri: str) -> str:
    name = Path(urllib.parse.urlparse(uri).path).name
    if not name:
        raise ValueError(f"{_shown(uri)} does not name a file")
    return name


def fetch(uri: str, dest: Path, policy: SourcePolicy | None = None) -> str | None:
    """Copy ``uri`` to ``dest``, atomically, if ``policy`` allows it and within its size and time limits.

    Returns the server's Last-Modified date (YYYY-MM-DD) when there is one: NCBI's current
    ``variant_summary.txt.gz`` carries its release date nowhere else.
    """
    policy = policy or SourcePolicy()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        if urllib.parse.urlsplit(uri).scheme in REMOTE_SCHEMES:
            last_modified = _download(policy.check_url(uri), partial, policy)
        else:
            source = policy.check_path(uri)
            if source.stat().st_size > policy.max_bytes:
                raise SourceRefused(f"source {_shown(uri)} is larger than the {policy.max_bytes:,}-byte limit")
            with source.open("rb") as stream, partial.open("wb") as out:
                _copy(stream, out, uri, policy, time.monotonic() + policy.max_seconds)
            last_modified = None
        partial.replace(dest)
        return last_modified
    finally:
        partial.unlink(missing_ok=True)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the policy allows (NCBI's mirrors included, if listed)."""

    def __init__(self, policy: SourcePolicy):
        self.policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.policy.check_url(urllib.parse.urljoin(req.full_url, newurl))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, partial: Path, policy: SourcePolicy) -> str | None:
    deadline = time.monotonic() + policy.max_seconds
    opener = urllib.request.build_opener(_CheckedRedirects(policy))
    try:
        with opener.open(url, timeout=min(60.0, policy.max_seconds)) as response, partial.open("wb") as out:
            declared = response.headers.get("Content-Length") if response.headers else None
            if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                raise SourceRefused(f"source {_shown(url)} declares {int(declared):,} bytes, over the "
                                    f"{policy.max_bytes:,}-byte limit")
            _copy(response, out, url, policy, deadline)
            header = response.headers.get("Last-Modified") if response.headers else None
    except urllib.error.HTTPError as error:
        raise SourceRefused(f"source {_shown(url)}: the server answered {error.code}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, SourceRefused):
            raise error.reason from None
        raise SourceRefused(f"source {_shown(url)} could not be fetched: {error.reason}") from None
    if not header:
        return None
    try:
        return email.utils.parsedate_to_datetime(header).date().isoformat()
    except (TypeError, ValueError):
        return None


def _copy(stream, out, uri: str, policy: SourcePolicy, deadline: float) -> None:
    copied = 0
    read = getattr(stream, "read1", stream.read)  # what has arrived: a trickling server cannot outwait the deadline
    while chunk := read(CHUNK):
        copied += len(chunk)
        if copied > policy.max_bytes:
            raise SourceRefused(f"source {_shown(uri)} is larger than the {policy.max_bytes:,}-byte limit")
        if time.monotonic() > deadline:
            raise SourceRefused(f"source {_shown(uri)} took longer than the {policy.max_seconds:.0f}-second limit")
        out.write(chunk)
