"""The local profile's object store: the lake in a directory (atomic ``os.replace`` writes, tag sidecars)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from genolake_assets.lib.lake.identifiers import require_safe_key
from genolake_assets.lib.lake.leftovers import temp_file_prefix
from genolake_assets.resources.lake.object_store import ObjectStore, StoredObject


class LocalObjectStore(ObjectStore):
    """A lake in a directory. Tags live in a sidecar folder so they survive copies."""

    _TAG_DIR = "_tags"

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def root_uri(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / require_safe_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key {key!r} leads outside the lake root {self.root} (a symbolic link?): "
                             "refused, not followed")
        return path

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def _stat(self, key: str, path: Path, follow: bool = True) -> StoredObject:
        st = path.stat(follow_symlinks=follow)
        return StoredObject(key=key, size=st.st_size, last_modified=st.st_mtime, etag=f"{st.st_size}-{st.st_mtime_ns}")

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        folder = prefix.rstrip("/")
        if folder:
            require_safe_key(folder)
        base = self.root / folder if folder else self.root
        prefix = folder + "/" if folder else ""
        if not base.exists():
            return
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != self._TAG_DIR]
            for name in filenames:
                if name.startswith("."):
                    continue  # in-flight temp files are hidden
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append((key, full))
        for key, full in sorted(found):
            try:  # a link leading out of the lake (or in a loop) is listed, for a sensor to refuse, but not followed
                yield self._stat(key, full, follow=not full.is_symlink() or self._leads_inside(full))
            except FileNotFoundError:
                continue

    def _leads_inside(self, link: Path) -> bool:
        try:
            return self.root in link.resolve().parents
        except (OSError, RuntimeError):  # a loop of links
            return False

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        return self._stat(key, path) if path.is_file() else None

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        if path.exists() and not path.is_file():  # a FIFO or device would block or never end
            raise ValueError(f"key {key!r} is not a regular file: refused")
        return open(path, "rb")

    def read_tail(self, key: str, length: int) -> bytes:
        with open(self._path(key), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - length))
            return handle.read()

    def download(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(key), dest)
        return dest

    def _atomic_write(self, key: str, write) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_file_prefix(), dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self._tag_path(key).unlink(missing_ok=True)  # new content starts untagged, as on S3
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._stat(key, path)

    def upload(self, src: Path, key: str, *, tags: dict[str, str] | None = None) -> StoredObject:
        def write(handle):
            with open(src, "rb") as source:
                shutil.copyfileobj(source, handle, 1 << 20)

        stored = self._atomic_write(key, write)
        if tags:
            self.put_tags(key, tags)
        return stored

    def write_bytes(self, key: str, data: bytes) -> StoredObject:
        return self._atomic_write(key, lambda handle: handle.write(data))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._tag_path(key).unlink(missing_ok=True)

    def copy(self, src_key: str, dst_key: str) -> StoredObject:
        source = self._path(src_key)
        if not source.is_file():
            raise FileNotFoundError(src_key)
        return self.upload(source, dst_key, tags=self.get_tags(src_key) or None)

    def _tag_path(self, key: str) -> Path:
        return self.root / self._TAG_DIR / (require_safe_key(key) + ".json")

    def get_tags(self, key: str) -> dict[str, str]:
        import json

        if not self._path(key).is_file():
            raise FileNotFoundError(key)
        path = self._tag_path(key)
        return json.loads(path.read_text()) if path.exists() else {}

    def put_tags(self, key: str, tags: dict[str, str]) -> None:
        import json

        if not self._path(key).is_file():
            raise FileNotFoundError(key)
        path = self._tag_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(tags, sort_keys=True))
