"""The event log: every accepted statement is one event, in one global order, on both stores."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import get_topic

from lrs.domain import StoredStatement
from tests.conftest import XAPIClient
from tests.statements import statement, with_id

STORED = get_topic(StoredStatement.Stored)


def statement_events(store: Any, start: int = 1) -> list[Any]:
    """The statement events from a position, each statement unsealed as every reader sees it."""
    notifications = store.recorder.select_notifications(start, 10_000, topics=[STORED])
    events = [store.mapper.to_domain_event(n) for n in notifications]
    for event, opened in zip(events, store.open_statements([e.statement for e in events]),
                             strict=True):
        object.__setattr__(event, "statement", opened)
    return events


def test_each_accepted_statement_is_one_event_in_the_log(xapi: XAPIClient, store_of: Any) -> None:
    docs = [with_id(statement()) for _ in range(3)]
    xapi.post(docs)
    events = statement_events(store_of)
    assert [e.statement["id"] for e in events] == [d["id"] for d in docs]
    assert all(e.statement["stored"] for e in events)


def test_a_duplicate_adds_no_event(xapi: XAPIClient, store_of: Any) -> None:
    doc = with_id(statement())
    xapi.post(doc)
    xapi.post(doc)
    assert len(statement_events(store_of)) == 1


def test_a_rejected_batch_adds_no_event(xapi: XAPIClient, store_of: Any) -> None:
    xapi.post([with_id(statement()), statement(verb={"id": "bad"})])
    assert statement_events(store_of) == []


def test_the_log_can_be_read_from_any_position(xapi: XAPIClient, store_of: Any) -> None:
    docs = [with_id(statement()) for _ in range(5)]
    for doc in docs:
        xapi.post(doc)
    notifications = store_of.recorder.select_notifications(1, 100, topics=[STORED])
    third = notifications[2].id
    tail = statement_events(store_of, start=third)
    assert [e.statement["id"] for e in tail] == [d["id"] for d in docs[2:]]


def test_the_event_records_which_credential_wrote_it(xapi: XAPIClient, store_of: Any) -> None:
    xapi.post(statement())
    assert statement_events(store_of)[0].credential == "admin"


def test_concurrent_writers_get_one_gapless_order(xapi: XAPIClient, store_of: Any) -> None:
    batches = [[with_id(statement()) for _ in range(5)] for _ in range(8)]
    statuses: list[int] = []

    def send(batch: list[dict[str, Any]]) -> None:
        statuses.append(xapi.post(batch).status_code)

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 8
    notifications = store_of.recorder.select_notifications(1, 1000, topics=[STORED])
    positions = [n.id for n in notifications]
    assert positions == sorted(positions) and len(positions) == 40
    stored_times = [e.statement["stored"] for e in statement_events(store_of)]
    assert stored_times == sorted(stored_times)


def test_concurrent_identical_posts_store_one_copy(xapi: XAPIClient, store_of: Any) -> None:
    doc = with_id(statement())
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(xapi.post(doc).status_code))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert len(statement_events(store_of)) == 1


def test_writers_of_one_log_appending_the_same_statements_store_each_once_and_reject_none(
    settings: Any,
) -> None:
    # Two ingesters reading the same messages across a rebalance: two applications (two
    # connections, as two processes have) append overlapping batches at the same time.
    from ingest.pipeline import prepare_statements
    from lrs.application import LearningRecordStore
    from lrs.auth import Principal

    writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
    docs = [with_id(statement()) for _ in range(400)]
    batches = [prepare_statements(docs[start:start + 40], writer, "1.0.3", 1000)
               for start in range(0, len(docs), 20)]  # each statement is in two batches
    stores = [LearningRecordStore(env=settings.event_store_env()) for _ in range(4)]
    outcomes: list[Any] = []

    def append(store: LearningRecordStore, order: list[Any]) -> None:
        for batch in order:
            outcomes.extend(store.store_batches([batch]))

    orders = [batches, batches[::-1], batches[1::2] + batches[::2], batches[::2] + batches[1::2]]
    threads = [threading.Thread(target=append, args=(store, order))
               for store, order in zip(stores, orders, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    ids = [e.statement["id"] for e in statement_events(stores[0])]
    assert sorted(ids) == sorted(d["id"] for d in docs)
    for store in stores:
        store.close()


def test_sqlite_writers_take_turns_and_one_gives_up_at_the_lock_timeout(tmp_path: Path) -> None:
    """Writers of one SQLite file (lrs serve's parent and workers, Kafka ingesters) take turns
    through a lock file; one that cannot get its turn within the lock timeout fails as SQLite
    would ('database is locked'), and the turn is free again once released."""
    from eventsourcing.persistence import OperationalError

    from lrs.store.sqlite import WriterTurn

    database = str(tmp_path / "events.sqlite3")
    first, second = WriterTurn(database, 5.0), WriterTurn(database, 0.2)
    with first.held(), pytest.raises(OperationalError, match="database is locked"), second.held():
        pass
    with second.held():
        pass


def test_sqlite_connections_keep_their_prepared_statements(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """eventsourcing opens them with cached_statements=True, which sqlite3 reads as a cache of
    one statement: every statement of a write was parsed and planned again. (The background
    checkpoint's connection runs one PRAGMA and closes: not the pool's.)"""
    import sqlite3
    import threading

    from lrs.application import LearningRecordStore
    from lrs.config import Settings
    from lrs.store.sqlite import STATEMENT_CACHE

    opened: list[dict[str, Any]] = []
    connect = sqlite3.connect

    def recorded(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        if threading.current_thread().name != "lrs-sqlite-checkpoints":
            opened.append(kwargs)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recorded)
    store = LearningRecordStore(env=Settings(data_dir=tmp_path).event_store_env())
    try:
        key, _ = store.issue_credential("tool", ["all"])  # a write
        assert store.credential(key) is not None  # and a read
        assert store.recorder.datastore.pool.is_journal_mode_wal  # type: ignore[attr-defined]
    finally:
        store.close()
    assert opened, "the store opened no SQLite connection through sqlite3.connect"
    assert [kwargs["cached_statements"] for kwargs in opened] == [STATEMENT_CACHE] * len(opened)
    assert STATEMENT_CACHE >= 128


def test_a_sqlite_write_keeps_its_statement_journal_in_memory_only_while_it_inserts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A multi-row INSERT inside a transaction keeps a statement journal; in a file, every commit
    created, wrote page by page and unlinked one (a tenth of the writer's CPU at batch 1). A
    batch's inserts are bounded, so memory holds it while they run; afterwards the pooled
    connection spills to disk again (an erasure's deletions and a read's sort are not bounded)."""
    import sqlite3

    from ingest.pipeline import prepare_statements
    from lrs.application import LearningRecordStore
    from lrs.auth import Principal
    from lrs.config import Settings

    traced: list[tuple[sqlite3.Connection, str]] = []
    connect = sqlite3.connect

    def recorded(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(lambda sql: traced.append((connection, sql.strip().upper())))
        return connection

    monkeypatch.setattr(sqlite3, "connect", recorded)
    store = LearningRecordStore(env=Settings(data_dir=tmp_path).event_store_env())
    try:
        writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
        batch = prepare_statements([statement(), statement()], writer, "1.0.3", 10)
        traced.clear()
        assert len(store.store_batches([batch])[0]) == 2  # type: ignore[arg-type]
        writers = {c for c, sql in traced if sql.startswith("INSERT INTO STORED_EVENTS")}
        assert len(writers) == 1, "one connection wrote the batch"
        (connection,) = writers
        done = [sql for c, sql in traced if c is connection]
        inserts = [i for i, sql in enumerate(done)  # the batch's, not the key ring's first
                   if sql.startswith(("INSERT INTO STORED_EVENTS", "INSERT INTO XAPI_"))]
        memory = done.index("PRAGMA TEMP_STORE = MEMORY")
        default = done.index("PRAGMA TEMP_STORE = DEFAULT")
        assert memory < inserts[0] and inserts[-1] < default
        assert connection.execute("PRAGMA temp_store").fetchone()[0] == 0
    finally:
        store.close()


def test_every_sqlite_connection_that_writes_overwrites_what_it_deletes(tmp_path: Path) -> None:
    """Erasure relies on secure_delete: each connection that writes has it, those the pool
    opens after closing others too (as it does with one past its max_age)."""
    import gc

    from ingest.pipeline import prepare_statements
    from lrs.application import LearningRecordStore
    from lrs.auth import Principal
    from lrs.config import Settings

    store = LearningRecordStore(env=Settings(data_dir=tmp_path).event_store_env())
    try:
        writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
        idle = store.recorder.datastore.pool._pool
        overwrites = []
        for _ in range(3):
            batch = prepare_statements([statement()], writer, "1.0.3", 10)
            assert len(store.store_batches([batch])[0]) == 1  # type: ignore[arg-type]
            while idle:
                connection = idle.popleft()._sqlite_conn
                overwrites.append(connection.execute("PRAGMA secure_delete").fetchone()[0])
                connection.close()
                del connection
            gc.collect()
        assert overwrites and set(overwrites) == {1}, overwrites
    finally:
        store.close()


def test_a_sqlite_connection_is_set_up_for_writing_once_and_keeps_it(tmp_path: Path) -> None:
    """The writer's settings (page cache, checkpoint size, secure_delete) go on a connection at
    its first write; later writes on it run no PRAGMA but the temp_store pair around the inserts."""
    from ingest.pipeline import prepare_statements
    from lrs.application import LearningRecordStore
    from lrs.auth import Principal
    from lrs.config import Settings
    from lrs.store.sqlite import WRITER_CACHE_KIB

    store = LearningRecordStore(env=Settings(data_dir=tmp_path).event_store_env())
    try:
        writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
        pool = store.recorder.datastore.pool
        store.store_batches([prepare_statements([statement()], writer, "1.0.3", 10)])
        assert len(pool._pool) >= 1
        connections = [c._sqlite_conn for c in pool._pool]
        ran: list[str] = []
        for connection in connections:
            connection.set_trace_callback(ran.append)
        for _ in range(3):
            store.store_batches([prepare_statements([statement()], writer, "1.0.3", 10)])
        for connection in connections:
            connection.set_trace_callback(None)
        pragmas = [sql for sql in ran if sql.lstrip().upper().startswith("PRAGMA")]
        assert any(sql.startswith("INSERT") for sql in ran)  # the writes ran on these
        assert pragmas and set(pragmas) == {"PRAGMA temp_store = MEMORY",
                                            "PRAGMA temp_store = DEFAULT"}, pragmas
        for connection in connections:
            assert connection.execute("PRAGMA cache_size").fetchone()[0] in (-WRITER_CACHE_KIB, -2000)
        assert -WRITER_CACHE_KIB in [c.execute("PRAGMA cache_size").fetchone()[0]
                                     for c in connections]
    finally:
        store.close()


def test_the_log_keeps_each_events_bytes_and_gives_positions_in_the_events_order(
    store_of: Any,
) -> None:
    events = [StoredEvent(uuid.uuid4(), 1, "tests:Opaque", bytes(range(256)) + os.urandom(n))
              for n in range(300)]
    positions = store_of.recorder.insert_events(events)
    assert positions == sorted(positions) and len(set(positions)) == 300
    read = store_of.recorder.select_notifications(positions[0], 300, topics=["tests:Opaque"])
    assert [(n.id, n.originator_id, n.state) for n in read] == [
        (p, e.originator_id, e.state) for p, e in zip(positions, events, strict=True)]
    with pytest.raises(IntegrityError):  # the same aggregate version twice: nothing written
        store_of.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "tests:Opaque", b"x"),
                                         events[0]])
    assert store_of.recorder.max_notification_id() == positions[-1]


@pytest.fixture
def postgres_store(postgres_database: str, tmp_path: Path) -> Iterator[Any]:
    from lrs.application import LearningRecordStore
    from lrs.config import Settings
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_database)
    store = LearningRecordStore(env=Settings(data_dir=tmp_path, event_store=postgres_database,
                                             projections="off").event_store_env())
    yield store
    store.close()


def _an_event() -> StoredEvent:
    return StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="test:Event",
                       state=b"{}")


def test_a_postgresql_write_takes_the_events_lock_notifies_and_reads_the_generation_at_once(
        postgres_store: Any, postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The table lock, the notification and a sealed write's erasure generation go in one round
    trip (each costs a batch-1 write ~0.1 ms): a listener still hears the write, and the write
    still waits for a writer that holds the lock."""
    import psycopg

    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def spied(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query if isinstance(query, str) else query.as_string(cursor.connection))
        return execute(cursor, query, *args, **kwargs)

    listener = psycopg.connect(postgres_database, autocommit=True)
    holder = psycopg.connect(postgres_database)
    try:
        listener.execute(f'LISTEN "{postgres_store.recorder.channel_name}"')
        holder.execute(f'LOCK TABLE "{postgres_store.recorder.events_table_name}"'
                       " IN EXCLUSIVE MODE")
        monkeypatch.setattr(psycopg.Cursor, "execute", spied)
        done = threading.Event()
        writer = threading.Thread(target=lambda: (postgres_store.recorder.insert_events(
            [_an_event()], key_generation=0, learner_keys=[]), done.set()))
        writer.start()
        assert not done.wait(0.5), "the write went ahead while another writer held the lock"
        holder.commit()
        writer.join(10)
        assert done.is_set()
        heard = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in heard] == [postgres_store.recorder.channel_name]
    finally:
        listener.close()
        holder.close()
    locking = [q for q in sent if "LOCK TABLE" in q]
    assert len(locking) == 1 and "NOTIFY" in locking[0] and "learner_key_ring" in locking[0]
    assert not [q for q in sent if "learner_key_ring" in q and q not in locking]


def test_a_sealed_postgresql_write_checks_the_erasure_generation_once_it_holds_the_lock(
        postgres_store: Any, postgres_database: str) -> None:
    """An erasure bumps the generation under the events lock; a write sealed before it that
    waited for that lock must read the new generation and be refused (to be sealed again),
    not read the generation before it had the lock and commit under a deleted key."""
    import psycopg

    from lrs.store.learner_keys import KeyGenerationChanged

    postgres_store.key_ring.reload()  # the ring exists, at generation 0
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            postgres_store.recorder.insert_events([_an_event()], key_generation=0,
                                                  learner_keys=[])
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with psycopg.connect(postgres_database) as erasure:
        erasure.execute(f'LOCK TABLE "{postgres_store.recorder.events_table_name}"'
                        " IN EXCLUSIVE MODE")
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(0.5)
        erasure.execute("UPDATE learner_key_ring SET generation = generation + 1 WHERE id = 1")
    writer.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], KeyGenerationChanged)
    assert postgres_store.recorder.select_notifications(1, 10) == []


def test_a_batch_1_postgresql_write_of_a_known_learner_and_activity_makes_five_round_trips(
        postgres_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch-1 write's time on PostgreSQL is mostly round trips of ~0.1 ms each (8 connections
    of batch-1 traffic: 3.5 ms a write, from 13 round trips): the id check; BEGIN with the lock,
    the notification and the generation; the events; the statement, key and name rows with the
    voiding, reference and definition lookups; COMMIT. A learner's first statement of the day
    adds its key, an activity's new definition its upsert."""
    import psycopg

    from ingest.pipeline import prepare_statements
    from lrs.auth import Principal

    writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
    sent: list[str] = []
    for name in ("execute", "executemany"):
        real = getattr(psycopg.Cursor, name)

        def spied(cursor: Any, query: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            sent.append(query if isinstance(query, str) else query.as_string(cursor.connection))
            return _real(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, spied)
    for _ in range(2):  # the first makes the learner's key and the activity's definition
        batch = postgres_store.work_ahead(prepare_statements(with_id(statement()), writer,
                                                             "1.0.3", 10))
        sent.clear()
        assert postgres_store.store_batches([batch]) == [[batch[0].statement_id]]
    assert len(sent) <= 5, "\n".join(q[:80] for q in sent)
    # BEGIN goes with the lock query; COMMIT comes last.
    assert sent[1].startswith("BEGIN; ") and sent[-1] == "COMMIT", sent
