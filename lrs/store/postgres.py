"""The PostgreSQL event store: the library's application recorder plus the statement index."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from lrs.store.documents import DocumentViewReads, DocumentViewSQL
from lrs.store.erasure import ErasureSQL
from lrs.store.index import Found, StatementIndexReads, StatementIndexSQL
from lrs.store.keys import IndexRow
from lrs.store.learner_key_reads import LearnerKeyReads
from lrs.store.learner_keys import LearnerKeySQL
from lrs.store.postgres_scrub import scrub_tables

log = logging.getLogger(__name__)
SCRUBBED_TABLES = ("xapi_statement", "xapi_statement_key", "xapi_statement_attachment",
                   "xapi_agent_name", "xapi_document", "learner_key")
# key_hasher (lrs/store/keys.py) of the column `key`, the secret its parameter: the first 8 bytes
# of SHA-256(secret + key), signed.
KEY_HASH_SQL = ("('x' || left(encode(sha256(%s::bytea || convert_to(key, 'UTF8')), 'hex'), 16))"
                "::bit(64)::bigint")


def _session_options(schema: str) -> list[str]:
    """Settings every connection of a store's pool starts with.

    No JIT: every query here is an index read or a write of a few milliseconds, which JIT cannot
    speed up, and PostgreSQL compiles any query whose estimated cost passes jit_above_cost. No
    read measured at 10M statements passed the defaults, but compiling is 70-175 ms (the
    agent+verb+activity read at 10M, thresholds at zero: a 3 ms read took 73-500 ms), and only
    a plan's estimate would stand between a read and that cost.
    READ COMMITTED whatever the database's default: a read runs without BEGIN, each statement
    on a snapshot of its own, which is what READ COMMITTED gives inside a transaction too.
    A store of its own (POSTGRES_SCHEMA): the library names its schema in every statement; the
    index and document tables are found through the search path, so every connection of this
    store's pool sees its own schema and no other."""
    options = ["-c jit=off", r"-c default_transaction_isolation=read\ committed"]
    if schema != "public":
        options.append(f"-c search_path={schema}")
    return options


class PostgresIndexSQL(StatementIndexSQL):
    """Row inserts as one statement over arrays of their columns: psycopg's executemany pays a
    round trip a row. The arrays go in PostgreSQL's binary format (%b), which psycopg writes in
    C; in its text format they were built in Python an element at a time (2.6 ms of the
    writer's CPU for a batch's 800 keys), and as one JSON text of rows PostgreSQL parsed every
    field out of JSON (48-55 us of the write a statement for 800, against 41-47 now). Every
    string was checked free of NUL, which PostgreSQL's text cannot hold."""

    def write_rows(self, c: Any, rows: Sequence[IndexRow], seqs: Sequence[int],
                   stored: str) -> Found:
        """Every row of the write and every lookup that follows it in one statement, one round
        trip where they were four (five with attachments; each a wait for the server, then for
        a core, and a batch-1 write is mostly such waits): the inserts are data-modifying
        WITHs, and the lookups read the index as it was before them (every part of a statement
        sees one snapshot), so the rows just written are added from the inserts' RETURNING."""
        c.execute(*self.write_query(rows, seqs, stored))
        voided: set[str] = set()
        referenced: set[str] = set()
        definitions: dict[str, dict[str, Any]] = {}
        for row in c.fetchall():
            if row["link"] == "v":
                voided.add(row["target"])
            elif row["link"] == "r":
                referenced.add(row["target"])
            else:
                definitions[row["target"]] = orjson.loads(row["definition"])
        return Found(sorted(voided), referenced, definitions)

    def write_query(self, rows: Sequence[IndexRow], seqs: Sequence[int],
                    stored: str) -> tuple[str, list[Any]]:
        """write_rows's statement and its parameters."""
        columns = [list(column) for column in zip(*self.statement_rows(rows, seqs, stored),
                                                   strict=True)] or [[]] * 8
        keys, attachments = self.key_rows(rows, seqs), self.attachment_rows(rows, seqs)
        names = self.agent_name_rows(rows)
        ids = [r.statement_id for r in rows]
        voiding = ids + [r.voids for r in rows if r.voids]
        return (
            "WITH statements AS (INSERT INTO xapi_statement (seq, statement_id, stored, verb_id,"
            " object_ref, voids, registration, credential) SELECT * FROM unnest(%b::bigint[],"
            " %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
            " RETURNING object_ref, voids),"
            " keys AS (INSERT INTO xapi_statement_key (key_hash, seq)"
            " SELECT * FROM unnest(%b::bigint[], %b::bigint[])),"
            " attachments AS (INSERT INTO xapi_statement_attachment (sha2, seq)"
            " SELECT * FROM unnest(%b::text[], %b::bigint[]) ON CONFLICT DO NOTHING),"
            " names AS (INSERT INTO xapi_agent_name (ifi, name)"
            " SELECT * FROM unnest(%b::text[], %b::text[]) ON CONFLICT DO NOTHING)"
            # Statements that void one of `voiding`: stored before, or written here.
            " SELECT 'v' AS link, t.target, NULL::text AS definition"
            " FROM unnest(%b::text[]) AS i(id) CROSS JOIN LATERAL"
            " (SELECT voids AS target FROM xapi_statement WHERE voids = i.id OFFSET 0) t"
            " UNION ALL SELECT 'v', voids, NULL FROM statements WHERE voids IS NOT NULL"
            # Statements of this write that another targets: stored before, or written here.
            " UNION ALL SELECT 'r', t.target, NULL FROM unnest(%b::text[]) AS i(id)"
            " CROSS JOIN LATERAL (SELECT object_ref AS target FROM xapi_statement"
            " WHERE object_ref = i.id LIMIT 1) t"
            " UNION ALL SELECT 'r', object_ref, NULL FROM statements"
            " WHERE object_ref = ANY(%b::text[])"
            # The stored definitions of the activities the write names, to merge into.
            " UNION ALL SELECT 'd', t.activity_id, t.definition FROM unnest(%b::text[]) AS i(id)"
            " CROSS JOIN LATERAL (SELECT activity_id, definition FROM xapi_activity"
            " WHERE activity_id = i.id OFFSET 0) t",
            [*columns, [k for k, _ in keys], [seq for _, seq in keys],
             [sha2 for sha2, _ in attachments], [seq for _, seq in attachments],
             [ifi for ifi, _ in names], [name for _, name in names],
             voiding, ids, ids, self.defined_ids(rows)],
        )

    # The lookups by a write's statement ids (are they stored; which to mark voided) name them
    # as one JSON array, each id looked up on its own index (OFFSET 0 keeps the subquery a
    # lookup per id), as write_query's lookups do over arrays. With an IN list of 800
    # parameters, building them took psycopg milliseconds, and on a table not yet analysed
    # (autovacuum off, or behind a bulk load) the planner read every row.
    _EACH_ID = "json_array_elements_text(%s::json) AS i(id) CROSS JOIN LATERAL"

    def __init__(self, events_table: str, ids_are_uuids: bool) -> None:
        super().__init__(events_table, "notification_id", paramstyle="format")
        self.ids_are_uuids = ids_are_uuids  # the events' originator_id: the library's uuid, or text

    def create_statements(self, seq_type: str, bool_type: str, without_rowid: str,
                          blob_type: str) -> list[str]:
        # Statements are found by id on the events' primary key (StatementIndexSQL.event_ids):
        # the unique index of the statement rows' ids goes from stores made before. Looked up
        # first: ALTER TABLE locks the table whether or not there is a constraint to drop, and
        # every process opening the store would stall the writer (or wait behind a long read,
        # with every write queued behind it).
        return [*super().create_statements(seq_type, bool_type, without_rowid, blob_type),
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid ="
                " 'xapi_statement'::regclass AND conname = 'xapi_statement_statement_id_key')"
                " THEN ALTER TABLE xapi_statement DROP CONSTRAINT xapi_statement_statement_id_key;"
                " END IF; END $$"]

    def event_ids(self, statement_ids: Iterable[str]) -> list[Any]:
        return [UUID(i) if self.ids_are_uuids else str(UUID(i)) for i in statement_ids]

    def event_id_of(self, column: str) -> str:
        return f"CAST({column} AS uuid)" if self.ids_are_uuids else column

    def _upsert_definitions(self, c: Any, changed: list[tuple[str, str]]) -> None:
        """One statement: a store's first writes name hundreds of activities new to it, and
        executemany sent each its own."""
        c.execute("INSERT INTO xapi_activity (activity_id, definition) SELECT * FROM"
                  " unnest(%b::text[], %b::text[]) ON CONFLICT (activity_id)"
                  " DO UPDATE SET definition = excluded.definition",
                  [[aid for aid, _ in changed], [definition for _, definition in changed]])

    def _by_id(self, statement_ids: Sequence[str]) -> tuple[str, list[Any]]:
        # Each id off the events' key, as the lookups above; as an IN list, PostgreSQL hashed
        # every statement row to join them on a table not yet analysed.
        return (f"{self._EACH_ID} (SELECT * FROM {self.events_table}"
                f" WHERE originator_id = {self.event_id_of('i.id')} AND originator_version = 1"
                f" OFFSET 0) e JOIN xapi_statement s ON s.seq = e.{self.events_seq} WHERE TRUE",
                [orjson.dumps([str(i) for i in self.event_ids(statement_ids)]).decode()])

    def _voiding_update(self, targets: Sequence[str]) -> tuple[str, list[Any]]:
        # The positions first, as one array: as an IN subquery, PostgreSQL read every statement
        # row for it on a table not yet analysed.
        by_id, params = self._by_id(targets)
        return ("UPDATE xapi_statement SET voided = TRUE WHERE seq = ANY(ARRAY(SELECT s.seq"
                f" FROM {by_id})) AND voids IS NULL", params)


class PostgresStatementRecorder(StatementIndexReads, DocumentViewReads, LearnerKeyReads,
                                PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        kwargs = datastore.pool.kwargs
        assert isinstance(kwargs, dict)  # the library gives its pool a dict
        kwargs["options"] = " ".join(_session_options(datastore.schema))
        super().__init__(datastore, events_table_name=events_table_name)
        # 'uuid' or 'text', as the library checked
        self.index: PostgresIndexSQL = PostgresIndexSQL(events_table_name,
                                                        datastore.originator_id_type == "uuid")
        self.documents = DocumentViewSQL(paramstyle="format")
        self.keys = LearnerKeySQL(paramstyle="format", blob_type="BYTEA")
        self.erasure = ErasureSQL(self.index, self.keys)
        self.insert_events_arrays = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT i, v, t, s FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[],"
            " %b::bytea[]) WITH ORDINALITY AS e(i, v, t, s, n) ORDER BY n"
            " RETURNING notification_id"
        ).format(schema=Identifier(datastore.schema), table=Identifier(events_table_name),
                 id_type=SQL(datastore.originator_id_type))
        # BEGIN, the library's table lock (its lock timeout first) and notification, and for a
        # sealed write the erasure generation read under that lock, in one round trip where
        # they made five. Without parameters, psycopg sends them as one simple query; the last
        # result is the generation.
        locked = [SQL("BEGIN"), *self.lock_table_statements,
                  SQL("NOTIFY {0}").format(Identifier(self.channel_name))]
        self.lock_and_notify = SQL("; ").join(locked)
        self.lock_notify_and_read_generation = SQL("; ").join(
            [*locked, SQL(LearnerKeySQL.GENERATION)])
        self.sql_create_statements.extend(
            SQL(text).format() for text in self.index.create_statements("BIGINT", "BOOLEAN", "", "BYTEA")
            + self.documents.create_statements("BYTEA", "BOOLEAN") + self.keys.create_statements()
        )

    def create_table(self) -> None:
        """Tables created by one process at a time: PostgreSQL's `IF NOT EXISTS` is no guard
        against a concurrent creation (the loser fails on a unique index of the catalogue), and
        a new store is opened at once by a server's parent and each of its workers, as a new
        database is by the nodes of a deployment starting together."""
        lock = [f"lrs create tables {self.datastore.schema}"]
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", lock)
            try:
                if self.datastore.schema != "public":  # the library creates types in it first
                    with self.datastore.transaction(commit=True) as curs:
                        curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            Identifier(self.datastore.schema)))
                super().create_table()
                with self.datastore.transaction(commit=True) as curs:
                    secret = self.index.use_secret(curs)
                    self.index.upgrade_text_keys(
                        curs, "SELECT column_name AS name FROM information_schema.columns WHERE"
                              " table_schema = current_schema() AND table_name = 'xapi_statement_key'",
                        KEY_HASH_SQL, [secret], "BIGINT", "BOOLEAN", "")
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", lock)

    def _read_transaction(self) -> AbstractContextManager[Any]:
        # No BEGIN: under READ COMMITTED each statement reads a snapshot of its own inside a
        # transaction as outside one, so BEGIN and ROLLBACK were two round trips a read paid
        # for nothing (six of a statement page's nine).
        return self.datastore.cursor()

    def _write_transaction(self) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=True)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Events, index rows and document rows in one transaction that any error rolls back.

        The library's version catches an error raised inside its transaction block (to keep
        psycopg's pipeline quiet) and re-raises it after the block, so the transaction commits
        whatever was written before the error: events without their index rows, answered 500.
        Here the error leaves the transaction block, which rolls back.

        No pipeline: with one, a write of thousands of statements (a full group commit, one
        multi-megabyte parameter) hung for ever, the server waiting for the rest of the message
        and psycopg for the server's answer; the few round trips it saved cost nothing beside it.
        A lost connection is retried as the library does: the transaction did not commit, or its
        events are found stored on the retry (IntegrityError), which the application handles.
        """
        # get_connection turns psycopg's errors into the library's.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                # BEGIN goes with the table lock (_lock_table_and_notify): one round trip less
                # than psycopg's transaction block, which sends BEGIN on its own.
                generation = self._lock_table_and_notify(
                    curs, kwargs.get("key_generation") is not None)
                self._insert_stored_events(curs, stored_events, **kwargs)
                seqs = self._fetch_ids_after_insert_events(curs, stored_events,
                                                           ring_generation=generation, **kwargs)
            except BaseException:
                _roll_back(conn)
                raise
            conn.execute("COMMIT")
            return seqs

    def _lock_table_and_notify(self, curs: Cursor[DictRow], read_generation: bool) -> int | None:
        """The library's table lock and notification; with ``read_generation``, the erasure
        generation as it is under the lock (an erasure bumps it under the same lock)."""
        if not read_generation:
            curs.execute(self.lock_and_notify)
            return None
        curs.execute(self.lock_notify_and_read_generation)
        while curs.nextset():
            pass
        row = curs.fetchone()
        return 0 if row is None else int(row["generation"])

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        """The library's insert (one INSERT returning the positions in the events' order, after
        the table lock), with each field of the events as one array in PostgreSQL's binary
        format, which psycopg writes in C. The library's array of composite values it built in
        Python a field at a time (3 ms of the writer's CPU for 100 statements); as one JSON text
        with base64 states, PostgreSQL parsed and decoded 1.5 KB of text an event (74-80 us of
        the write an event for 800 events, against 16-21 as binary arrays)."""
        ids = [e.originator_id for e in stored_events]
        curs.execute(self.insert_events_arrays, [
            [i if isinstance(i, UUID) else UUID(i) for i in ids] if self.index.ids_are_uuids
            else [str(i) for i in ids],
            [e.originator_version for e in stored_events], [e.topic for e in stored_events],
            [e.state for e in stored_events]])

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The library holds the events table lock here, so index rows commit in log order.
        seqs = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if kwargs.get("key_generation") is not None:
            # No row lock needed: an erasure appends its event under the same events table lock,
            # so it has committed before this reads the generation, or starts after this commits.
            self.keys.insert(curs, kwargs.get("learner_keys") or [], kwargs["key_generation"],
                             current=kwargs.get("ring_generation"))
        self._index_inserted_events(curs, seqs, kwargs.get("statement_index"), kwargs.get("stored"))
        if kwargs.get("document_changes"):
            self.documents.apply(curs, kwargs["document_changes"])
        if kwargs.get("also") is not None:  # an erasure's deletions, with its event
            kwargs["also"](curs)
        return seqs

    def cut_back_wal(self) -> bool:
        """Nothing to do for a store gone quiet: the server recycles its own WAL segments."""
        return True

    def scrub(self) -> str:
        """After an erasure: rewrite the tables it deleted from, so the deleted rows' bytes leave
        their files (a plain VACUUM only marks the space free). The server's write-ahead log and
        its archives, if any, are the server's: they keep what they recorded until recycled."""
        with self.datastore.get_connection() as conn:
            return scrub_tables(conn, SCRUBBED_TABLES)


def _roll_back(conn: Any) -> None:
    """End a failed write's transaction; a connection too broken to roll back is the pool's to
    discard (it rolls back or closes whatever comes back to it in a transaction)."""
    try:
        conn.execute("ROLLBACK")
    except Exception:
        log.warning("a failed write's transaction could not be rolled back", exc_info=True)
