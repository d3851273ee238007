"""A document request's loop serves every request of its worker: it makes a document's read, its
checks and its sealing itself only when they cannot stall it, a small body read from a local
file (SQLite); a read over a network (PostgreSQL, whose outage waits out a connect timeout), a
large body's JSON check and a merge go to a thread (lrs/document_commands.py)."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from lrs.application import LearningRecordStore
from lrs.config import Settings
from lrs.documents import STATE, DocumentKey, Preconditions
from lrs.request_loop import INLINE_BODY_BYTES
from tests.loops import run

KEY = DocumentKey(STATE, "bookmark", activity_id="https://example.org/a",
                  agent="mbox:mailto:ada@example.org")


def _reads_on_loop(store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch,
                   request: Any) -> list[bool]:
    """For each document read the request made: was it on the request's loop?"""
    read = store.recorder.document  # type: ignore[attr-defined]
    threads: list[int] = []

    def recorded(key: DocumentKey) -> Any:
        threads.append(threading.get_ident())
        return read(key)

    monkeypatch.setattr(store.recorder, "document", recorded)

    async def on_loop() -> int:
        await request()
        return threading.get_ident()

    loop_thread = run(on_loop())
    return [thread == loop_thread for thread in threads]


def _put(store: LearningRecordStore, body: bytes, merge: bool = False) -> Any:
    return lambda: store.write_document(KEY, body, "application/json", merge=merge,
                                        conditions=Preconditions(), must_be_conditional=False)


def test_a_small_put_reads_on_its_loop_only_from_a_local_store(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    local = settings.event_store is None
    assert _reads_on_loop(store, monkeypatch, _put(store, b'{"page": 1}')) == [local]


def test_a_large_put_is_checked_in_a_thread(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    body = orjson.dumps({"notes": "x" * INLINE_BODY_BYTES})
    assert _reads_on_loop(store, monkeypatch, _put(store, body)) == [False]
    assert store.document(KEY).content == body


def test_a_merge_reads_the_stored_document_in_a_thread(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    run(_put(store, b'{"page": 1}')())
    assert _reads_on_loop(store, monkeypatch, _put(store, b'{"done": true}', merge=True)) == [False]
    assert orjson.loads(store.document(KEY).content) == {"page": 1, "done": True}


def test_a_single_get_reads_on_its_loop_only_from_a_local_store(
        store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    run(_put(store, b'{"page": 1}')())
    local = settings.event_store is None
    assert _reads_on_loop(store, monkeypatch, lambda: store.read_document(KEY)) == [local]
