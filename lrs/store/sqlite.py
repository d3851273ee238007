"""The SQLite event store: the library's application recorder plus the statement index."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from lrs.store.documents import DocumentViewReads, DocumentViewSQL
from lrs.store.index import StatementIndexReads, StatementIndexSQL

WRITER_CACHE_KIB = 128 * 1024


class SQLiteStatementRecorder(StatementIndexReads, DocumentViewReads, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.index = StatementIndexSQL(events_table_name, "rowid", paramstyle="qmark")
        self.documents = DocumentViewSQL(paramstyle="qmark")
        self._configured: set[int] = set()
        super().__init__(datastore, events_table_name)

    def _configure_writer(self, c: SQLiteCursor) -> None:
        # The index's B-trees outgrow SQLite's 2 MB default page cache after a few thousand
        # statements; inserts then wait on page reads. The pool reuses connections, so once each.
        connection = id(c.sqlite_cursor.connection)
        if connection not in self._configured:
            c.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            self._configured.add(connection)

    def _read_transaction(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=False)

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        return (statements + self.index.create_statements("INTEGER", "BOOLEAN", " WITHOUT ROWID")
                + self.documents.create_statements("BLOB", "BOOLEAN"))

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._configure_writer(c)
        seqs = super()._insert_events(c, stored_events, **kwargs)
        self._index_inserted_events(c, stored_events, seqs, kwargs.get("statement_index"))
        if kwargs.get("document_changes"):
            self.documents.apply(c, kwargs["document_changes"])
        return seqs
