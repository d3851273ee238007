"""Communication 2.1.3: a filtered read returns the same statements whichever set drives it.

A read is driven by the statements stored since `since` when those are few, else by the key
likely to match fewest, with every other key probed per position. Each rule below is checked
against the statements computed in Python, with each driver forced in turn, on both stores.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings
from lrs.store.index import StatementIndexSQL, StatementQuery
from lrs.store.keys import ACTIVITY, ACTIVITY_RELATED, AGENT, AGENT_RELATED, VERB
from tests.statements import activity, agent, statement, voiding, with_id

WRITER = Principal("writer", "writer", frozenset({"all"}), "urn:lrs:credentials")
NAMES = ("ada", "bob", "cy")
VERBS = ("http://adlnet.gov/expapi/verbs/completed", "http://adlnet.gov/expapi/verbs/answered")
SLUGS = ("a1", "a2", "a3")
# FEW_STORED 0: the keys (or the newest first) always drive; 10,000: `since`/`until` do.
DRIVERS = {"keys drive": 0, "since drives": 10_000}


def write(store: LearningRecordStore, docs: list[dict[str, Any]],
          writer: Principal = WRITER, ahead: bool = False) -> None:
    """One write of these statements, as a POST of them would make it; ``ahead``: with the keys
    hashed and the statements sealed where the request is read, as `lrs serve` does (a
    statement from Kafka has them hashed by the writer)."""
    prepared = prepare_statements(docs, writer, "1.0.3", 100)
    if ahead:
        prepared = store.work_ahead(prepared)
        assert all(p.row.key_hashes for p in prepared)
    [outcome] = store.store_batches([prepared])
    assert not isinstance(outcome, Exception), outcome


@pytest.fixture
def stored(settings: Settings) -> Iterator[tuple[LearningRecordStore, list[dict[str, Any]]]]:
    """Six writes of five statements (six `stored` times; every other one's keys hashed ahead,
    the others' by the writer), then one voiding another."""
    store = LearningRecordStore(env=settings.event_store_env())
    docs: list[dict[str, Any]] = []
    combos = itertools.cycle(itertools.product(NAMES, VERBS, SLUGS))
    try:
        for n in range(6):
            batch = []
            for name, verb, slug in itertools.islice(combos, 5):
                batch.append(with_id(statement(actor=agent(name), verb={"id": verb},
                                               object=activity(slug))))
            write(store, batch, ahead=n % 2 == 0)
            for doc in batch:
                _, doc["stored"] = store.statement(doc["id"])
            docs += batch
        void = with_id(voiding(docs[7]["id"], actor=agent("cy")))
        write(store, [void])
        _, void["stored"] = store.statement(void["id"])
        docs[7]["voided"] = True
        docs.append({**void, "target": docs[7]})
        yield store, docs
    finally:
        store.close()


@pytest.fixture(params=list(DRIVERS.values()), ids=list(DRIVERS))
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test with this runs once with each set forced to drive its reads."""
    monkeypatch.setattr(StatementIndexSQL, "FEW_STORED", request.param)


def stored_times(docs: list[dict[str, Any]]) -> list[str]:
    return sorted({doc["stored"] for doc in docs})


def matches(doc: dict[str, Any], name: str | None, verb: str | None, slug: str | None,
            since: str | None, until: str | None) -> bool:
    # A statement that targets another matches that one's filters too.
    either = [doc, *([doc["target"]] if "target" in doc else [])]
    return (not doc.get("voided")
            and (name is None or any(d["actor"]["mbox"] == f"mailto:{name}@example.org"
                                     for d in either))
            and (verb is None or any(d["verb"]["id"] == verb for d in either))
            and (slug is None or any(d["object"]["id"].endswith(f"/{slug}") for d in either))
            and (since is None or doc["stored"] > since)
            and (until is None or doc["stored"] <= until))


def read_all(store: LearningRecordStore, keys: tuple[str, ...], since: str | None,
             until: str | None, ascending: bool) -> list[str]:
    """Every page of two statements, through the cursor, as the `more` links read them."""
    bound = store.last_statement_seq()
    seen: list[str] = []
    after: int | None = None
    while True:
        page = store.statements(StatementQuery(keys=keys, since=since, until=until,
                                               ascending=ascending, limit=2, after_seq=after,
                                               bound_seq=bound))
        seen += [doc["id"] for _, doc in page]
        if len(page) < 2:
            return seen
        after = page[-1][0].seq


@pytest.mark.usefixtures("driver")
def test_a_filtered_read_returns_exactly_the_matching_statements_in_stored_order(
        stored: tuple[LearningRecordStore, list[dict[str, Any]]]) -> None:
    store, docs = stored
    times = stored_times(docs)
    for name, verb, slug in itertools.product((None, "ada"), (None, VERBS[1]), (None, "a2")):
        keys = tuple(key for key in (
            name and f"{AGENT}:mbox:mailto:{name}@example.org", verb and f"{VERB}:{verb}",
            slug and f"{ACTIVITY}:https://example.org/activities/{slug}") if key)
        for since, until, ascending in itertools.product(
                (None, times[0], times[3], times[-1]), (None, times[1], times[4]), (False, True)):
            expected = [doc["id"] for doc in docs if matches(doc, name, verb, slug, since, until)]
            found = read_all(store, keys, since, until, ascending)
            assert found == (expected if ascending else expected[::-1]), (keys, since, until)


def test_a_since_or_until_that_few_statements_pass_drives_the_read_and_many_do_not(
        stored: tuple[LearningRecordStore, list[dict[str, Any]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, docs = stored
    monkeypatch.setattr(StatementIndexSQL, "FEW_STORED", 6)
    times = stored_times(docs)
    asked: list[bool] = []
    query_sql = StatementIndexSQL.query_sql

    def recorded(self: StatementIndexSQL, q: StatementQuery, by_stored: bool = False) -> Any:
        asked.append(by_stored)
        return query_sql(self, q, by_stored)

    monkeypatch.setattr(StatementIndexSQL, "query_sql", recorded)
    # Five statements a write, six writes, then the voiding one.
    store.statements(StatementQuery(since=times[-2]))
    store.statements(StatementQuery(since=times[0]))
    store.statements(StatementQuery(until=times[0]))
    store.statements(StatementQuery(until=times[-2]))
    store.statements(StatementQuery(since=times[1], until=times[2]))
    store.statements(StatementQuery(keys=(f"{AGENT}:mbox:mailto:ada@example.org",)))
    assert asked == [True, False, True, False, True, False]


@pytest.mark.usefixtures("driver")
def test_a_credential_that_reads_only_its_own_reads_nothing_of_another_whichever_set_drives(
        stored: tuple[LearningRecordStore, list[dict[str, Any]]]) -> None:
    store, docs = stored
    times = stored_times(docs)
    for since, until in ((None, None), (times[0], None), (None, times[2]), (times[1], times[3])):
        own = store.statements(StatementQuery(since=since, until=until, credential=WRITER.key))
        assert [hit.seq for hit, _ in own] == [hit.seq for hit, _ in store.statements(
            StatementQuery(since=since, until=until))] != []
        assert store.statements(StatementQuery(since=since, until=until, credential="other")) == []


@pytest.mark.usefixtures("driver")
def test_a_read_of_ones_own_statements_learns_nothing_of_another_credentials_through_a_ref(
        settings: Settings) -> None:
    """Found by an attacker: a StatementRef carries its target's keys (Communication 2.1.3), so
    a credential reading only its own statements could test what another's statement holds by
    referencing its id and filtering its own. Such a read matches its statements' own keys."""
    store = LearningRecordStore(env=settings.event_store_env())
    mallory = Principal("mallory", "mallory", frozenset({"statements/write",
                                                         "statements/read/mine"}),
                        "urn:lrs:credentials")
    try:
        secret = with_id(statement(actor=agent("zed"), object=activity("secret")))
        write(store, [secret])
        ref = with_id(statement(actor=agent("mal"), verb={"id": "http://example.org/v/ref"},
                                object={"objectType": "StatementRef", "id": secret["id"]}))
        write(store, [ref], mallory)

        def found(key: str, credential: str | None) -> list[str]:
            return [doc["id"] for _, doc in store.statements(StatementQuery(
                keys=(key,), credential=credential, since="2000-01-01T00:00:00Z"))]

        zed = f"{AGENT}:mbox:mailto:zed@example.org"
        mal = f"{AGENT}:mbox:mailto:mal@example.org"
        secret_activity = f"{ACTIVITY}:https://example.org/activities/secret"
        for key in (zed, secret_activity, f"{VERB}:http://adlnet.gov/expapi/verbs/completed"):
            assert found(key, "mallory") == []
            assert found(key, None) == [ref["id"], secret["id"]]  # a full reader: as the spec says
        assert found(mal, "mallory") == [ref["id"]]
    finally:
        store.close()


def with_related_rows_of_an_older_store(store: LearningRecordStore, doc: dict[str, Any],
                                        keys: tuple[str, ...]) -> None:
    """The related keys a store written before they were left out for the actor and object
    holds beside the narrow ones."""
    recorder: Any = store.index  # either store's recorder: its own connection pool
    sql = recorder.index.sql
    with recorder.datastore.transaction(commit=True) as c:
        c.execute(sql("SELECT seq FROM xapi_statement WHERE statement_id = ?"), [doc["id"]])
        seq = c.fetchone()["seq"]
        c.executemany(sql("INSERT INTO xapi_statement_key (key_hash, seq) VALUES (?, ?)"),
                      [(recorder.index.key_hash(key), seq) for key in keys])


@pytest.mark.usefixtures("driver")
def test_a_related_filter_finds_each_statement_naming_the_agent_or_activity_anywhere_once(
        settings: Settings) -> None:
    """related_agents and related_activities (Communication 2.1.3) match the actor and object
    too, which are stored under the narrow key alone; a store that holds both forms for them
    (written before) returns each statement once, on every page and whichever key drives."""
    ada, a1 = agent("ada"), activity("a1")
    completed, answered = VERBS
    reg = "6fbd600f-d17c-4c74-801a-2ec2e53231c7"
    docs = [
        with_id(statement(actor=ada, verb={"id": completed}, object=a1,
                          context={"registration": reg})),
        with_id(statement(actor=agent("bob"), verb={"id": answered}, object=ada)),
        with_id(statement(actor=agent("bob"), verb={"id": completed}, object=activity("a2"),
                          context={"registration": reg, "instructor": ada,
                                   "contextActivities": {"parent": [a1]}})),
        with_id(statement(actor=agent("cy"), verb={"id": answered}, object={
            "objectType": "SubStatement", "actor": ada, "verb": {"id": completed}, "object": a1})),
        with_id(statement(actor=agent("bob"), verb={"id": completed}, object=activity("a3"))),
        with_id(statement(actor=ada, verb={"id": answered}, object=a1,
                          context={"instructor": ada, "contextActivities": {"parent": [a1]}})),
    ]
    # Targets what d2 holds in its context only: a reference matches its target's filters.
    docs.append(with_id(statement(actor=agent("cy"), verb={"id": answered}, context={
        "registration": reg}, object={"objectType": "StatementRef", "id": docs[2]["id"]})))
    related_ada = f"{AGENT_RELATED}:mbox:mailto:ada@example.org"
    related_a1 = f"{ACTIVITY_RELATED}:https://example.org/activities/a1"
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        write(store, docs[:4])
        write(store, docs[4:], ahead=True)
        for doc in (docs[0], docs[5]):
            with_related_rows_of_an_older_store(store, doc, (related_ada, related_a1))
        expected = {  # by position in docs, for: the key alone, with `answered`, with `reg`
            related_ada: ([0, 1, 2, 3, 5, 6], [1, 3, 5, 6], [0, 2, 6]),
            related_a1: ([0, 2, 3, 5, 6], [3, 5, 6], [0, 2, 6]),
        }
        for key, wanted in expected.items():
            for also, positions in zip(((), (f"{VERB}:{answered}",), (f"r:{reg}",)), wanted,
                                       strict=True):
                ids = [docs[n]["id"] for n in positions]
                for ascending in (False, True):
                    found = read_all(store, (key, *also), "2000-01-01T00:00:00Z", None, ascending)
                    assert found == (ids if ascending else ids[::-1]), (key, also, ascending)
        own = store.statements(StatementQuery(keys=(related_ada,), credential=WRITER.key))
        assert [doc["id"] for _, doc in own] == [docs[n]["id"] for n in (5, 3, 2, 1, 0)]
    finally:
        store.close()


def test_an_index_key_and_row_keep_every_character_a_statement_may_hold(settings: Settings) -> None:
    """The index rows go to PostgreSQL as JSON text: quotes, backslashes, control characters,
    line separators and characters beyond the BMP come back as they went in."""
    odd = 'q"\\t\t\n\r\x01\u2028\u00e9\U0001F600{}[],:'
    actor = {"objectType": "Agent", "account": {"homePage": "https://sis.example.org",
                                                "name": f"s-{odd}"}}
    target = {"objectType": "Activity", "id": "https://example.org/a/\u00e9\U0001F600'(),:;"}
    doc = with_id(statement(actor=actor, object=target,
                            context={"registration": "6fbd600f-d17c-4c74-801a-2ec2e53231c7"}))
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        write(store, [statement(), doc])
        for key in (f"{AGENT}:account:https://sis.example.org|s-{odd}", f"{ACTIVITY}:{target['id']}",
                    "r:6fbd600f-d17c-4c74-801a-2ec2e53231c7"):
            found = store.statements(StatementQuery(keys=(key,)))
            assert [d["id"] for _, d in found] == [doc["id"]], key
        [(row, _)] = store.statements(StatementQuery(keys=(f"{ACTIVITY}:{target['id']}",)))
        assert row.seq == store.last_statement_seq()
    finally:
        store.close()
