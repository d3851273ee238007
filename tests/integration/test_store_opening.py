"""A store's tables are created once however many processes open it at the same moment: a
server's parent and each of its workers open a new store together, as the nodes of a deployment
open a new database together."""

from __future__ import annotations

import multiprocessing
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
