"""An append is one transaction: a failure at any step of the write leaves nothing of it behind,
and a batch the store refuses fails alone (issue 12, items 2a and 2c).

The failures are the databases' own: a trigger makes the real SQLite or PostgreSQL server refuse
a row at one step of the write (events, index rows, index keys, voiding, activity definitions,
agent names, documents). Then every table must be exactly as it was before the write.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.committer import GroupCommitter
from lrs.config import Settings
from lrs.documents import STATE, DocumentKey, Preconditions, etag_of
from lrs.domain import DOCUMENT_TOPIC, Document
from lrs.errors import PreconditionFailed, StoreRefused
from lrs.statement_events import PreparedStatement
from lrs.store.documents import DocumentChange
from tests.loops import run
from tests.statements import activity, agent, statement, voiding, with_id

TABLES = ("stored_events", "xapi_statement", "xapi_statement_key", "xapi_activity",
          "xapi_agent_name", "xapi_document")
POISON_VERB = "http://example.org/verbs/poison"
WRITER = Principal("writer", "writer", frozenset({"all"}), "urn:lrs:credentials")


class Database:
    """Plain SQL on the store's own database, beside the application's connections."""

    def __init__(self, settings: Settings, events_table: str) -> None:
        env = settings.event_store_env()
        self.sqlite = env.get("SQLITE_DBNAME")
        self.url = settings.event_store
        self.events_table = events_table

    def table(self, name: str) -> str:
        return self.events_table if name == "stored_events" else name

    def run(self, *statements: str) -> list[Any]:
        if self.sqlite is not None:
            with sqlite3.connect(self.sqlite) as con:
                rows: list[Any] = []
                for text in statements:
                    rows = con.execute(text).fetchall()
                return rows
        assert self.url is not None
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = []
            for text in statements:
                cursor = conn.execute(text)  # type: ignore[call-overload]
                rows = cursor.fetchall() if cursor.description else []
            return rows

    def fail_on(self, table: str, event: str = "INSERT", when: str = "TRUE") -> None:
        """Make the database itself refuse the rows of one step of the write."""
        name, table = f"fail_{table}", self.table(table)
        if self.sqlite is not None:
            self.run(f"CREATE TRIGGER {name} BEFORE {event} ON {table} WHEN {when}"
                     " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
            return
        self.run("CREATE OR REPLACE FUNCTION lrs_test_fail() RETURNS trigger LANGUAGE plpgsql AS"
                 " $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
                 f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW"
                 f" WHEN ({when}) EXECUTE FUNCTION lrs_test_fail()")

    def heal(self, table: str) -> None:
        on = "" if self.sqlite is not None else f" ON {self.table(table)}"
        self.run(f"DROP TRIGGER IF EXISTS fail_{table}{on}")

    def snapshot(self) -> dict[str, list[Any]]:
        return {table: sorted(map(tuple, self.run(f"SELECT * FROM {self.table(table)}")), key=repr)
                for table in TABLES}


@pytest.fixture
def database(settings: Settings, store: LearningRecordStore) -> Iterator[Database]:
    database = Database(settings, store.recorder.events_table_name)  # type: ignore[attr-defined]
    yield database
    for table in TABLES:  # PostgreSQL's test database outlives the test
        database.heal(table)


def prepared(*docs: dict[str, Any]) -> list[PreparedStatement]:
    return prepare_statements(list(docs), WRITER, "1.0.3", 100)


def rich_batch(target_id: str) -> list[PreparedStatement]:
    """Touches every step: events, rows, keys, voiding, a definition, an agent name."""
    named = statement(actor={"objectType": "Agent", "name": "Ada", "mbox": "mailto:ada@example.org"},
                      object=activity(f"new-{uuid.uuid4()}"))
    return prepared(with_id(named), with_id(voiding(target_id)))


STEPS = [
    ("stored_events", "INSERT", "TRUE"),
    ("xapi_statement", "INSERT", "TRUE"),
    ("xapi_statement_key", "INSERT", "TRUE"),
    ("xapi_statement", "UPDATE", "TRUE"),  # the voiding of the target
    ("xapi_activity", "INSERT", "TRUE"),
    ("xapi_agent_name", "INSERT", "TRUE"),
]


@pytest.mark.parametrize(("table", "event", "when"), STEPS,
                         ids=[f"{table}-{event.lower()}" for table, event, _ in STEPS])
def test_a_failure_at_any_step_of_a_statement_write_leaves_nothing_of_it(
        store: LearningRecordStore, database: Database, table: str, event: str, when: str) -> None:
    target = with_id(statement())
    store.store_batches([prepared(target)])
    before = database.snapshot()
    database.fail_on(table, event, when)
    outcomes = store.store_batches([rich_batch(target["id"])])
    assert isinstance(outcomes[0], StoreRefused)
    assert "injected failure" in str(outcomes[0])
    assert database.snapshot() == before
    database.heal(table)
    batch = rich_batch(target["id"])
    assert store.store_batches([batch]) == [[p.statement_id for p in batch]]
    assert store.index.statement(target["id"], voided=True, credential=None) is not None


def test_a_python_error_between_steps_leaves_nothing_of_the_write(
        store: LearningRecordStore, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    before = database.snapshot()

    def broken(*_: Any) -> None:
        raise RuntimeError("injected failure after the statement and key rows")

    monkeypatch.setattr(store.recorder.index, "_apply_voiding", broken)  # type: ignore[attr-defined]
    outcomes = store.store_batches([prepared(with_id(statement()))])
    assert isinstance(outcomes[0], StoreRefused)
    assert database.snapshot() == before


def open_transactions(database: Database) -> list[Any]:
    """Sessions of the store's PostgreSQL database left inside a transaction (none on SQLite,
    where the next write is what shows one left open)."""
    if database.sqlite is not None:
        return []
    return database.run("SELECT state, left(query, 60) FROM pg_stat_activity WHERE datname ="
                        " current_database() AND pid <> pg_backend_pid() AND backend_type ="
                        " 'client backend' AND state LIKE 'idle in transaction%'")


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_write_refused_at_its_commit_leaves_nothing_and_the_next_write_goes_through(
        store: LearningRecordStore, database: Database) -> None:
    # The write's own BEGIN and COMMIT (lrs/store/postgres.py): a constraint checked only at
    # COMMIT refuses the write after every statement of it has succeeded.
    before = database.snapshot()
    database.run("CREATE OR REPLACE FUNCTION lrs_test_fail() RETURNS trigger LANGUAGE plpgsql AS"
                 " $$ BEGIN RAISE EXCEPTION 'injected failure at commit'; END $$",
                 "CREATE CONSTRAINT TRIGGER fail_xapi_statement AFTER INSERT ON xapi_statement"
                 " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lrs_test_fail()")
    outcomes = store.store_batches([prepared(with_id(statement()))])
    assert isinstance(outcomes[0], StoreRefused)
    assert "injected failure at commit" in str(outcomes[0])
    assert database.snapshot() == before
    assert open_transactions(database) == []
    database.heal("xapi_statement")
    batch = prepared(with_id(statement()))
    assert store.store_batches([batch]) == [[batch[0].statement_id]]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_write_leaves_nothing_and_no_transaction_open(
        store: LearningRecordStore, database: Database, monkeypatch: pytest.MonkeyPatch,
        interrupt: type[BaseException]) -> None:
    before = database.snapshot()

    def interrupted(*_: Any) -> None:
        raise interrupt("interrupted after the statement and key rows")

    monkeypatch.setattr(store.recorder.index, "_apply_voiding", interrupted)  # type: ignore[attr-defined]
    with pytest.raises(interrupt):
        store.store_batches([prepared(with_id(statement()))])
    assert database.snapshot() == before
    assert open_transactions(database) == []
    monkeypatch.undo()
    for _ in range(3):  # each write gets a connection the interrupted one may have left
        batch = prepared(with_id(statement()))
        assert store.store_batches([batch]) == [[batch[0].statement_id]]


@pytest.mark.parametrize("step", ["stored_events", "xapi_document"])
def test_a_failure_at_any_step_of_a_document_write_leaves_nothing_of_it(
        store: LearningRecordStore, database: Database, step: str) -> None:
    key = DocumentKey(STATE, "progress", activity_id="https://example.org/a",
                      agent="mbox:mailto:ada@example.org")
    run(store.write_document(key, b'{"page": 1}', "application/json", merge=False,
                                     conditions=Preconditions(None, None),
                                     must_be_conditional=False))
    before = database.snapshot()
    database.fail_on(step)
    with pytest.raises(Exception, match="injected failure"):
        run(store.write_document(key, b'{"page": 2}', "application/json", merge=True,
                                         conditions=Preconditions(None, None),
                                         must_be_conditional=False))
    assert database.snapshot() == before
    assert store.document(key).content == b'{"page": 1}'


def test_a_batch_the_store_refuses_fails_alone_in_its_group(
        store: LearningRecordStore, database: Database) -> None:
    database.fail_on("xapi_statement", "INSERT", f"NEW.verb_id = '{POISON_VERB}'")
    honest = [prepared(with_id(statement())) for _ in range(3)]
    poison = prepared(with_id(statement(verb={"id": POISON_VERB})))
    outcomes = store.store_batches([honest[0], poison, honest[1], honest[2]])
    assert isinstance(outcomes[1], StoreRefused)
    for batch, outcome in zip(honest, [outcomes[0], *outcomes[2:]], strict=True):
        assert outcome == [batch[0].statement_id]
        assert store.index.statement(batch[0].statement_id, voided=False, credential=None)
    assert store.index.statement(poison[0].statement_id, voided=False, credential=None) is None
    events = database.run(f"SELECT count(*) FROM {database.table('stored_events')}")[0][0]
    rows = database.run("SELECT count(*) FROM xapi_statement")[0][0]
    assert events == rows == 3


class _Gate(threading.Event):
    """Set to let the held writer go on; ``writing`` is set once it holds its first write."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()


def _held_statement_writes(store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch
                           ) -> tuple[list[int], _Gate]:
    """The committer is held inside each write (the number of batches it holds is recorded)
    until the gate opens, so the requests sent meanwhile queue behind it."""
    go_on = _Gate()
    store_batches = store.store_batches
    groups: list[int] = []

    def held(batches: Any, now: Any = None) -> Any:
        groups.append(len(batches))
        go_on.writing.set()
        go_on.wait(30)
        return store_batches(batches, now)

    monkeypatch.setattr(store, "store_batches", held)
    return groups, go_on


def test_the_group_committer_answers_only_the_refused_request_with_its_error(
        store: LearningRecordStore, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    database.fail_on("xapi_statement", "INSERT", f"NEW.verb_id = '{POISON_VERB}'")
    # The writer is held inside a first write while four requests queue, so they form one group.
    groups, go_on = _held_statement_writes(store, monkeypatch)
    committer = GroupCommitter(store)
    first = committer.submit(prepared(with_id(statement())))
    assert go_on.writing.wait(30)
    honest = [prepared(with_id(statement())) for _ in range(3)]
    poison = prepared(with_id(statement(verb={"id": POISON_VERB})))
    futures = [committer.submit(b) for b in (honest[0], poison, honest[1], honest[2])]
    go_on.set()
    assert len(first.result(timeout=30)) == 1
    with pytest.raises(StoreRefused):
        futures[1].result(timeout=30)
    for batch, future in zip(honest, [futures[0], *futures[2:]], strict=True):
        assert future.result(timeout=30) == [batch[0].statement_id]
    assert groups == [1, 4]
    committer.close()


def test_a_group_commit_stays_within_its_bounds_and_a_larger_request_goes_alone(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    writing, go_on = threading.Event(), threading.Event()
    store_batches = store.store_batches
    groups: list[list[int]] = []

    def held(batches: Any, now: Any = None) -> Any:
        groups.append([len(b) for b in batches])
        writing.set()
        go_on.wait(30)
        return store_batches(batches, now)

    monkeypatch.setattr(store, "store_batches", held)
    padding = {"http://example.org/extension/notes": "x" * 1000}
    requests = [prepare_statements([with_id(statement(context={"extensions": padding}))
                                    for _ in range(n)], WRITER, "1.0.3", 100)
                for n in (2, 2, 2, 5, 1, 3, 3)]
    one = sum(len(s.body) for s in requests[0]) // 2  # bytes of one statement
    committer = GroupCommitter(store, max_statements=6, max_bytes=4 * one + one // 2)
    first = committer.submit(prepared(with_id(statement())))
    assert writing.wait(30)
    futures = [committer.submit(r) for r in requests]
    go_on.set()
    assert len(first.result(timeout=30)) == 1
    for request, future in zip(requests, futures, strict=True):
        assert future.result(timeout=30) == [s.statement_id for s in request]
    # Four statements' bytes fit a group; five statements (over the bytes) go alone; three and
    # three would pass six statements.
    assert groups == [[1], [2, 2], [2], [5], [1, 3], [3]]
    committer.close()


def test_a_request_cancelled_before_its_write_is_not_written_and_the_committer_goes_on(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's caller stopped waiting (its task was cancelled): a cancelled future once
    reached set_result, which raised in the committer's thread and ended it."""
    groups, go_on = _held_statement_writes(store, monkeypatch)
    committer = GroupCommitter(store)
    first = committer.submit(prepared(with_id(statement())))
    assert go_on.writing.wait(30)
    gone, kept = prepared(with_id(statement())), prepared(with_id(statement()))
    cancelled, waiting = committer.submit(gone), committer.submit(kept)
    assert cancelled.cancel()
    go_on.set()
    assert len(first.result(timeout=30)) == 1
    assert waiting.result(timeout=30) == [kept[0].statement_id]
    later = prepared(with_id(statement()))
    assert committer.submit(later).result(timeout=30) == [later[0].statement_id]
    assert groups == [1, 1, 1]
    assert store.index.existing_statements([gone[0].statement_id]).events == {}
    committer.close()


def test_a_store_that_cannot_be_reached_fails_every_batch_without_singling_one_out(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*_: Any, **__: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(store.recorder, "insert_events", unreachable)
    with pytest.raises(OperationalError):
        store.store_batches([prepared(with_id(statement())), prepared(with_id(statement()))])


def test_a_full_group_commit_is_written_in_one_transaction(settings: Settings) -> None:
    """The committer's largest write (GroupCommitter.max_statements, ~6 MB of statements) goes
    through; on PostgreSQL it once hung for ever in psycopg's pipeline, server and client each
    waiting for the other."""
    store = LearningRecordStore(env=settings.event_store_env())
    size = GroupCommitter(store).max_statements
    padding = {"http://example.org/extension/notes": "x" * 1000}  # ~1.3 KB, as LMS statements
    batches = [prepare_statements(
        [with_id(statement(object=activity(f"a{n % 50}"), context={"extensions": padding}))
         for n in range(1000)], WRITER, "1.0.3", 1000) for _ in range(size // 1000)]
    outcomes: list[Any] = []
    for _ in range(2):
        fresh = [[replace_id(p) for p in batch] for batch in batches]
        writer = threading.Thread(target=lambda group=fresh: outcomes.append(  # type: ignore[misc]
            store.store_batches(group)), daemon=True)
        writer.start()
        writer.join(timeout=120)
        assert not writer.is_alive(), "a full group commit did not finish within two minutes"
        ids = {p.statement_id for batch in fresh for p in batch}
        assert len(store.index.existing_statements(ids).events) == size
    assert [len(ids) for outcome in outcomes for ids in outcome] == [1000] * (2 * len(batches))
    store.close()


def replace_id(prepared: PreparedStatement) -> PreparedStatement:
    """The same statement under a new id, so a second write stores new statements."""
    from dataclasses import replace

    new = str(uuid.uuid4())
    return replace(prepared, statement_id=new, row=replace(prepared.row, statement_id=new),
                   body=prepared.body.replace(prepared.statement_id.encode(), new.encode()))


def _held_document_writes(store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch
                          ) -> tuple[list[int], threading.Event, threading.Event]:
    """The document writer is held inside its first write while later writes queue."""
    insert = store.recorder.insert_events
    sizes: list[int] = []
    writing, go_on = threading.Event(), threading.Event()

    def held(events: Any, **kwargs: Any) -> Any:
        sizes.append(len(events))
        writing.set()
        go_on.wait(30)
        return insert(events, **kwargs)

    monkeypatch.setattr(store.recorder, "insert_events", held)
    return sizes, writing, go_on


def _in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # the outcome is what the test looks at
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _state(document_id: str) -> DocumentKey:
    return DocumentKey(STATE, document_id, activity_id="https://example.org/a",
                       agent="mbox:mailto:ada@example.org")


UNCONDITIONAL = Preconditions(None, None)


def _put(store: LearningRecordStore, key: DocumentKey, body: bytes,
         conditions: Preconditions = UNCONDITIONAL) -> Any:
    return run(store.write_document(key, body, "application/json", merge=False,
                                            conditions=conditions, must_be_conditional=False))


def _when_queued(store: LearningRecordStore, count: int) -> None:
    for _ in range(3000):
        if store.document_writes._queue.qsize() >= count:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{count} document writes never queued")


def test_document_writes_waiting_together_share_one_transaction(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes, writing, go_on = _held_document_writes(store, monkeypatch)
    first, _ = _in_thread(lambda: _put(store, _state("first"), b'{"n": 0}'))
    assert writing.wait(30)
    queued = [_in_thread(lambda n=n: _put(store, _state(f"doc-{n}"), b'{"n": %d}' % n))  # type: ignore[misc]
              for n in range(4)]
    _when_queued(store, 4)
    go_on.set()
    for thread, _ in [(first, []), *queued]:
        thread.join(30)
    assert sizes == [1, 4]
    for n in range(4):
        assert store.document(_state(f"doc-{n}")).content == b'{"n": %d}' % n


def test_a_document_write_the_store_refuses_fails_alone_in_its_transaction(
        store: LearningRecordStore, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    database.fail_on("xapi_document", "INSERT", "NEW.document_id = 'poison'")
    sizes, writing, go_on = _held_document_writes(store, monkeypatch)
    first, _ = _in_thread(lambda: _put(store, _state("first"), b"{}"))
    assert writing.wait(30)
    names = ["honest-1", "poison", "honest-2", "honest-3"]
    queued = {name: _in_thread(lambda name=name: _put(store, _state(name), b'{"a": 1}'))  # type: ignore[misc]
              for name in names}
    _when_queued(store, 4)
    go_on.set()
    first.join(30)
    for thread, _ in queued.values():
        thread.join(30)
    assert sizes == [1, 4, 1, 1, 1, 1]  # the group was refused, so each was written alone
    assert isinstance(queued["poison"][1][0], Exception)
    assert "injected failure" in str(queued["poison"][1][0])
    for name in ("honest-1", "honest-2", "honest-3"):
        assert store.document(_state(name)).content == b'{"a": 1}'
    assert store.document_view.document(_state("poison")) == (None, 0)


def test_a_document_write_cancelled_before_its_turn_is_not_written_and_the_writer_goes_on(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes, writing, go_on = _held_document_writes(store, monkeypatch)
    first, _ = _in_thread(lambda: _put(store, _state("first"), b"{}"))
    assert writing.wait(30)
    gone = _state("gone")
    event = Document.Created(  # type: ignore[call-arg]
        originator_id=gone.aggregate_id, originator_version=1, timestamp=datetime.now(UTC),
        originator_topic=DOCUMENT_TOPIC, resource=STATE, scope=gone.scope(), content=b"{}",
        content_type="application/json", etag=etag_of(b"{}"))
    change = DocumentChange.of(gone, b"{}", "application/json", etag_of(b"{}"), "2026-12-01", 1)
    assert store.document_writes.submit([store.mapper.to_stored_event(event)], [change]).cancel()
    go_on.set()
    first.join(30)
    after, outcome = _in_thread(lambda: _put(store, _state("after"), b'{"a": 1}'))
    after.join(30)
    assert outcome and not isinstance(outcome[0], Exception), outcome  # the writer went on
    assert sizes == [1, 1]
    assert store.document_view.document(gone) == (None, 0)
    assert store.document(_state("after")).content == b'{"a": 1}'


def test_two_creations_of_one_document_in_one_transaction_let_exactly_one_win(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _, writing, go_on = _held_document_writes(store, monkeypatch)
    first, _ = _in_thread(lambda: _put(store, _state("first"), b"{}"))
    assert writing.wait(30)
    create_only = Preconditions(None, "*")
    racers = [_in_thread(lambda n=n: _put(store, _state("shared"), b'{"by": %d}' % n,  # type: ignore[misc]
                                          create_only)) for n in range(2)]
    _when_queued(store, 2)
    go_on.set()
    first.join(30)
    for thread, _ in racers:
        thread.join(30)
    outcomes = [outcome[0] for _, outcome in racers]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], PreconditionFailed)
    winner = next(o for o in outcomes if not isinstance(o, Exception))
    assert store.document(_state("shared")).content == winner.content


def test_voiding_and_references_are_found_across_the_lookups_chunks(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large write looks its links up a chunk at a time: a voiding statement, its target, a
    StatementRef and the statement it targets, each in a chunk of its own, are still linked."""
    import lrs.store.index as index

    monkeypatch.setattr(index, "LINK_CHUNK", 1)
    target = with_id(statement(actor=agent("tess")))
    referred = with_id(statement(actor=agent("rhea")))
    void = with_id(voiding(target["id"], actor=agent("vic")))
    ref = with_id(statement(actor=agent("rory"),
                            object={"objectType": "StatementRef", "id": referred["id"]}))
    batch = prepared(void, referred, ref, target)  # the voiding statement before its target
    assert store.store_batches([batch]) == [[p.statement_id for p in batch]]
    assert store.index.statement(target["id"], voided=True, credential=None) is not None
    assert store.index.statement(target["id"], voided=False, credential=None) is None
    # The StatementRef matches what the statement it targets is filtered by (Comm. 2.1.3).
    rhea = next(k for k in prepared(referred)[0].row.keys if k.startswith("a:"))
    found = store.index.statements(index.StatementQuery(keys=(rhea,), limit=10))
    assert len(found) == 2


def test_a_write_of_many_small_batches_is_stored_whole_within_sqlites_parameter_limit(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Kafka poll of 2,000 messages of 20 statements is one call to store_batches. Each lookup
    of a write names every id (the voiding one twice), and SQLite's stock build takes at most
    32,766 parameters a statement (PostgreSQL 65,535): the poll failed whole, was read again,
    and failed again. Written in writes of at most 5,000 statements, every batch is stored."""
    import eventsourcing.sqlite as es

    most = 0

    def counting(real: Any) -> Any:
        def spied(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal most
            most = max(most, len(args[0] or ()) if args else 0)
            return real(cursor, query, *args, **kwargs)
        return spied

    monkeypatch.setattr(es.SQLiteCursor, "execute", counting(es.SQLiteCursor.execute))
    monkeypatch.setattr(psycopg.Cursor, "execute", counting(psycopg.Cursor.execute))
    docs = [with_id(statement()) for _ in range(40_000)]
    batches = [prepare_statements(docs[i:i + 20], WRITER, "1.0.3", 20)
               for i in range(0, len(docs), 20)]
    outcomes = store.store_batches(batches)
    assert outcomes == [[p.statement_id for p in batch] for batch in batches]
    assert 0 < most <= 32_766
    assert len(store.index.existing_statements([docs[0]["id"], docs[-1]["id"]]).events) == 2


def test_one_document_changed_twice_in_one_write_is_left_as_its_later_change(
        store: LearningRecordStore) -> None:
    """PostgreSQL writes a transaction's document rows in one statement, which may change a
    row only once: a document changed twice must end as the changes applied in turn leave it."""
    twice, other = _state("twice"), _state("other")

    def change(key: DocumentKey, content: bytes | None, version: int) -> DocumentChange:
        return DocumentChange.of(key, content, "application/json", f"etag-{version}",
                                 f"2026-12-07T00:00:0{version}Z", version)

    recorder: Any = store.recorder
    with recorder._write_transaction() as c:
        recorder.documents.apply(c, [change(twice, b'{"n": 1}', 1), change(other, b"{}", 1),
                                     change(twice, b'{"n": 2}', 2)])
    assert store.document(twice).content == b'{"n": 2}'
    assert store.document_view.document(twice)[1] == 2
    assert store.document(other).content == b"{}"
    with recorder._write_transaction() as c:
        recorder.documents.apply(c, [change(twice, b'{"n": 3}', 3), change(twice, None, 4)])
    assert store.document_view.document(twice) == (None, 4)
