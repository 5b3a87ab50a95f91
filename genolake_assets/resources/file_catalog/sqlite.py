"""The local profile's file catalog: a SQLite file that concurrent runs on one machine share."""

import dataclasses
import json
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

from genolake_assets.resources.file_catalog.file_catalog import FileCatalog, FileCatalogConflict, FileCatalogEntry

_COLUMNS = [f.name for f in dataclasses.fields(FileCatalogEntry)]


class SqliteFileCatalog(FileCatalog):
    """A SQLite file; concurrent runs on one machine share it (WAL, busy timeout)."""

    path: str

    def _connect(self) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken
        # before the read-back and nothing can slip in between insert and compare.
        # timeout sets SQLite's busy_timeout: a concurrent run's write makes us wait, not fail.
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        columns = ", ".join(f"{name} {'INTEGER' if name == 'size' else 'TEXT'}" for name in _COLUMNS[1:])
        connection.execute(f"CREATE TABLE IF NOT EXISTS alignment_files (file_uri TEXT PRIMARY KEY, {columns})")
        return connection

    @contextmanager
    def _write_transaction(self):
        """BEGIN IMMEDIATE takes the write lock up front, so a write and its read-back are one step."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _entry(row: sqlite3.Row) -> FileCatalogEntry:
        values = dict(row)
        values["details"] = json.loads(values["details"] or "{}")
        return FileCatalogEntry(**values)

    def put(self, entry: FileCatalogEntry) -> bool:
        row = dataclasses.asdict(entry)
        row["details"] = json.dumps(entry.details, sort_keys=True)
        with self._write_transaction() as db:
            inserted = db.execute(
                f"INSERT INTO alignment_files ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "  # noqa: S608 - the column names are the constant _COLUMNS; values are bound
                "ON CONFLICT (file_uri) DO NOTHING",
                [row[name] for name in _COLUMNS],
            ).rowcount
            existing = db.execute("SELECT sha256 FROM alignment_files WHERE file_uri = ?",
                                  [entry.file_uri]).fetchone()[0]
        if inserted:
            return True
        if existing != entry.sha256:
            raise FileCatalogConflict(entry.file_uri, existing, entry.sha256)
        return False

    def get(self, file_uri: str) -> FileCatalogEntry | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM alignment_files WHERE file_uri = ?", [file_uri]).fetchone()
        return self._entry(row) if row else None

    def entries(self, file_type: str | None = None) -> list[FileCatalogEntry]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM alignment_files WHERE ? IS NULL OR file_type = ? ORDER BY file_uri",
                              [file_type, file_type]).fetchall()
        return [self._entry(row) for row in rows]

    def set_status(self, file_uri: str, status: str, expected_sha256: str) -> None:
        with self._write_transaction() as db:
            updated = db.execute("UPDATE alignment_files SET status = ? WHERE file_uri = ? AND sha256 = ?",
                                 [status, file_uri, expected_sha256]).rowcount
            existing = db.execute("SELECT sha256 FROM alignment_files WHERE file_uri = ?", [file_uri]).fetchone()
        if not updated:
            if existing is None:
                raise KeyError(file_uri)
            raise FileCatalogConflict(file_uri, existing[0], expected_sha256)

    def describe(self) -> str:
        return f"sqlite:///{Path(self.path).resolve()}"
