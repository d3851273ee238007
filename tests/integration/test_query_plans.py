"""Statement queries stay fast at any depth of paging: checked on the plan, not with a clock.

A `more` link carries the last position returned; the next page must start the index scan there
(Communication 2.1.3 paging), or page 1,000 of a filter skips 99,900 index entries first.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from lrs.application import LearningRecordStore
from lrs.config import Settings
from lrs.documents import AGENT_PROFILE
from lrs.store.documents import DocumentFilter
from lrs.store.index import StatementIndexSQL, StatementQuery
from lrs.store.keys import ACTIVITY, AGENT, AGENT_RELATED, REGISTRATION, VERB, key_hasher


def plan(settings: Settings, store: LearningRecordStore, query: StatementQuery,
         by_stored: bool = False) -> str:
    return explain(settings, *store.index.index.query_sql(query, by_stored))


def explain(settings: Settings, text: str, params: Any) -> str:
    if settings.event_store:
        with psycopg.connect(settings.event_store) as conn:
            conn.execute("SET enable_seqscan = off")  # the tables are tiny; ask for the index plan
            rows: list[Any] = conn.execute(f"EXPLAIN {text}", params).fetchall()
        return "\n".join(row[0] for row in rows)
    import sqlite3

    database = settings.event_store_env()["SQLITE_DBNAME"]
    with sqlite3.connect(database) as conn:
        return "\n".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {text}", params))


@pytest.mark.parametrize("ascending", [False, True], ids=["newest first", "ascending"])
def test_a_later_page_starts_its_index_scan_at_the_cursor(settings: Settings,
                                                          ascending: bool) -> None:
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        query = StatementQuery(keys=(f"{VERB}:http://adlnet.gov/expapi/verbs/answered",),
                               limit=100, after_seq=500_000, bound_seq=900_000, ascending=ascending)
        text, params = store.index.index.query_sql(query)
        found = plan(settings, store, query)
    finally:
        store.close()
    # One range on the driving column: the cursor is its edge (the bound only caps it).
    assert text.count("k0.seq >") + text.count("k0.seq <") == (2 if ascending else 1), text
    assert (500_000 if ascending else 499_999) in params
    if settings.event_store:
        cursor = "seq > " if ascending else "seq <= "
        assert any("Index Cond" in line and "key_hash = " in line and cursor in line
                   for line in found.splitlines()), found
    else:
        lower = "seq>? AND " if ascending else ""
        assert f"SEARCH k0 USING PRIMARY KEY (key_hash=? AND {lower}seq<?)" in found, found


@pytest.mark.parametrize("ascending", [False, True], ids=["newest first", "ascending"])
def test_a_later_page_merge_joined_starts_every_tables_scan_at_the_cursor(
        settings: Settings, ascending: bool) -> None:
    """PostgreSQL merge-joins a common key's positions with the statement and event tables at
    10M; with the cursor on the key's scan alone, the other two scans began at the newest
    statement and walked down to the cursor (page 1,000 of a verb: 0.5 s, now 1 ms)."""
    if not settings.event_store:
        pytest.skip("SQLite joins in nested loops only")
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        query = StatementQuery(keys=(f"{VERB}:http://adlnet.gov/expapi/verbs/answered",),
                               limit=100, after_seq=500_000, bound_seq=900_000, ascending=ascending)
        text, params = store.index.index.query_sql(query)
        with psycopg.connect(settings.event_store) as conn:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort",
                            "enable_nestloop", "enable_hashjoin"):
                conn.execute(f"SET {setting} = off")  # the plan a large store is given
            found = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {text}", params).fetchall())
    finally:
        store.close()
    assert "Merge Join" in found, found
    cursor = "> 500000" if ascending else "<= 499999"
    lines = found.splitlines()
    for scan in (" using xapi_statement_key_pkey", " using xapi_statement_pkey ",
                 "_notification_id_idx "):
        at = next((i for i, line in enumerate(lines) if scan in line), None)
        assert at is not None, found
        assert cursor in lines[at + 1] and "Index Cond" in lines[at + 1], found


def test_the_key_likely_to_match_fewest_statements_drives_the_scan() -> None:
    sql = StatementIndexSQL("stored_events", "rowid", "qmark")
    key_hash = key_hasher(b"a store's secret")
    sql.hash_with(b"a store's secret")
    text, params = sql.query_sql(StatementQuery(keys=(
        f"{VERB}:http://e/v", f"{ACTIVITY}:http://e/a", f"{AGENT}:mbox:a@e.org",
        f"{REGISTRATION}:6fbd600f-d17c-4c74-801a-2ec2e53231c7")))
    assert params[0] == key_hash(f"{REGISTRATION}:6fbd600f-d17c-4c74-801a-2ec2e53231c7")
    assert params[2:5] == [key_hash(f"{AGENT}:mbox:a@e.org"), key_hash(f"{ACTIVITY}:http://e/a"),
                           key_hash(f"{VERB}:http://e/v")]
    assert "k0.key_hash = ?" in text


def test_every_other_key_is_probed_before_the_statement_row_is_read(settings: Settings) -> None:
    """A position the leading key gives that fails another key costs an index probe, not a
    read of its statement and event rows (agent+verb+activity at 1M: 2.8 ms, now 0.8 ms)."""
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        keys = (f"{AGENT}:mbox:mailto:a@e.org", f"{VERB}:http://e/v", f"{ACTIVITY}:http://e/a")
        found = plan(settings, store, StatementQuery(keys=keys))
    finally:
        store.close()
    lines = found.splitlines()
    if settings.event_store:  # the planner orders joins itself; each key is an index lookup
        for key in keys:
            hashed = store.index.index.key_hash(key)  # type: ignore[attr-defined]
            assert any("Index Cond" in line and f"'{hashed}'" in line for line in lines), found
    else:
        probes = [n for n, line in enumerate(lines) if "SEARCH k USING PRIMARY KEY" in line]
        row = next(n for n, line in enumerate(lines) if line.startswith("SEARCH s "))
        assert len(probes) == 2 and max(probes) < row, found


def test_a_since_few_statements_passed_is_read_off_the_stored_index(settings: Settings) -> None:
    """An LMS polling for what is new reads the few statements stored since, not the store
    newest first until one is older (200 ms at 1M when nothing was new)."""
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        query = StatementQuery(since="2026-12-01T00:00:00Z")
        found = plan(settings, store, query, by_stored=True)
    finally:
        store.close()
    if settings.event_store:
        assert any("xapi_statement_stored" in line for line in found.splitlines()), found
    else:
        assert "USING COVERING INDEX xapi_statement_stored (stored>?)" in found, found
        assert "SCAN s" not in found, found


@pytest.mark.parametrize("schema", ["public", "a store of its own"])
def test_a_statement_read_is_never_jit_compiled(tmp_path: Any, postgres_database: str,
                                                schema: str) -> None:
    """PostgreSQL compiles a query whose estimated cost passes jit_above_cost, and compiling a
    read of a few milliseconds took 70-175 ms at 10M statements. The thresholds here are zero,
    so any query would be compiled."""
    settings = Settings(data_dir=tmp_path, event_store=postgres_database,
                        store="default" if schema == "public" else "district-7")
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        text, params = store.index.index.query_sql(StatementQuery(
            keys=(f"{AGENT}:mbox:mailto:a@e.org", f"{VERB}:http://e/v")))
        with store.index.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            conn.execute("SET jit_above_cost = 0")
            conn.execute("SET jit_inline_above_cost = 0")
            conn.execute("SET jit_optimize_above_cost = 0")
            found = "\n".join(row["QUERY PLAN"] for row in conn.execute(
                f"EXPLAIN (ANALYZE) {text}", params).fetchall())
            conn.execute("RESET jit_above_cost")
            conn.execute("RESET jit_inline_above_cost")
            conn.execute("RESET jit_optimize_above_cost")
    finally:
        store.close()
    assert "xapi_statement_key" in found, found
    assert "JIT" not in found, found


def test_a_read_runs_read_committed_whatever_the_databases_default(
        tmp_path: Any, postgres_database: str) -> None:
    """Reads run without BEGIN, each statement on a snapshot of its own: what READ COMMITTED
    gives inside a transaction too, and what the store asks for even where a DBA made another
    level the database's default."""
    name = postgres_database.rsplit("/", 1)[1]
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_isolation = serializable')
    store = LearningRecordStore(env=Settings(data_dir=tmp_path, event_store=postgres_database)
                                .event_store_env())
    try:
        with store.index.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            level = conn.execute("SHOW default_transaction_isolation").fetchone()
    finally:
        store.close()
        with psycopg.connect(postgres_database, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" RESET default_transaction_isolation')
    assert level["default_transaction_isolation"] == "read committed", level


@pytest.mark.parametrize("ascending", [False, True], ids=["newest first", "ascending"])
def test_a_related_key_drives_the_scan_from_the_cursor_in_each_form_it_is_stored_in(
        settings: Settings, ascending: bool) -> None:
    """An agent is stored under the related key only where it is not the actor or object (there
    its agent key answers both filters): each form is its own index scan from the cursor, never
    every statement of the agent sorted, as one `key_hash IN (...)` would be."""
    store = LearningRecordStore(env=settings.event_store_env())
    related = f"{AGENT_RELATED}:mbox:mailto:a@e.org"
    query = StatementQuery(keys=(related, f"{VERB}:http://e/v"), limit=100, after_seq=500_000,
                           bound_seq=900_000, ascending=ascending)
    try:
        forms = [store.index.index.key_hash(form)  # type: ignore[attr-defined]
                 for form in (related, f"{AGENT}:mbox:mailto:a@e.org")]
        if settings.event_store:
            text, params = store.index.index.query_sql(query)
            with psycopg.connect(settings.event_store) as conn:
                for setting in ("enable_seqscan", "enable_bitmapscan"):
                    conn.execute(f"SET {setting} = off")  # the plan a large store is given
                found = "\n".join(row[0] for row in
                                  conn.execute(f"EXPLAIN {text}", params).fetchall())
        else:
            found = plan(settings, store, query)
    finally:
        store.close()
    if settings.event_store:
        cursor = "seq > 500000" if ascending else "seq <= 499999"
        for hashed in forms:
            assert any("Index Cond" in line and f"key_hash = '{hashed}'" in line and cursor in line
                       for line in found.splitlines()), found
        # Each statement row is read by a position the arms gave, not walked from the newest.
        lines = found.splitlines()
        for at in (n for n, line in enumerate(lines) if "using xapi_statement_pkey" in line):
            assert "Index Cond" in lines[at + 1] and "seq = " in lines[at + 1], found
    else:
        lower = "seq>? AND " if ascending else ""
        arms = [line for line in found.splitlines() if line.startswith("SEARCH k0 ")]
        assert arms == [f"SEARCH k0 USING PRIMARY KEY (key_hash=? AND {lower}seq<?)"] * 2, found
        # The one sort is of what the arms' LIMITs let through, once merged.
        lines = found.splitlines()
        assert [line for line in lines if "FOR ORDER BY" in line] == ["USE TEMP B-TREE FOR ORDER BY"]
        assert lines.index("USE TEMP B-TREE FOR ORDER BY") > lines.index("SCAN m"), found


def test_a_writes_lookups_read_each_id_off_its_index_on_a_never_analysed_postgresql_store(
        tmp_path: Any, postgres_database: str) -> None:
    """Every write looks up its ids: are they stored already, does a stored statement void or
    target one of them. Named as an IN list of 800 parameters, on a table PostgreSQL had not yet
    analysed (autovacuum off, or behind a bulk load), each lookup read every statement; it
    must take each id off its index whatever the statistics say. Statements named by id (the
    lookup, the voiding, a GET by id, an attachment's statements) are found on the events'
    primary key."""
    from ingest.pipeline import prepare_statements
    from lrs.auth import Principal
    from lrs.store.postgres import PostgresIndexSQL
    from tests.conftest import _empty_postgres
    from tests.statements import activity, statement, with_id

    _empty_postgres(postgres_database)  # the worker's database: earlier tests' rows are in it
    writer = Principal("writer", "writer", frozenset({"all"}), "urn:lrs:credentials")
    store = LearningRecordStore(env=Settings(data_dir=tmp_path,
                                             event_store=postgres_database).event_store_env())
    try:
        store.store_batches([prepare_statements(
            [with_id(statement(object=activity(f"a{n % 700}-{k}"))) for n in range(1000)],
            writer, "1.0.3", 1000) for k in range(4)])
        index = store.index.index
        assert isinstance(index, PostgresIndexSQL)
        with store.index.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            conn.execute("DELETE FROM pg_statistic WHERE starelid IN"
                         " ('xapi_statement'::regclass, 'xapi_activity'::regclass, %s::regclass)",
                         [index.events_table])
            ids = [row["statement_id"] for row in conn.execute(
                "SELECT statement_id FROM xapi_statement ORDER BY seq LIMIT 800").fetchall()]
            plans = {}
            activities = [row["activity_id"] for row in conn.execute(
                "SELECT activity_id FROM xapi_activity").fetchall()]
            # A write of 800 statements that void and target stored ones and name every
            # activity: its rows, and the lookups that go with them (PostgresIndexSQL.write_rows).
            prepared = store.work_ahead(prepare_statements(
                [with_id(statement(object=activity(activities[n % len(activities)])))
                 for n in range(400)]
                + [with_id(statement(verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
                                     object={"objectType": "StatementRef", "id": i}))
                   for i in ids[:400]], writer, "1.0.3", 1000))
            rows = [p.row for p in prepared]
            by_id = {
                "existing": index._existing_query(ids),
                "write": index.write_query(rows, range(10**9, 10**9 + len(rows)), "2026-01-01"),
                "voiding": index._voiding_update(ids),
                "one": index._select_by_id("", ids[:1]),
                "carried": index._select_by_id("", ids),
            }
            for name, (text, params) in by_id.items():
                plans[name] = "\n".join(row["QUERY PLAN"] for row in conn.execute(
                    f"EXPLAIN {index.sql(text)}", params).fetchall())
        found = store.index.existing_statements(ids)
    finally:
        store.close()
    assert sorted(found.events) == sorted(ids)
    for name, found_plan in plans.items():
        assert "Seq Scan" not in found_plan, f"{name}:\n{found_plan}"
    for name in ("existing", "voiding", "one", "carried"):  # by id, on the events' key
        assert f"{index.events_table}_pkey" in plans[name], f"{name}:\n{plans[name]}"
        assert "xapi_statement_pkey" in plans[name], f"{name}:\n{plans[name]}"
    assert "xapi_statement_voids_set" in plans["write"], plans["write"]
    assert "xapi_statement_object_ref_set" in plans["write"], plans["write"]
    assert "xapi_activity_pkey" in plans["write"], plans["write"]
    assert len(activities) == 2800


def test_a_statement_named_by_id_is_read_off_the_events_key_on_sqlite(tmp_path: Any) -> None:
    """A write's id lookup, its voiding, a GET by id and an attachment's statements each find
    the statement through the events' primary key, then its row by seq: the statement rows'
    ids have no index of their own."""
    import sqlite3

    settings = Settings(data_dir=tmp_path)
    store = LearningRecordStore(env=settings.event_store_env())
    index = store.index.index
    ids = ["a6a46e0e-3a5b-4d6b-9bb1-7c1a0d8f2e11", "0f8f1c5e-5b1e-4c4b-8f7e-2a9c6d3b4e55"]
    queries = {"existing": index._existing_query(ids), "voiding": index._voiding_update(ids),
               "one": index._select_by_id("", ids[:1]), "carried": index._select_by_id("", ids)}
    store.close()
    with sqlite3.connect(settings.event_store_env()["SQLITE_DBNAME"]) as conn:
        for name, (text, params) in queries.items():
            found = "\n".join(str(row[-1]) for row in conn.execute(
                f"EXPLAIN QUERY PLAN {text}", params))
            assert "USING INDEX sqlite_autoindex_stored_events_1" in found or (
                "USING COVERING INDEX sqlite_autoindex_stored_events_1" in found), f"{name}:\n{found}"
            assert "USING INTEGER PRIMARY KEY (rowid=?)" in found, f"{name}:\n{found}"
            assert "SCAN" not in found, f"{name}:\n{found}"


def test_listing_one_agents_profiles_reads_the_context_index_from_that_agent(
        settings: Settings) -> None:
    """An Agent Profile has no activity: said so (IS NULL), the listing is read from the index
    entries of (resource, no activity, this agent), not from every agent's profiles."""
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        text, params = store.recorder.documents.matching_sql(  # type: ignore[attr-defined]
            DocumentFilter(AGENT_PROFILE, agent="mbox:mailto:ada@example.org"))
        found = explain(settings, text, params)
    finally:
        store.close()
    if settings.event_store:
        condition = next((line for line in found.splitlines() if "Index Cond" in line), "")
        assert "activity_id IS NULL" in condition and "agent = " in condition, found
    else:
        assert ("USING INDEX xapi_document_context (resource=? AND activity_id=? AND agent=?)"
                in found), found
