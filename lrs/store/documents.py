"""The current-state view of documents, written in the same transaction as their events."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

from lrs.documents import DocumentKey, StoredDocument
from lrs.store.index import Cursor, marks


class DocumentChange(NamedTuple):
    """A document's row in the view after one event (content None: deleted), as it is stored.

    A tuple of the row's own columns: every document write crosses from a worker to the
    writer's process (lrs/api/links.py), and as a dataclass holding a DocumentKey it took
    twenty times as long to pickle and unpickle, and the writer named the document again
    (a UUID 5 of its key) to store it."""

    doc_uuid: str
    resource: str
    activity_id: str | None
    agent: str | None
    registration: str | None
    document_id: str
    content: bytes | None
    content_type: str
    etag: str
    updated: str
    version: int
    deleted: bool

    @classmethod
    def of(cls, key: DocumentKey, content: bytes | None, content_type: str, etag: str,
           updated: str, version: int, doc_uuid: UUID | None = None) -> DocumentChange:
        """``doc_uuid``: the key's aggregate id, when the caller has it already."""
        return cls(str(key.aggregate_id if doc_uuid is None else doc_uuid), key.resource,
                   key.activity_id, key.agent, key.registration, key.document_id, content,
                   content_type, etag, updated, version, content is None)


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    resource: str
    activity_id: str | None = None
    agent: str | None = None
    registration: str | None = None
    since: str | None = None


_UPSERT = ("ON CONFLICT (doc_uuid) DO UPDATE SET content = excluded.content,"
           " content_type = excluded.content_type, etag = excluded.etag,"
           " updated = excluded.updated, version = excluded.version, deleted = excluded.deleted")
_COLUMNS = ", ".join(DocumentChange._fields)


class DocumentViewSQL:
    def __init__(self, paramstyle: str) -> None:
        self.paramstyle = paramstyle

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.paramstyle == "format" else text

    @staticmethod
    def create_statements(blob_type: str, bool_type: str) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS xapi_document (doc_uuid TEXT PRIMARY KEY,"
            " resource TEXT NOT NULL, activity_id TEXT, agent TEXT, registration TEXT,"
            f" document_id TEXT NOT NULL, content {blob_type}, content_type TEXT NOT NULL,"
            " etag TEXT NOT NULL, updated TEXT NOT NULL, version BIGINT NOT NULL,"
            f" deleted {bool_type} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS xapi_document_context ON xapi_document"
            " (resource, activity_id, agent, updated)",
        ]

    def apply(self, c: Cursor, changes: Sequence[DocumentChange]) -> None:
        if not changes:
            return
        if self.paramstyle == "format":
            self._apply_at_once(c, changes)
            return
        c.executemany(self.sql(f"INSERT INTO xapi_document ({_COLUMNS}) VALUES"
                               f" ({marks(len(DocumentChange._fields))}) {_UPSERT}"), changes)

    @staticmethod
    def _apply_at_once(c: Cursor, rows: Sequence[DocumentChange]) -> None:
        """PostgreSQL: one statement over arrays of the columns (binary, written by psycopg in
        C), where executemany made a round trip a document. One statement may change a row once,
        so a document written twice in the write is written as its last change, which is what
        the changes applied in turn leave."""
        last = list({row[0]: row for row in rows}.values())
        c.execute(f"INSERT INTO xapi_document ({_COLUMNS}) SELECT * FROM unnest(%b::text[],"
                  " %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[],"
                  " %b::text[], %b::text[], %b::text[], %b::bigint[], %b::boolean[])"
                  f" {_UPSERT}", [list(column) for column in zip(*last, strict=True)])

    def one(self, c: Cursor, key: DocumentKey) -> tuple[StoredDocument | None, int]:
        """The live document, if any, and the aggregate's version (0 if never written)."""
        c.execute(self.sql(f"SELECT {_COLUMNS} FROM xapi_document WHERE doc_uuid = ?"),
                  [str(key.aggregate_id)])
        row = c.fetchone()
        if row is None:
            return None, 0
        if row["deleted"]:
            return None, int(row["version"])
        return _document(row), int(row["version"])

    def matching(self, c: Cursor, f: DocumentFilter) -> list[StoredDocument]:
        c.execute(*self.matching_sql(f))
        return [_document(row) for row in c.fetchall()]

    def matching_sql(self, f: DocumentFilter) -> tuple[str, list[Any]]:
        """A resource's documents without an activity (Agent Profile) or an agent (Activity
        Profile) have it NULL: said so, the context index is read from (resource, activity,
        agent) on, where with the activity left out, listing one agent's profiles read the
        index entry of every agent's. A registration left out matches any."""
        text = f"SELECT {_COLUMNS} FROM xapi_document WHERE resource = ? AND deleted = ?"
        params: list[Any] = [f.resource, False]
        for column, value in (("activity_id", f.activity_id), ("agent", f.agent)):
            if value is None:
                text += f" AND {column} IS NULL"
            else:
                text += f" AND {column} = ?"
                params.append(value)
        if f.registration is not None:
            text += " AND registration = ?"
            params.append(f.registration)
        if f.since is not None:
            text += " AND updated > ?"
            params.append(f.since)
        return self.sql(text + " ORDER BY document_id"), params


def _document(row: Any) -> StoredDocument:
    key = DocumentKey(resource=row["resource"], document_id=row["document_id"],
                      activity_id=row["activity_id"], agent=row["agent"],
                      registration=row["registration"])
    return StoredDocument(key=key, content=bytes(row["content"]), content_type=row["content_type"],
                          etag=row["etag"], updated=row["updated"], version=int(row["version"]))


class DocumentViewReads:
    documents: DocumentViewSQL
    # A read waits on a local file, never on a network or a server's outage (SQLite): a
    # request's event loop may make it rather than hand it to a thread (lrs/document_commands.py).
    reads_are_local: ClassVar[bool] = False

    def _read_transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def document(self, key: DocumentKey) -> tuple[StoredDocument | None, int]:
        with self._read_transaction() as c:
            return self.documents.one(c, key)

    def matching_documents(self, f: DocumentFilter) -> list[StoredDocument]:
        with self._read_transaction() as c:
            return self.documents.matching(c, f)
