"""Fetching a reference file (ClinVar) from a local path or a URL into a local file."""

from __future__ import annotations

import email.utils
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

REMOTE_SCHEMES = ("http", "https", "ftp")


def file_name_of(uri: str) -> str:
    name = Path(urllib.parse.urlparse(uri).path).name
    if not name:
        raise ValueError(f"{uri!r} does not name a file")
    return name


def fetch(uri: str, dest: Path, timeout: float = 300.0) -> str | None:
    """Copy ``uri`` (a local path, file://, http(s):// or ftp:// URL) to ``dest``, atomically.

    Returns the server's Last-Modified date (YYYY-MM-DD) when there is one: NCBI's current
    ``variant_summary.txt.gz`` carries its release date nowhere else.
    """
    parsed = urllib.parse.urlparse(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    last_modified = None
    if parsed.scheme in REMOTE_SCHEMES:
        with urllib.request.urlopen(uri, timeout=timeout) as response, partial.open("wb") as out:  # noqa: S310 - only http/https/ftp reach here (REMOTE_SCHEMES)
            shutil.copyfileobj(response, out, length=1 << 20)
            header = response.headers.get("Last-Modified") if response.headers else None
            if header:
                last_modified = email.utils.parsedate_to_datetime(header).date().isoformat()
    else:
        source = Path(urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else uri)
        if not source.is_file():
            raise FileNotFoundError(f"ClinVar source {uri!r} is not a readable file")
        shutil.copyfile(source, partial)
    partial.replace(dest)
    return last_modified

