"""Attacks on sealing ahead (lrs/key_ring.py, lrs/statement_events.py): the rules a key ring
shared by the request threads (seal_ahead, in the thread pool) and the committer thread must
keep. Each thread interleaving is made deterministic by running the other thread's call at the
point where the first can be preempted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import lrs.application as application
import lrs.statement_events as statement_events
from ingest.enrich import format_stored
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings

WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
ADA = "mailto:ada@example.org"


def said(mbox: str, text: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"mbox": mbox},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": "https://example.org/q/1"}, "result": {"response": text}}


def store_of(settings: Settings) -> LearningRecordStore:
    return LearningRecordStore(env=settings.event_store_env())


def append(store: LearningRecordStore, prepared: Any, now: datetime) -> None:
    outcome = store.store_batches([prepared], now=now)[0]
    assert not isinstance(outcome, Exception), outcome


def at(moment: datetime) -> type:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return moment
    return Frozen


def a_request_read_at(store: LearningRecordStore, moment: datetime,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """What another pool thread does for a request read at ``moment``: store.work_ahead."""
    with monkeypatch.context() as m:
        m.setattr(application, "datetime", at(moment))
        store.work_ahead(prepare_statements(said(ADA, "read just before midnight"), WRITER,
                                            "1.0.3", 10))


def interleave(store: LearningRecordStore, moment: datetime,
               monkeypatch: pytest.MonkeyPatch) -> None:
    """The next statement sealed (by the committer or a request thread) is preempted just
    before it asks the ring for its keys, and a request read at ``moment`` is sealed ahead."""
    real = statement_events.seal_statement
    state = {"done": False}

    def preempted(body: bytes, lone: str | None, key_of: Any) -> bytes:
        if not state["done"]:
            state["done"] = True
            a_request_read_at(store, moment, monkeypatch)
        return real(body, lone, key_of)

    monkeypatch.setattr(statement_events, "seal_statement", preempted)


def days() -> tuple[datetime, datetime, str]:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    last_evening = today.replace(hour=23, minute=59, second=59) - timedelta(days=1)
    return today, last_evening, format_stored(today)[:10]


def ada_yesterday_then_today(store: LearningRecordStore, monkeypatch: pytest.MonkeyPatch
                             ) -> tuple[dict[str, Any], Any, datetime, str]:
    """Ada stored a statement at 23:59:59 yesterday; her statement of today is prepared, and the
    next sealing is preempted by a request read at 23:59:59 yesterday."""
    today, last_evening, day = days()
    append(store, prepare_statements(said(ADA, "yesterday"), WRITER, "1.0.3", 10), last_evening)
    doc = said(ADA, "today")
    prepared = prepare_statements(doc, WRITER, "1.0.3", 10)
    interleave(store, last_evening, monkeypatch)
    return doc, prepared, today, day


def test_the_committer_never_seals_a_statement_under_a_key_of_another_day(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention shreds by the key's day: a statement stored today under yesterday's key dies
    with yesterday's statements (acknowledged, indexed, never readable again). The committer
    makes its KeyBatch for today, then a pool thread seals a request read at 23:59:59 yesterday
    (its batch switched the shared ring's one cache to yesterday, where Ada's key of yesterday
    was; KeyBatch.key_of read the ring's cache at call time and got that key: found by an
    outside attacker, now each day has its own cache and a batch keeps the one it was made with)."""
    store = store_of(settings)
    try:
        doc, prepared, today, day = ada_yesterday_then_today(store, monkeypatch)
        append(store, prepared, today)
        store.apply_retention(day, by="admin")  # yesterday's statements and keys go
        assert store.statement(doc["id"])[0]["result"]["response"] == "today"
    finally:
        store.close()


def test_a_statement_sealed_ahead_for_today_is_never_sealed_under_a_key_of_another_day(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pool threads at midnight: request B (read today) has its KeyBatch of today when
    request A (read at 23:59:59 yesterday) switches the shared ring's day; B's statement is
    sealed under Ada's key of yesterday, its SealedAhead says today, and the writer takes it."""
    store = store_of(settings)
    try:
        doc, prepared, today, day = ada_yesterday_then_today(store, monkeypatch)
        with monkeypatch.context() as m:
            m.setattr(application, "datetime", at(today))
            ahead = store.work_ahead(prepared)
        monkeypatch.undo()
        append(store, ahead, today)
        store.apply_retention(day, by="admin")
        assert store.statement(doc["id"])[0]["result"]["response"] == "today"
    finally:
        store.close()


def test_no_acknowledged_statement_is_sealed_under_a_key_an_erasure_deleted(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """An erasure (erase_learner in a request thread, or KeyRing.refresh in a pool thread's
    seal_ahead) that lands after a write committed and before KeyRing.committed caches its keys
    must not leave the erased learner's deleted key in the cache: the next statement would be
    sealed under it, pass the generation check, be acknowledged, and never be read. (Found when
    committed checked the generation and filled the cache in two unlocked steps; both now hold
    the ring's lock, so the erasure can only come before the check or after the update.)"""
    from lrs.erasure import learner_of
    store = store_of(settings)
    try:
        ring = store.key_ring
        real_committed = ring.committed
        hooked = {"done": False}

        def committed(batch: Any) -> None:
            if not hooked["done"]:
                hooked["done"] = True
                assert store.erase_learner(learner_of(ADA.removeprefix("mailto:")),
                                           by="admin")[1].keys == 1
            real_committed(batch)

        monkeypatch.setattr(ring, "committed", committed)
        append(store, prepare_statements(said(ADA, "before the forget"), WRITER, "1.0.3", 10),
               datetime.now(UTC))
        monkeypatch.undo()
        doc = said(ADA, "after the forget")
        append(store, prepare_statements(doc, WRITER, "1.0.3", 10), datetime.now(UTC))
        assert store.statement(doc["id"])[0]["result"]["response"] == "after the forget"
    finally:
        store.close()
