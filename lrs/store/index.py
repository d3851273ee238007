"""The statement index shared by the SQLite and PostgreSQL recorders.

The index lives in the event store's own database and is written in the same transaction as the
events, so a statement is findable exactly when it is in the log, and never otherwise. The
statement bodies are not copied: queries join back to the stored events.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from lrs.definitions import merge_definition
from lrs.store.keys import (
    ACTIVITY,
    ACTIVITY_RELATED,
    AGENT,
    AGENT_RELATED,
    REGISTRATION,
    VERB,
    IndexRow,
    key_forms,
    key_hasher,
)

log = logging.getLogger(__name__)

# Statements a voiding and reference lookup names at most (each up to three parameters).
LINK_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class StatementQuery:
    """A filtered, paged read of the statement index (Communication 2.1.3)."""

    keys: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    credential: str | None = None
    ascending: bool = False
    limit: int = 100
    after_seq: int | None = None  # the cursor: the last position already returned
    bound_seq: int | None = None  # the log position the first page saw; later pages stop there


@dataclass(frozen=True, slots=True)
class IndexedStatement:
    seq: int
    stored: str
    event: StoredEvent


@dataclass(slots=True)
class ExistingStatements:
    """What the store already holds of a batch's ids: their events, and which are voiding."""

    events: dict[str, StoredEvent] = field(default_factory=dict)
    voiding: set[str] = field(default_factory=set)
    credentials: dict[str, str] = field(default_factory=dict)  # which credential stored each


@dataclass(frozen=True, slots=True)
class Found:
    """What a write reads of the index once its rows are in: the statements to mark voided,
    those of the write that another statement targets, and the stored definitions of the
    activities it names."""

    voided: list[str]
    referenced: set[str]
    definitions: dict[str, dict[str, Any]]


class Cursor(Protocol):
    def execute(self, query: Any, params: Any = ...) -> Any: ...
    def executemany(self, query: Any, params_seq: Any) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchone(self) -> Any: ...


def rowcount(c: Cursor) -> int:
    """Rows the last statement changed (the library's SQLite cursor wraps sqlite3's)."""
    return int(getattr(getattr(c, "sqlite_cursor", c), "rowcount", 0) or 0)


def marks(count: int) -> str:
    """``count`` parameter marks, comma-separated (qmark style; ``sql`` spells them for psycopg)."""
    return ",".join("?" * count)


class StatementIndexSQL:
    """Builds and runs the index's SQL, written once with '?' marks for both databases."""

    TRUE = "TRUE"
    # Below this many statements stored between `since` and `until`, those drive a read.
    FEW_STORED = 1000

    def __init__(self, events_table: str, events_seq_column: str, paramstyle: str) -> None:
        self.events_table = events_table
        self.events_seq = events_seq_column
        self.paramstyle = paramstyle
        self._key_hash: functools._lru_cache_wrapper[int] | None = None

    def key_hash(self, key: str) -> int:
        if self._key_hash is None:
            raise RuntimeError("the statement index's secret is read when the store is opened")
        return self._key_hash(key)

    def use_secret(self, c: Cursor) -> bytes:
        """The store's index secret (made by the first process to open it); returns it."""
        c.execute(self.sql("INSERT INTO xapi_index_secret (id, secret) VALUES (1, ?)"
                           " ON CONFLICT (id) DO NOTHING"), [os.urandom(32)])
        c.execute("SELECT secret FROM xapi_index_secret WHERE id = 1")
        secret = bytes(c.fetchone()["secret"])
        self.hash_with(secret)
        return secret

    def hash_with(self, secret: bytes) -> None:
        self._key_hash = key_hasher(secret)

    def forget_key_hashes(self) -> None:
        """After an erasure: the keys remembered with their hashes name learners (their IFIs)."""
        if self._key_hash is not None:
            self._key_hash.cache_clear()

    def hashed_ahead(self, row: IndexRow) -> IndexRow:
        """The row with its keys hashed where the statement is read, so the one writer does not
        (in `lrs serve --workers N`, hashing was a tenth of the writer's time at batch 100)."""
        if row.key_hashes is not None:
            return row
        key_hash = self.key_hash
        return row.hashed(tuple(key_hash(k) for k in row.keys))

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.paramstyle == "format" else text

    # --- statements by id ----------------------------------------------------------------------
    # A statement's event is version 1 of the aggregate its id names, and the event's position
    # is the statement's seq, so the events' primary key finds a statement by its id. An index
    # of the statement rows' ids as well was a second B-tree of random keys that every statement
    # wrote into: at 40,000 stored, a write of 400 dirtied 321 pages of it among 1,304
    # (bench/writer.py). SQLite stores made before keep it (it came with the column's UNIQUE,
    # which only a rebuild of the table drops), unread; PostgreSQL's is dropped on opening.

    def event_ids(self, statement_ids: Iterable[str]) -> list[Any]:
        """The events' originator ids of these statements: the library's SQLite recorder
        spells a UUID in 32 hex digits."""
        return [UUID(i).hex for i in statement_ids]

    def event_id_of(self, column: str) -> str:
        """SQL for the originator id of the statement whose id ``column`` holds."""
        return f"replace({column}, '-', '')"

    def _by_id(self, statement_ids: Sequence[str]) -> tuple[str, list[Any]]:
        """FROM and WHERE (to which more may be ANDed) for the statements named by these ids,
        as ``s`` with their events as ``e``; and its parameters."""
        return (f"{self.events_table} e JOIN xapi_statement s ON s.seq = e.{self.events_seq}"
                f" WHERE e.originator_id IN ({marks(len(statement_ids))})"
                " AND e.originator_version = 1", self.event_ids(statement_ids))

    def create_statements(self, seq_type: str, bool_type: str, without_rowid: str,
                          blob_type: str) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS xapi_index_secret (id INTEGER PRIMARY KEY,"
            f" secret {blob_type} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS xapi_statement ("
            f"seq {seq_type} PRIMARY KEY, statement_id TEXT NOT NULL, stored TEXT NOT NULL, "
            "verb_id TEXT NOT NULL, object_ref TEXT, voids TEXT, registration TEXT, "
            f"credential TEXT NOT NULL, voided {bool_type} NOT NULL DEFAULT FALSE)",
            # Partial: few statements target another (a StatementRef) or void one, and an
            # index of every row's NULL cost each write two B-tree inserts. Stores made with
            # the full indexes get these and lose those when next opened.
            "CREATE INDEX IF NOT EXISTS xapi_statement_object_ref_set ON xapi_statement"
            " (object_ref) WHERE object_ref IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS xapi_statement_voids_set ON xapi_statement (voids)"
            " WHERE voids IS NOT NULL",
            "DROP INDEX IF EXISTS xapi_statement_object_ref",
            "DROP INDEX IF EXISTS xapi_statement_voids",
            "CREATE INDEX IF NOT EXISTS xapi_statement_stored ON xapi_statement (stored)",
            *self.key_table_statements(seq_type, bool_type, without_rowid),
            # Who may be served an attachment's bytes: the statements they came with.
            "CREATE TABLE IF NOT EXISTS xapi_statement_attachment (sha2 TEXT NOT NULL,"
            f" seq {seq_type} NOT NULL, PRIMARY KEY (sha2, seq)){without_rowid}",
            "CREATE INDEX IF NOT EXISTS xapi_statement_attachment_seq"
            " ON xapi_statement_attachment (seq)",
            "CREATE TABLE IF NOT EXISTS xapi_activity (activity_id TEXT PRIMARY KEY,"
            " definition TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS xapi_agent_name (ifi TEXT NOT NULL, name TEXT NOT NULL,"
            f" PRIMARY KEY (ifi, name)){without_rowid}",
        ]

    @staticmethod
    def key_table_statements(seq_type: str, bool_type: str, without_rowid: str) -> list[str]:
        # carried: the key came from a statement this one targets, not from its own body.
        return [
            "CREATE TABLE IF NOT EXISTS xapi_statement_key (key_hash BIGINT NOT NULL,"
            f" seq {seq_type} NOT NULL, carried {bool_type} NOT NULL DEFAULT FALSE,"
            f" PRIMARY KEY (key_hash, seq)){without_rowid}",
            "CREATE INDEX IF NOT EXISTS xapi_statement_key_seq ON xapi_statement_key (seq)",
        ]

    def upgrade_text_keys(self, c: Cursor, columns_sql: str, hash_sql: str, hash_params: list[Any],
                          seq_type: str, bool_type: str, without_rowid: str) -> None:
        """A store made when the key table held each key's text gets its hashes instead, and
        the attachments' keys move to their own table (logged with the rows rewritten; nothing
        when the store has hashes already). ``columns_sql`` lists the key table's columns, ``hash_sql``
        (with ``hash_params``) is key_hash of the column ``key`` in this database's SQL. A store
        made before keys were marked carried cannot tell which of a referencing statement's keys
        were its own: all of them count as carried (a read limited to one credential then finds
        such a statement by time, not by a filter). Rows sorted by hash: in key order, each
        insert lands beside the one before."""
        c.execute(columns_sql)
        columns = {row["name"] for row in c.fetchall()}
        if "key" not in columns:
            return
        carried = ("carried" if "carried" in columns else
                   "seq IN (SELECT seq FROM xapi_statement WHERE object_ref IS NOT NULL)")
        c.execute("DROP INDEX IF EXISTS xapi_statement_key_seq")
        c.execute("ALTER TABLE xapi_statement_key RENAME TO xapi_statement_key_text")
        for statement in self.key_table_statements(seq_type, bool_type, without_rowid):
            c.execute(statement)
        c.execute(f"INSERT INTO xapi_statement_key (key_hash, seq, carried) SELECT {hash_sql},"
                  f" seq, {carried} FROM xapi_statement_key_text WHERE substr(key, 1, 2) <> 'h:'"
                  " ORDER BY 1, 2 ON CONFLICT DO NOTHING", hash_params)
        moved = rowcount(c)
        # A reference's copy of its target's attachment key never let anyone have the bytes.
        c.execute("INSERT INTO xapi_statement_attachment (sha2, seq) SELECT substr(key, 3), seq"
                  f" FROM xapi_statement_key_text WHERE substr(key, 1, 2) = 'h:' AND NOT ({carried})"
                  " ON CONFLICT DO NOTHING")
        moved += rowcount(c)
        c.execute("DROP TABLE xapi_statement_key_text")
        log.warning("upgraded the statement index: %d key rows rewritten, each filter key as its"
                    " hash", moved)

    # --- writing, inside the events' transaction -------------------------------------------

    def insert(self, c: Cursor, rows: Sequence[IndexRow], seqs: Sequence[int], stored: str) -> None:
        found = self.write_rows(c, rows, seqs, stored)
        self._apply_voiding(c, found.voided)
        self._propagate_reference_keys(c, rows, found.referenced)
        self._merge_definitions(c, rows, found.definitions)

    def write_rows(self, c: Cursor, rows: Sequence[IndexRow], seqs: Sequence[int],
                   stored: str) -> Found:
        """The statement, key, attachment and agent-name rows written; then what the rest of
        the write needs to know of the index as it now is (``Found``)."""
        self.insert_statements(c, self.statement_rows(rows, seqs, stored), self.key_rows(rows, seqs))
        attachments = self.attachment_rows(rows, seqs)
        if attachments:
            c.executemany(self.sql("INSERT INTO xapi_statement_attachment (sha2, seq) VALUES (?,?)"
                                   " ON CONFLICT DO NOTHING"), attachments)
        names = self.agent_name_rows(rows)
        if names:
            c.executemany(self.sql("INSERT INTO xapi_agent_name (ifi, name) VALUES (?,?)"
                                   " ON CONFLICT DO NOTHING"), names)
        voided, referenced = self._linked(c, rows)
        return Found(voided, referenced, self._known_definitions(c, self.defined_ids(rows)))

    @staticmethod
    def statement_rows(rows: Sequence[IndexRow], seqs: Sequence[int],
                       stored: str) -> list[tuple[Any, ...]]:
        return [(seq, r.statement_id, stored, r.verb_id, r.object_ref, r.voids, r.registration,
                 r.credential) for r, seq in zip(rows, seqs, strict=True)]

    def key_rows(self, rows: Sequence[IndexRow], seqs: Sequence[int]) -> list[tuple[int, int]]:
        hashed = self.key_hash
        return [(key_hash, seq) for r, seq in zip(rows, seqs, strict=True)
                for key_hash in (r.key_hashes if r.key_hashes is not None
                                 else [hashed(key) for key in r.keys])]

    @staticmethod
    def attachment_rows(rows: Sequence[IndexRow], seqs: Sequence[int]) -> list[tuple[str, int]]:
        return [(sha2, seq) for r, seq in zip(rows, seqs, strict=True) for sha2 in r.attachments]

    @staticmethod
    def agent_name_rows(rows: Sequence[IndexRow]) -> list[tuple[str, str]]:
        return sorted({pair for r in rows for pair in r.agent_names})

    @staticmethod
    def defined_ids(rows: Sequence[IndexRow]) -> list[str]:
        """The activities these statements name, whose stored definitions the write merges."""
        return sorted({aid for r in rows for aid, _ in r.definitions})

    def _known_definitions(self, c: Cursor, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return {row["activity_id"]: orjson.loads(row["definition"])
                for row in self._fetch(c, *self._definitions_query(ids))}

    def _merge_definitions(self, c: Cursor, rows: Sequence[IndexRow],
                           known: dict[str, dict[str, Any]]) -> None:
        incoming = [(aid, d) for r in rows for aid, d in r.definitions]
        if not incoming:
            return
        merged = dict(known)
        for activity_id, definition in incoming:
            merged[activity_id] = merge_definition(merged.get(activity_id, {}), definition or {})
        changed = [(aid, orjson.dumps(d).decode()) for aid, d in sorted(merged.items())
                   if known.get(aid) != d or aid not in known]
        if changed:  # most statements name activities already defined as they say
            self._upsert_definitions(c, changed)

    def _definitions_query(self, ids: list[str]) -> tuple[str, list[Any]]:
        return (f"SELECT activity_id, definition FROM xapi_activity"
                f" WHERE activity_id IN ({marks(len(ids))})", ids)

    def _upsert_definitions(self, c: Cursor, changed: list[tuple[str, str]]) -> None:
        c.executemany(self.sql(
            "INSERT INTO xapi_activity (activity_id, definition) VALUES (?,?)"
            " ON CONFLICT (activity_id) DO UPDATE SET definition = excluded.definition"), changed)

    def _fetch(self, c: Cursor, text: str, params: list[Any]) -> list[Any]:
        c.execute(self.sql(text), params)
        return list(c.fetchall())

    def insert_statements(self, c: Cursor, rows: list[tuple[Any, ...]],
                          keys: list[tuple[int, int]]) -> None:
        """The statement rows, then their key rows."""
        self.insert_rows(c, rows)
        self.insert_keys(c, keys)

    def insert_rows(self, c: Cursor, rows: list[tuple[Any, ...]]) -> None:
        c.executemany(
            self.sql(
                "INSERT INTO xapi_statement (seq, statement_id, stored, verb_id, object_ref, voids,"
                " registration, credential) VALUES (?,?,?,?,?,?,?,?)"
            ),
            rows,
        )

    def insert_keys(self, c: Cursor, keys: list[tuple[int, int]]) -> None:
        c.executemany(self.sql("INSERT INTO xapi_statement_key (key_hash, seq) VALUES (?,?)"), keys)

    def _linked(self, c: Cursor, rows: Sequence[IndexRow]) -> tuple[list[str], set[str]]:
        """The statements to mark voided, and those of this write that others target.

        A voiding statement may arrive before or after its target (Data 2.3.2), and so may a
        statement that targets another. Both lookups read the rows just written, and go in one
        round trip: on PostgreSQL a batch-1 write is a dozen round trips of ~0.1 ms each."""
        voided: set[str] = set()
        referenced: set[str] = set()
        # A statement's id goes in twice: in chunks, no write the store takes is refused for
        # its size (SQLite's stock 32,766 parameters; a Kafka poll may hold 2,000 batches).
        for start in range(0, len(rows), LINK_CHUNK):
            chunk = rows[start:start + LINK_CHUNK]
            ids = [r.statement_id for r in chunk]
            voiding = ids + [r.voids for r in chunk if r.voids]
            for row in self._fetch(c, *self._linked_query(voiding, ids)):
                (voided if row["link"] == "v" else referenced).add(row["target"])
        return sorted(voided), referenced

    def _linked_query(self, voiding: list[str], ids: list[str]) -> tuple[str, list[Any]]:
        """Statements that void one of ``voiding``, and those of ``ids`` another targets."""
        return (f"SELECT 'v' AS link, voids AS target FROM xapi_statement"
                f" WHERE voids IN ({marks(len(voiding))})"
                " UNION ALL SELECT DISTINCT 'r' AS link, object_ref AS target"
                f" FROM xapi_statement WHERE object_ref IN ({marks(len(ids))})",
                [*voiding, *ids])

    def _apply_voiding(self, c: Cursor, targets: Sequence[str]) -> None:
        # Two steps, each on an index: one UPDATE with the lookup as a subquery let SQLite read
        # "voids IS NULL" off the voids index, a scan of every statement (0.3 s at 1M).
        if targets:
            c.execute(*self._voiding_update(targets))

    def _voiding_update(self, targets: Sequence[str]) -> tuple[str, list[Any]]:
        by_id, params = self._by_id(targets)
        return (self.sql(f"UPDATE xapi_statement SET voided = {self.TRUE}"
                         f" WHERE seq IN (SELECT s.seq FROM {by_id}) AND voids IS NULL"), params)

    def _propagate_reference_keys(self, c: Cursor, rows: Sequence[IndexRow],
                                  referenced: set[str]) -> None:
        """A statement that targets another matches that one's filters too (Communication 2.1.3).

        Every new statement that targets another, or is targeted (``referenced``: _linked),
        passes its own keys and its target's up the chain of statements that reference it. Done
        set-wise in one statement, so a chain inside one batch resolves in any order.
        """
        involved = {r.statement_id for r in rows if r.object_ref is not None} | referenced
        if not involved:
            return
        start, params = self._by_id(sorted(involved))
        c.execute(
            self.sql(
                "WITH RECURSIVE start(seq, sid, ref) AS ("
                f" SELECT s.seq, s.statement_id, s.object_ref FROM {start}),"
                " up(seq, sid, origin) AS ("
                " SELECT seq, sid, sid FROM start"
                " UNION SELECT r.seq, r.statement_id, up.origin FROM xapi_statement r"
                " JOIN up ON r.object_ref = up.sid),"
                " src(origin, key_hash) AS ("
                " SELECT st.sid, k.key_hash FROM start st JOIN xapi_statement_key k ON k.seq = st.seq"
                " UNION SELECT st.sid, k.key_hash FROM start st"
                f" JOIN {self.events_table} te ON te.originator_id = {self.event_id_of('st.ref')}"
                " AND te.originator_version = 1"
                f" JOIN xapi_statement t ON t.seq = te.{self.events_seq}"
                " JOIN xapi_statement_key k ON k.seq = t.seq)"
                # A statement's own keys are written before any carried to it (in its own
                # write, first), so a row this inserts is one the statement did not have.
                # Filter keys only (attachments are not among them): a reference to a
                # statement is no claim to the bytes that came with it.
                " INSERT INTO xapi_statement_key (key_hash, seq, carried)"
                f" SELECT DISTINCT src.key_hash, up.seq, {self.TRUE} FROM src"
                " JOIN up ON up.origin = src.origin WHERE TRUE ON CONFLICT DO NOTHING"
            ),
            params,
        )

    # --- reading -----------------------------------------------------------------------------

    def _select_events(self, extra: str = "", source: str = "xapi_statement s") -> str:
        return (
            "SELECT s.seq, s.stored, e.originator_id, e.originator_version, e.topic, e.state"
            f"{extra} FROM {source} JOIN {self.events_table} e ON e.{self.events_seq} = s.seq"
        )

    def existing(self, c: Cursor, statement_ids: Iterable[str]) -> ExistingStatements:
        ids = list(statement_ids)
        found = ExistingStatements()
        if not ids:
            return found
        for row in self._fetch(c, *self._existing_query(ids)):
            found.events[row["statement_id"]] = _stored_event(row)
            found.credentials[row["statement_id"]] = row["credential"]
            if row["voids"] is not None:
                found.voiding.add(row["statement_id"])
        return found

    def _existing_query(self, ids: list[str]) -> tuple[str, list[Any]]:
        return self._select_by_id(", s.statement_id, s.voids, s.credential", ids)

    def _select_by_id(self, extra: str, statement_ids: Sequence[str]) -> tuple[str, list[Any]]:
        by_id, params = self._by_id(statement_ids)
        return ("SELECT s.seq, s.stored, e.originator_id, e.originator_version, e.topic, e.state"
                f"{extra} FROM {by_id}", params)

    def carried(self, c: Cursor, statement_ids: Sequence[str], hashes: Sequence[str]) -> set[str]:
        if not statement_ids or not hashes:
            return set()
        by_id, params = self._by_id(statement_ids)
        rows = self._fetch(
            c, "SELECT a.sha2 FROM xapi_statement_attachment a JOIN ("
               f"SELECT s.seq FROM {by_id}) s ON s.seq = a.seq"
               f" WHERE a.sha2 IN ({marks(len(hashes))})", [*params, *hashes])
        return {row["sha2"] for row in rows}

    def one(self, c: Cursor, statement_id: str, voided: bool,
            credential: str | None) -> IndexedStatement | None:
        text, params = self._select_by_id("", [statement_id])
        text += " AND s.voided = ?"
        params.append(voided)
        if credential is not None:
            text += " AND s.credential = ?"
            params.append(credential)
        c.execute(self.sql(text), params)
        row = c.fetchone()
        return None if row is None else _indexed(row)

    def query(self, c: Cursor, q: StatementQuery) -> list[IndexedStatement]:
        text, params = self.query_sql(q, by_stored=self._few_stored_between(c, q))
        c.execute(text, params)
        return [_indexed(row) for row in c.fetchall()]

    def _few_stored_between(self, c: Cursor, q: StatementQuery) -> bool:
        """Whether few statements were stored between `since` and `until`: an LMS polling for
        what is new mostly asks for nothing, and reading the newest first for the statements
        that match then passed every statement in the store (200 ms at 1M) to return none."""
        window, params = _stored_window(q)
        if not window:
            return False
        c.execute(self.sql(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM xapi_statement WHERE {window}"
                           " LIMIT ?) AS stored_between"), [*params, self.FEW_STORED])
        row = c.fetchone()
        return int(row["n"]) < self.FEW_STORED

    def query_sql(self, q: StatementQuery, by_stored: bool = False) -> tuple[str, list[Any]]:
        """The statements a query matches, newest (or oldest) first from a cursor.

        One set of statements drives the read in position order, so LIMIT stops it early: the
        statements stored between `since` and `until` when those are few (`by_stored`), else
        the key likely to match fewest; every other key is probed for each position before the
        statement row is read, so a position that fails a key costs an index probe and no more.
        """
        keys = sorted(q.keys, key=_selectivity_rank)
        window, bounds = _stored_window(q)
        if (by_stored and window) or not keys:
            text, params = self._matching(self._select_events(), q, None, keys,
                                          window if by_stored else "", bounds, with_events=True)
            return self.sql(text), params
        forms = key_forms(keys[0])
        if len(forms) == 1:
            text, params = self._matching(self._select_events(), q, forms[0], keys[1:], "", [],
                                          with_events=True)
            return self.sql(text), params
        # A related key stored in either of two forms drives the read as two arms, each in
        # position order with its own LIMIT, merged: one `key_hash IN (?, ?)` would come out of
        # the index in hash order, and ordering it by position sorts every statement of the key.
        # UNION, not UNION ALL: a store written before the narrow form was left out holds both.
        # Ordered by the merged positions, which have no index: ordered by s.seq, PostgreSQL
        # may walk the statement table's index down from the newest, testing each against them.
        arms: list[str] = []
        params = []
        for n, form in enumerate(forms):
            arm, arm_params = self._matching("SELECT k0.seq AS seq FROM xapi_statement s", q, form,
                                             keys[1:], "", [], with_events=False)
            arms.append(f"SELECT seq FROM ({arm}) AS arm{n}")
            params += arm_params
        merged = f"({' UNION '.join(arms)}) AS m JOIN xapi_statement s ON s.seq = m.seq"
        text = (f"{self._select_events(source=merged)}"
                f" ORDER BY m.seq {'ASC' if q.ascending else 'DESC'} LIMIT ?")
        return self.sql(text), [*params, q.limit]

    def _matching(self, head: str, q: StatementQuery, driving: str | None, probes: Sequence[str],
                  window: str, bounds: Sequence[str], with_events: bool) -> tuple[str, list[Any]]:
        """One ordered, limited read: driven by the statements stored in `window`, by the key
        `driving`, or else by position alone; the keys in `probes` checked for each position.
        In the ? style: it may be an arm of a larger query."""
        params: list[Any] = []
        # A read limited to one credential's statements matches their own keys only: a key
        # carried from another credential's statement (one of theirs that a StatementRef
        # targets) would tell them what that statement holds, by a hit or by a miss.
        own = " AND NOT {}.carried" if q.credential is not None else ""
        if window:
            text = (f"{head} WHERE s.seq IN (SELECT seq FROM xapi_statement WHERE {window})"
                    " AND s.voided = ?")
            params += [*bounds, False]
            order_column = "s.seq"
        elif driving is not None:
            text = (f"{head} JOIN xapi_statement_key k0 ON k0.seq = s.seq"
                    f" WHERE k0.key_hash = ?{own.format('k0')} AND s.voided = ?")
            params += [self.key_hash(driving), False]
            order_column = "k0.seq"
        else:
            text = f"{head} WHERE s.voided = ?"
            params.append(False)
            order_column = "s.seq"
        for key in probes:
            hashes = [self.key_hash(form) for form in key_forms(key)]
            # On the driving column, not s.seq: SQLite then probes before it joins the row.
            text += (" AND EXISTS (SELECT 1 FROM xapi_statement_key k"
                     f" WHERE k.seq = {order_column} AND k.key_hash IN ({marks(len(hashes))})"
                     f"{own.format('k')})")
            params += hashes
        # The cursor and the bound are one range on the column that drives the scan, so page
        # 1,000 starts where page 999 ended instead of skipping 99,900 index entries to get
        # there (given two upper bounds, a planner may range on the looser one).
        low, high = (q.after_seq, q.bound_seq) if q.ascending else (None, q.bound_seq)
        if not q.ascending and q.after_seq is not None:
            high = q.after_seq - 1 if high is None else min(high, q.after_seq - 1)
        # The range goes on each table's position too: PostgreSQL carries an equality across a
        # join but not a range, and with the range on the driving key alone it merge-joined
        # from the newest statement down to the cursor (page 1,000 of a verb at 10M: 0.5 s).
        ranged = dict.fromkeys((order_column, "s.seq", *([f"e.{self.events_seq}"] if with_events else [])))
        for clause, value in (("s.stored > ?", q.since), ("s.stored <= ?", q.until),
                              ("s.credential = ?", q.credential),
                              *((f"{column} > ?", low) for column in ranged),
                              *((f"{column} <= ?", high) for column in ranged)):
            if value is not None:
                text += f" AND {clause}"
                params.append(value)
        text += f" ORDER BY {order_column} {'ASC' if q.ascending else 'DESC'} LIMIT ?"
        params.append(q.limit)
        return text, params

    def activity(self, c: Cursor, activity_id: str) -> dict[str, Any] | None:
        c.execute(self.sql("SELECT definition FROM xapi_activity WHERE activity_id = ?"), [activity_id])
        row = c.fetchone()
        return None if row is None else dict(orjson.loads(row["definition"]))

    def activities(self, c: Cursor, activity_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not activity_ids:
            return {}
        c.execute(self.sql("SELECT activity_id, definition FROM xapi_activity"
                           f" WHERE activity_id IN ({marks(len(activity_ids))})"), list(activity_ids))
        return {row["activity_id"]: dict(orjson.loads(row["definition"])) for row in c.fetchall()}

    def agent_names(self, c: Cursor, ifi: str) -> list[str]:
        c.execute(self.sql("SELECT name FROM xapi_agent_name WHERE ifi = ? ORDER BY name"), [ifi])
        return [row["name"] for row in c.fetchall()]

    def count_events_after(self, c: Cursor, position: int, topics: Sequence[str],
                           through: int | None = None) -> int:
        upper = f" AND {self.events_seq} <= ?" if through is not None else ""
        c.execute(self.sql(f"SELECT COUNT(*) AS n FROM {self.events_table}"
                           f" WHERE {self.events_seq} > ?{upper} AND topic IN ({marks(len(topics))})"),
                  [position, *([through] if through is not None else []), *topics])
        row = c.fetchone()
        return int(row["n"])

    def event_states(self, c: Cursor, start: int, stop: int | None, limit: int,
                     topics: Sequence[str]) -> list[tuple[int, str, bytes]]:
        """(position, topic, state) of events from a position: the notification log without
        building a Notification (and its UUID) per event, for readers that page through it all."""
        upper = f" AND {self.events_seq} <= ?" if stop is not None else ""
        c.execute(self.sql(f"SELECT {self.events_seq} AS seq, topic, state FROM {self.events_table}"
                           f" WHERE {self.events_seq} >= ?{upper}"
                           f" AND topic IN ({marks(len(topics))}) ORDER BY {self.events_seq} LIMIT ?"),
                  [start, *([stop] if stop is not None else []), *topics, limit])
        return [(row["seq"], row["topic"], bytes(row["state"])) for row in c.fetchall()]

    def max_seq(self, c: Cursor) -> int:
        c.execute("SELECT MAX(seq) AS m FROM xapi_statement")
        row = c.fetchone()
        return int(row["m"] or 0)


# A registration names one attempt, an agent one person, an activity what a class did, a verb
# what everybody did; a narrow key before its related_* form (which matches more).
_LEADING = {REGISTRATION: 0, AGENT: 1, ACTIVITY: 2, AGENT_RELATED: 3, ACTIVITY_RELATED: 4, VERB: 5}


def _stored_window(q: StatementQuery) -> tuple[str, list[str]]:
    clauses = [(clause, value) for clause, value in (("stored > ?", q.since), ("stored <= ?", q.until))
               if value is not None]
    return " AND ".join(clause for clause, _ in clauses), [value for _, value in clauses]


def _selectivity_rank(key: str) -> int:
    return _LEADING.get(key.split(":", 1)[0], 6)


def _stored_event(row: Any) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(str(row["originator_id"])),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def _indexed(row: Any) -> IndexedStatement:
    return IndexedStatement(seq=row["seq"], stored=row["stored"], event=_stored_event(row))


class StatementIndexReads:
    """The index's read methods, shared by both recorders (each datastore opens its transaction)."""

    index: StatementIndexSQL

    def _read_transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _index_inserted_events(
        self, c: Cursor, seqs: Sequence[int] | None, rows: Sequence[IndexRow] | None,
        stored: str | None,
    ) -> None:
        if not rows or seqs is None or stored is None:
            return
        # The rows come in the order of their events (statements are all the events of a write).
        self.index.insert(c, rows, seqs, stored)

    def carried_attachments(self, statement_ids: Sequence[str], hashes: Sequence[str]) -> set[str]:
        """Which of these attachments came, as bytes, with one of these statements."""
        with self._read_transaction() as c:
            return self.index.carried(c, statement_ids, hashes)

    def existing_statements(self, statement_ids: Iterable[str]) -> ExistingStatements:
        with self._read_transaction() as c:
            return self.index.existing(c, statement_ids)

    def statement(self, statement_id: str, *, voided: bool,
                  credential: str | None) -> IndexedStatement | None:
        with self._read_transaction() as c:
            return self.index.one(c, statement_id, voided, credential)

    def statements(self, query: StatementQuery) -> list[IndexedStatement]:
        with self._read_transaction() as c:
            return self.index.query(c, query)

    def activity_definition(self, activity_id: str) -> dict[str, Any] | None:
        with self._read_transaction() as c:
            return self.index.activity(c, activity_id)

    def activity_definitions(self, activity_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._read_transaction() as c:
            return self.index.activities(c, activity_ids)

    def agent_names(self, ifi: str) -> list[str]:
        with self._read_transaction() as c:
            return self.index.agent_names(c, ifi)

    def events_after(self, position: int, topics: Sequence[str], through: int | None = None) -> int:
        """How many events of these topics the log holds after a position, up to ``through``
        if given (without reading them)."""
        with self._read_transaction() as c:
            return self.index.count_events_after(c, position, topics, through)

    def event_states(self, start: int, limit: int, topics: Sequence[str],
                     stop: int | None = None) -> list[tuple[int, str, bytes]]:
        with self._read_transaction() as c:
            return self.index.event_states(c, start, stop, limit, topics)

    def max_statement_seq(self) -> int:
        with self._read_transaction() as c:
            return self.index.max_seq(c)
