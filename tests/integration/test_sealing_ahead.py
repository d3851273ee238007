"""Statements sealed where the request is read (a worker of `lrs serve --workers N`) before the
single writer stamps them: the writer takes that work only under its own erasure generation and
stored day, seals again otherwise, and never stores a statement under a key that is gone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ingest.enrich import format_stored
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings
from lrs.erasure import learner_of
from lrs.sealing import SEALED

WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
ADA, BOB = "mailto:ada@example.org", "mailto:bob@example.org"


def said(mbox: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"mbox": mbox},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": "https://example.org/q/1"}, "result": {"response": text}, **extra}


def store_of(settings: Settings) -> LearningRecordStore:
    return LearningRecordStore(env=settings.event_store_env())


def append(store: LearningRecordStore, prepared: Any) -> list[str]:
    outcome = store.store_batches([prepared])[0]
    assert not isinstance(outcome, Exception), outcome
    return outcome


def post(worker: LearningRecordStore, writer: LearningRecordStore, doc: dict[str, Any]) -> None:
    """What `lrs serve` does with a request: sealed ahead where it is read, written by the
    writer, and the keys it was sealed under kept by the reading process once acknowledged."""
    ahead = worker.work_ahead(prepare_statements(doc, WRITER, "1.0.3", 10))
    append(writer, ahead)
    worker.sealed_ahead_stored(ahead)


def read(store: LearningRecordStore, statement_id: str) -> dict[str, Any]:
    return store.statement(statement_id)[0]


def envelope(store: LearningRecordStore, statement_id: str) -> list[Any]:
    found = store.index.statement(statement_id, voided=False, credential=None)
    assert found is not None
    sealed: list[Any] = store._raw_statement(found.event)[SEALED]
    return sealed


def test_the_writer_takes_sealing_done_ahead_under_its_own_generation_and_day(
        settings: Settings) -> None:
    store = store_of(settings)
    try:
        doc = said(ADA, "one half")
        ahead = store.work_ahead(prepare_statements(doc, WRITER, "1.0.3", 10))
        assert ahead[0].sealed is not None
        append(store, ahead)
        stored = envelope(store, doc["id"])
        assert stored[2] in ahead[0].sealed.body.decode()  # the blob sealed ahead, as it was
        opened = read(store, doc["id"])
        assert opened["result"]["response"] == "one half"
        assert opened["stored"] == stored[4] and opened["timestamp"] == stored[4]
    finally:
        store.close()


def test_a_statement_sealed_ahead_under_a_key_erased_meanwhile_is_sealed_again(
        settings: Settings) -> None:
    """Ada's key of today is cached; a forget deletes it between the sealing and the write.
    Stored as sealed, the statement could never be read: the writer must seal it again."""
    store = store_of(settings)
    try:
        append(store, store.work_ahead(prepare_statements(said(ADA, "first"), WRITER, "1.0.3", 10)))
        late = said(ADA, "sent as the forget ran")
        ahead = store.work_ahead(prepare_statements(late, WRITER, "1.0.3", 10))
        assert store.erase_learner(learner_of(ADA.removeprefix("mailto:")), by="admin")[1].keys == 1
        append(store, ahead)
        assert read(store, late["id"])["result"]["response"] == "sent as the forget ran"
        assert envelope(store, late["id"])[2] not in ahead[0].sealed.body.decode()  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_statement_sealed_ahead_by_a_process_that_missed_an_erasure_is_sealed_again(
        settings: Settings) -> None:
    """A worker's ring learns of an erasure only when it reads the generation again; until then
    its sealing is refused by the writer, whose write checks the generation in its transaction."""
    worker, writer = store_of(settings), store_of(settings)
    try:
        post(worker, writer, said(BOB, "bob"))
        post(worker, writer, said(ADA, "ada"))  # the worker keeps the key it made for Ada
        erased = writer.erase_learner(learner_of(ADA.removeprefix("mailto:")), by="admin")[1]
        assert (erased.statements, erased.keys) == (1, 1)  # the worker's ring still holds that key
        late = said(ADA, "after the forget")
        ahead = worker.work_ahead(prepare_statements(late, WRITER, "1.0.3", 10))
        append(writer, ahead)
        assert read(writer, late["id"])["result"]["response"] == "after the forget"
        assert read(worker, late["id"])["result"]["response"] == "after the forget"
    finally:
        worker.close()
        writer.close()


def test_keys_made_ahead_for_duplicates_are_written_with_nothing_else(settings: Settings) -> None:
    """A request of duplicates appends no statement, yet its process keeps the keys it sealed
    them under once acknowledged: the writer must write those keys too, or the next request of
    the same learner is sealed under a key that does not exist."""
    worker, writer = store_of(settings), store_of(settings)
    try:
        first = said(ADA, "first")
        append(writer, prepare_statements(first, WRITER, "1.0.3", 10))  # sealed by the writer
        post(worker, writer, first)  # a duplicate: the worker made a key of its own for Ada
        later = said(ADA, "later")
        post(worker, writer, later)
        assert read(writer, later["id"])["result"]["response"] == "later"
    finally:
        worker.close()
        writer.close()


def test_a_statement_sealed_ahead_on_another_day_than_stored_is_sealed_again(
        settings: Settings) -> None:
    """A key's day is the stored day (retention shreds by it): sealed just before midnight and
    stored after it, the statement gets a key of the stored day."""
    store = store_of(settings)
    try:
        doc = said(ADA, "at midnight")
        ahead = store.work_ahead(prepare_statements(doc, WRITER, "1.0.3", 10))
        tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=1).timestamp() + 86_400
        outcome = store.store_batches([ahead], now=datetime.fromtimestamp(tomorrow, UTC))[0]
        assert not isinstance(outcome, Exception)
        # Retention of everything before the stored day leaves it: its key is of that day.
        store.apply_retention(format_stored(datetime.fromtimestamp(tomorrow, UTC))[:10], by="admin")
        assert read(store, doc["id"])["result"]["response"] == "at midnight"
    finally:
        store.close()
