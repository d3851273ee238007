"""The SQLite event store: the library's application recorder plus the statement index."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import chain
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)

from lrs.store.documents import DocumentViewReads, DocumentViewSQL
from lrs.store.erasure import ErasureSQL
from lrs.store.index import StatementIndexReads, StatementIndexSQL
from lrs.store.learner_key_reads import LearnerKeyReads
from lrs.store.learner_keys import LearnerKeySQL
from lrs.store.sqlite_checkpoints import CHECKPOINTS, file_backed

WRITER_CACHE_KIB = 128 * 1024
OPEN_TIMEOUT = 3600.0
# A commit of a thousand statements writes more WAL pages than SQLite's default checkpoint
# threshold (1,000 pages), so every commit also copied its pages into the database and synced it.
# Checkpointing every 256 MiB of WAL writes each hot index page once for many commits: onto 1M
# stored, against 64 MiB, 14-24 % more statements a second and a batch-1 p95 of 16 ms instead
# of 76-86, for a stall four times rarer and up to 0.7 s long (README, "Running at scale").
CHECKPOINT_PAGES = 65_536
# The WAL file keeps the size one checkpoint lets it reach (``wal_file_bytes``), so the WAL
# starts again over blocks the file already has: a frame written past the file's end cost ext4 a
# page zeroed and the sync a change of size to record. In-process, a write of 100 statements took
# 13 % less CPU and 19 % less time than with the file cut back to 64 MiB at each start (the
# writer's commit of one statement: 14 % and 28 % in one A/B, 3 % more and 8 % less in another).
# A store gone quiet has its file cut back to nothing (``cut_back_wal``, GroupCommitter).
MAX_PARAMETERS = 32_766  # SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32
STATEMENT_CACHE = 256  # prepared statements each connection keeps
SCRUB_WAIT = 60.0  # seconds an erasure's checkpoint is tried again while another is under way


def _chunks(rows: Sequence[Any], width: int) -> Iterator[Sequence[Any]]:
    size = MAX_PARAMETERS // width
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def insert_many(c: Any, head: str, rows: Sequence[Sequence[Any]], width: int) -> None:
    """One multi-row INSERT per chunk instead of a statement per row.

    SQLite then does a chunk's B-tree work in one step, without the interpreter lock; row by
    row, the lock was taken and given back for every row, which also stalled any other thread.
    """
    marks = f"({','.join('?' * width)})"
    for chunk in _chunks(rows, width):
        c.execute(f"{head} VALUES {','.join([marks] * len(chunk))}", list(chain.from_iterable(chunk)))


class SQLiteIndexSQL(StatementIndexSQL):
    def insert_rows(self, c: Any, rows: list[tuple[Any, ...]]) -> None:
        insert_many(c, "INSERT INTO xapi_statement (seq, statement_id, stored, verb_id, object_ref,"
                       " voids, registration, credential)", rows, 8)

    def insert_keys(self, c: Any, keys: list[tuple[int, int]]) -> None:
        # In key order, consecutive rows land on the same B-tree pages.
        insert_many(c, "INSERT INTO xapi_statement_key (key_hash, seq)", sorted(keys), 2)


class WriterTurn:
    """One writer at a time among the processes and threads that share a SQLite file, in the
    kernel's order: SQLite's own busy handler sleeps 1, 2, 5 ... 100 ms between tries, which gave
    document writes from two workers of `lrs serve` a p95 of 120 ms."""

    def __init__(self, db_name: str, timeout: float) -> None:
        self.timeout = timeout
        self._thread_lock = threading.Lock()
        self._file = open(f"{db_name}.write-lock", "a+b") if file_backed(db_name) else None  # noqa: SIM115

    @contextmanager
    def held(self, timeout: float | None = None) -> Iterator[None]:
        """``timeout``: seconds to wait for the turn, the store's lock timeout if not given."""
        timeout = self.timeout if timeout is None else timeout
        if self._file is None:
            yield
            return
        if not self._thread_lock.acquire(timeout=timeout):
            raise OperationalError("database is locked (another writer of this process)")
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise OperationalError("database is locked (another process writes)") from None
                    time.sleep(0.0005)
            try:
                yield
            finally:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class StoreConnection(sqlite3.Connection):
    """A connection of the store's pool, which remembers whether it has written yet."""

    writer_configured = False


class StatementCachingPool(SQLiteConnectionPool):
    """The library's pool, with connections that keep their prepared statements.

    eventsourcing 9.5 opens each connection with ``cached_statements=True``, which sqlite3 reads
    as a cache of one statement: every statement of a write was parsed and planned again, an
    eighth of the writer's time at batch 1. The rest is the library's own opening."""

    @classmethod
    def like(cls, pool: SQLiteConnectionPool) -> StatementCachingPool:
        return cls(db_name=pool.db_name, lock_timeout=pool.lock_timeout, pool_size=pool.pool_size,
                   max_overflow=pool.max_overflow, pool_timeout=pool.pool_timeout,
                   max_age=pool.max_age, pre_ping=pool.pre_ping)

    def close(self) -> None:
        CHECKPOINTS.forget(self.db_name)
        super().close()

    def _create_connection(self) -> SQLiteConnection:
        try:
            c = sqlite3.connect(database=self.db_name, uri=True, check_same_thread=False,
                                isolation_level=None, cached_statements=STATEMENT_CACHE,
                                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
                                factory=StoreConnection)
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                c.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        c.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=c, max_age=self.max_age)


def wal_file_bytes(pages: int, page_size: int) -> int:
    """The size of a WAL file of ``pages`` frames: its header, and each page with its own."""
    return 32 + pages * (24 + page_size)


class SQLiteStatementRecorder(StatementIndexReads, DocumentViewReads, LearnerKeyReads,
                              SQLiteApplicationRecorder):
    reads_are_local = True
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.index = SQLiteIndexSQL(events_table_name, "rowid", paramstyle="qmark")
        self.documents = DocumentViewSQL(paramstyle="qmark")
        self.keys = LearnerKeySQL(paramstyle="qmark", blob_type="BLOB")
        self.erasure = ErasureSQL(self.index, self.keys)
        if not isinstance(datastore.pool, StatementCachingPool):  # before it opens a connection
            opened, datastore.pool = datastore.pool, StatementCachingPool.like(datastore.pool)
            opened.close()
        self._turn = WriterTurn(datastore.pool.db_name, float(datastore.pool.lock_timeout or 5))
        super().__init__(datastore, events_table_name)

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        with self._turn.held():
            seqs = super().insert_events(stored_events, **kwargs)
        CHECKPOINTS.written(self.datastore.pool.db_name)
        return seqs

    def _configure_writer(self, c: SQLiteCursor) -> None:
        # The index's B-trees outgrow SQLite's 2 MB default page cache after a few thousand
        # statements; inserts then wait on page reads. The pool reuses connections, so once each,
        # remembered on the connection itself: reading the setting back with a PRAGMA on every
        # write was a twentieth of a batch-1 write's SQL.
        connection = c.sqlite_cursor.connection
        if isinstance(connection, StoreConnection) and connection.writer_configured:
            return
        c.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        c.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        c.execute("PRAGMA page_size")
        c.execute(f"PRAGMA journal_size_limit = {wal_file_bytes(CHECKPOINT_PAGES, c.fetchone()[0])}")
        # What an erasure deletes is overwritten with zeros, not only unlinked from its page.
        c.execute("PRAGMA secure_delete = ON")
        if isinstance(connection, StoreConnection):
            connection.writer_configured = True

    def _read_transaction(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=False)

    @contextmanager
    def _write_transaction(self) -> Iterator[Any]:
        with self._turn.held(), self.datastore.transaction(commit=True) as c:
            yield c
        CHECKPOINTS.written(self.datastore.pool.db_name)

    def create_table(self) -> None:
        # Several processes open a new store at once (a server's parent and its workers); in
        # SQLite's deferred transaction the loser's schema read cannot become a write, and it
        # fails at once with "database is locked" rather than wait. Opening waits as long as an
        # upgrade of the index in another process may take (minutes for millions of statements).
        with self._turn.held(timeout=OPEN_TIMEOUT):
            super().create_table()
            with self.datastore.transaction(commit=True) as c:
                self.index.use_secret(c)
                # The key table's old pages held IFIs: freed, they are overwritten with zeros.
                c.execute("PRAGMA secure_delete = ON")
                c.sqlite_cursor.connection.create_function("lrs_key_hash", 1, self.index.key_hash,
                                                           deterministic=True)
                self.index.upgrade_text_keys(
                    c, "SELECT name FROM pragma_table_info('xapi_statement_key')",
                    "lrs_key_hash(key)", [], "INTEGER", "BOOLEAN", " WITHOUT ROWID")

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        return (statements + self.index.create_statements("INTEGER", "BOOLEAN", " WITHOUT ROWID", "BLOB")
                + self.documents.create_statements("BLOB", "BOOLEAN")
                + self.keys.create_statements())

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._configure_writer(c)
        # A multi-row INSERT inside a transaction keeps a statement journal (to undo that one
        # statement alone): on disk it was a file created, written page by page and unlinked in
        # every commit. Memory holds it while this write's inserts run, no longer: they are
        # bounded by a batch's size, while an erasure's deletions (``also``), or a read's sort on
        # this pooled connection later, are not, and must spill to disk as before.
        c.execute("PRAGMA temp_store = MEMORY")
        try:
            seqs = self._insert_stored_events(c, stored_events)
            if kwargs.get("key_generation") is not None:
                self.keys.insert(c, kwargs.get("learner_keys") or [], kwargs["key_generation"])
            self._index_inserted_events(c, seqs, kwargs.get("statement_index"),
                                        kwargs.get("stored"))
            if kwargs.get("document_changes"):
                self.documents.apply(c, kwargs["document_changes"])
        finally:
            c.execute("PRAGMA temp_store = DEFAULT")
        if kwargs.get("also") is not None:  # an erasure's deletions, with its event
            kwargs["also"](c)
        return seqs

    def scrub(self, wait: float = SCRUB_WAIT) -> str:
        """After an erasure: copy the WAL (which still holds the deleted rows' old pages) into
        the database and truncate it to nothing.

        A checkpoint under way in another connection (the background one, started by the
        erasure's own commit) makes this one give up at once, busy: it is tried again, for up
        to ``wait`` seconds, as it is while a reader holds an old snapshot."""
        deadline = time.monotonic() + wait
        with self._turn.held(), self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            while True:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, _, _ = cursor.fetchone()
                if not busy or time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
        return ("checkpointed" if not busy
                else "checkpoint blocked by a reader or another checkpoint; run it again")

    def cut_back_wal(self) -> bool:
        """For a store gone quiet: copy its WAL into the database and cut the file to nothing, in
        the writer's turn. Gives up at once, False, while a reader holds an older snapshot (the
        projections catching up): waiting for it would hold up every write behind the turn."""
        with self._turn.held(), self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("PRAGMA busy_timeout")
            waits = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA busy_timeout = 0")
            try:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, _, _ = cursor.fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {waits}")
        return not busy

    def _insert_stored_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The library inserts (and reads back the rowid of) one event per statement; here a chunk
        is one statement. SQLite gives the rows of a rowid table max(rowid) + 1 in turn and this
        transaction holds the write lock, so a chunk's positions are consecutive; checked anyway.

        The INSERT comes first: a read before it would make this a read transaction that cannot
        be upgraded once another process has written (SQLITE_BUSY_SNAPSHOT, without waiting)."""
        rows = [(e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id,
                 e.originator_version, e.topic, e.state) for e in stored_events]
        seqs: list[int] = []
        for chunk in _chunks(rows, 4):
            insert_many(c, f"INSERT INTO {self.events_table_name}", chunk, 4)
            first = int(c.lastrowid) - len(chunk) + 1
            c.execute(f"SELECT rowid FROM {self.events_table_name}"
                      " WHERE originator_id = ? AND originator_version = ?", chunk[0][:2])
            found = c.fetchone()[0]
            if found != first:
                raise RuntimeError(f"{self.events_table_name}: the rows of one insert did not get"
                                   f" consecutive rowids ({found}, expected {first})")
            seqs.extend(range(first, first + len(chunk)))
        return seqs
