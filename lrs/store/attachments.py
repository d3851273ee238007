"""Attachment bodies, stored once per hash next to the event log.

``FileAttachmentStore`` keeps them in a directory (the data folder by default, or a mounted
object-store directory); ``PostgresAttachmentStore`` keeps them in a PostgreSQL table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg.sql import SQL, Identifier

from lrs.config import DEFAULT_STORE

CHUNK = 256 * 1024


class AttachmentStore(Protocol):
    def keep(self, path: Path, sha2: str) -> None:
        """Take ownership of a verified part file as the content for its hash."""

    def has(self, sha2: str) -> bool: ...

    def read(self, sha2: str) -> Iterator[bytes]: ...

    def forget(self, hashes: list[str]) -> int:
        """Remove these bodies so that their bytes leave the store's files; returns how many."""

    def close(self) -> None: ...


class FileAttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, sha2: str) -> Path:
        return self.root / sha2[:2] / sha2

    def keep(self, path: Path, sha2: str) -> None:
        target = self._path(sha2)
        if target.exists():
            path.unlink(missing_ok=True)
            return
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)  # atomic: a reader sees the whole file or none

    def has(self, sha2: str) -> bool:
        return self._path(sha2).exists()

    def read(self, sha2: str) -> Iterator[bytes]:
        with self._path(sha2).open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def forget(self, hashes: list[str]) -> int:
        removed = 0
        for sha2 in hashes:
            path = self._path(sha2)
            try:
                # Zeros over the bytes first: an unlinked file's blocks keep them until reused.
                with path.open("r+b") as f:
                    size = f.seek(0, os.SEEK_END)
                    f.seek(0)
                    for start in range(0, size, CHUNK):
                        f.write(bytes(min(CHUNK, size - start)))
                    f.flush()
                    os.fsync(f.fileno())
                path.unlink()
                removed += 1
            except FileNotFoundError:
                continue
        return removed

    def close(self) -> None:
        pass


class PostgresAttachmentStore:
    """Bodies in a table: each is held in memory once, on the way in and on the way out."""

    def __init__(self, url: str, tmp: Path, table: str = "xapi_attachment") -> None:
        self.url = url
        self.tmp = tmp
        self.table = Identifier(table)
        self.tmp.mkdir(parents=True, exist_ok=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SQL("CREATE TABLE IF NOT EXISTS {}"
                             " (sha2 TEXT PRIMARY KEY, content BYTEA NOT NULL)").format(self.table))

    def keep(self, path: Path, sha2: str) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(SQL("INSERT INTO {} (sha2, content) VALUES (%s, %s)"
                                 " ON CONFLICT DO NOTHING").format(self.table),
                             [sha2, path.read_bytes()])
        finally:
            path.unlink(missing_ok=True)

    def has(self, sha2: str) -> bool:
        with psycopg.connect(self.url) as conn:
            return conn.execute(SQL("SELECT 1 FROM {} WHERE sha2 = %s").format(self.table),
                                [sha2]).fetchone() is not None

    def read(self, sha2: str) -> Iterator[bytes]:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(SQL("SELECT content FROM {} WHERE sha2 = %s").format(self.table),
                               [sha2]).fetchone()
        content = bytes(row[0]) if row else b""
        for start in range(0, len(content), CHUNK):
            yield content[start:start + CHUNK]

    def forget(self, hashes: list[str]) -> int:
        if not hashes:
            return 0
        with psycopg.connect(self.url, autocommit=True) as conn:
            removed = conn.execute("DELETE FROM xapi_attachment WHERE sha2 = ANY(%s)", [hashes]).rowcount
            conn.execute("VACUUM FULL xapi_attachment")  # the deleted rows' bytes leave the files
        return int(removed or 0)

    def close(self) -> None:
        pass


def attachment_store(setting: str | None, data_dir: Path,
                     store: str = DEFAULT_STORE) -> AttachmentStore:
    """LRS_ATTACHMENT_STORE: empty for the data folder, file:///dir, or postgresql://…

    ``data_dir`` is the store's own folder; a store other than `default` keeps its bodies apart
    (DIR/stores/NAME, or a table of its own), so a hash another store holds reads nothing."""
    default = store == DEFAULT_STORE
    if not setting:
        return FileAttachmentStore(data_dir / "attachments")
    if setting.startswith("file://"):
        root = Path(setting.removeprefix("file://"))
        return FileAttachmentStore(root if default else root / "stores" / store)
    if setting.startswith(("postgresql://", "postgres://")):
        table = "xapi_attachment" if default else "xapi_attachment_" + store.replace("-", "_")
        return PostgresAttachmentStore(setting, data_dir / "attachments" / "tmp", table)
    raise ValueError(f"LRS_ATTACHMENT_STORE '{setting}' is not supported: use file:///dir or"
                     " postgresql://…")
