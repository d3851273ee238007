"""A store's tables are created once however many processes open it at the same moment: a
server's parent and each of its workers open a new store together, as the nodes of a deployment
open a new database together."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier

from lrs.application import LearningRecordStore
from lrs.config import Settings

OPENERS = 3


def _open(settings: Settings, store: str, barrier: Barrier) -> str:
    store_settings = settings.for_store(store)
    barrier.wait(timeout=60)
    try:
        LearningRecordStore(env=store_settings.event_store_env()).close()
    except Exception as exc:  # reported to the test, which names it
        return repr(exc)
    return "opened"


def test_a_store_opened_by_several_processes_at_once_opens_in_each(settings: Settings) -> None:
    LearningRecordStore(env=settings.event_store_env()).close()  # the default store, as a server's
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(OPENERS) as pool:
        for attempt in range(5):  # before the fix, PostgreSQL lost most tries, SQLite some
            barrier = manager.Barrier(OPENERS)
            outcomes = pool.starmap(_open, [(settings, f"new{attempt}", barrier)] * OPENERS)
            assert outcomes == ["opened"] * OPENERS


def _statement_indexes(store: LearningRecordStore, settings: Settings,
                       change: Sequence[str] = ()) -> set[str]:
    """The indexes of the statement table, after running ``change`` on the store's database."""
    listing = ("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'xapi_statement'"
               " AND schemaname = current_schema()" if settings.event_store else
               "SELECT name FROM sqlite_master WHERE type = 'index'"
               " AND tbl_name = 'xapi_statement'")
    with store.recorder.datastore.transaction(commit=True) as c:
        for statement in change:
            c.execute(statement)
        c.execute(listing)
        return {row["name"] for row in c.fetchall()}


def test_a_store_made_with_full_reference_indexes_gets_partial_ones_when_opened(
        settings: Settings) -> None:
    """Stores made before the indexes of object_ref and voids became partial (most rows hold
    NULL there) lose the full indexes, which cost every write, the next time they are opened."""
    store = LearningRecordStore(env=settings.event_store_env())
    made_before = _statement_indexes(store, settings, [
        "DROP INDEX xapi_statement_object_ref_set", "DROP INDEX xapi_statement_voids_set",
        "CREATE INDEX xapi_statement_object_ref ON xapi_statement (object_ref)",
        "CREATE INDEX xapi_statement_voids ON xapi_statement (voids)"])
    store.close()
    assert {"xapi_statement_object_ref", "xapi_statement_voids"} <= made_before
    reopened = LearningRecordStore(env=settings.event_store_env())
    indexes = _statement_indexes(reopened, settings)
    reopened.close()
    assert {"xapi_statement_object_ref_set", "xapi_statement_voids_set"} <= indexes
    assert not {"xapi_statement_object_ref", "xapi_statement_voids"} & indexes
