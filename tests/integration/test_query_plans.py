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
from lrs.store.index import StatementIndexSQL, StatementQuery
from lrs.store.keys import ACTIVITY, AGENT, REGISTRATION, VERB, key_hasher


def plan(settings: Settings, store: LearningRecordStore, query: StatementQuery,
         by_stored: bool = False) -> str:
    text, params = store.index.index.query_sql(query, by_stored)
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
