"""A statement request's loop serves every request of its worker: it validates and seals a batch
itself only when that cannot stall it, a few statements in a small JSON body whose sealing reads
nothing; many statements, a large body, attachments and a sealing that must read the erasure
generation (once a second) go to a thread (lrs/request_loop.py). What is stored is the same."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

import ingest.pipeline
import lrs.application
from lrs.request_loop import HEAVY_AT_ONCE, INLINE_BODY_BYTES, INLINE_ITEMS
from tests.attachments import declared, multipart
from tests.conftest import XAPIClient
from tests.statements import statement, with_id

ESSAY = b"My essay on fractions.\n" * 20


def _large_batch() -> list[dict[str, Any]]:
    """A few statements (a test store takes at most 50 in a batch) of 2 KB answers each."""
    return [with_id(statement(result={"response": "x" * 2048})) for _ in range(INLINE_ITEMS)]


class Threads:
    """Where a request validated its statements, where it sealed them, and its loop."""

    def __init__(self, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.validated: list[int] = []
        self.sealed: list[int] = []
        self.loop: list[int] = []
        store = server.app.state.services.store  # type: ignore[attr-defined]
        validate, work_ahead, stored = (ingest.pipeline.validate_statements, store.work_ahead,
                                        store.sealed_ahead_stored)

        def recorded(calls: list[int], fn: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                calls.append(threading.get_ident())
                return fn(*args, **kwargs)
            return call

        monkeypatch.setattr(ingest.pipeline, "validate_statements", recorded(self.validated, validate))
        monkeypatch.setattr(store, "work_ahead", recorded(self.sealed, work_ahead))
        # Called once the writer has answered: on the request's loop in any case.
        monkeypatch.setattr(store, "sealed_ahead_stored", recorded(self.loop, stored))

    def on_loop(self) -> tuple[bool, bool]:
        """(validated on the loop, sealed on the loop), for the one request sent."""
        assert len(self.validated) == len(self.sealed) == len(self.loop) == 1
        return self.validated[0] == self.loop[0], self.sealed[0] == self.loop[0]


def _generation_fresh(monkeypatch: pytest.MonkeyPatch, fresh: bool) -> None:
    """The worker's erasure generation read a moment ago (True), or due to be read again."""
    monkeypatch.setattr(lrs.application, "KEY_GENERATION_MAX_AGE", 3600.0 if fresh else 0.0)


def _generation_read(xapi: XAPIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ring read its generation (a new ring reads it on its first write) a moment ago."""
    _posted(xapi, with_id(statement()))
    _generation_fresh(monkeypatch, True)


def _posted(xapi: XAPIClient, body: Any) -> None:
    response = xapi.post(body)
    assert response.status_code == 200, response.text


def test_a_few_small_statements_are_prepared_on_their_loop_when_nothing_is_read_over_a_network(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation_read(xapi, monkeypatch)
    threads = Threads(server, monkeypatch)
    _posted(xapi, [with_id(statement()) for _ in range(10)])
    assert threads.on_loop() == (True, True)


def test_a_batch_whose_sealing_reads_the_generation_is_prepared_in_a_thread(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation_read(xapi, monkeypatch)
    _generation_fresh(monkeypatch, False)
    threads = Threads(server, monkeypatch)
    _posted(xapi, with_id(statement()))
    assert threads.on_loop() == (False, False)


def test_a_generation_that_comes_due_while_a_batch_is_checked_on_its_loop_is_not_read_there(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    store = server.app.state.services.store  # type: ignore[attr-defined]
    _generation_read(xapi, monkeypatch)
    read_in: list[int] = []
    generation = store.key_ring._generation

    def read(*args: Any) -> Any:
        read_in.append(threading.get_ident())
        return generation(*args)

    # Fresh when the loop decided where to check the batch, due by the time it seals it.
    monkeypatch.setattr(store, "work_ahead_reads", lambda: False)
    monkeypatch.setattr(store.key_ring, "due", lambda max_age: True)
    monkeypatch.setattr(store.key_ring, "_generation", read)
    threads = Threads(server, monkeypatch)
    _posted(xapi, with_id(statement()))
    assert threads.on_loop() == (True, True)
    assert read_in == []  # the next request reads it, in a thread


def test_many_statements_in_a_small_body_are_prepared_in_a_thread(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation_read(xapi, monkeypatch)
    batch = [with_id(statement()) for _ in range(INLINE_ITEMS + 1)]
    assert len(orjson.dumps(batch)) <= INLINE_BODY_BYTES
    threads = Threads(server, monkeypatch)
    _posted(xapi, batch)
    assert threads.on_loop() == (False, False)


def test_a_large_body_is_prepared_in_a_thread(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation_read(xapi, monkeypatch)
    batch = _large_batch()
    assert len(orjson.dumps(batch)) > INLINE_BODY_BYTES
    threads = Threads(server, monkeypatch)
    _posted(xapi, batch)
    assert threads.on_loop() == (False, False)
    assert all(xapi.get(statementId=s["id"]).status_code == 200 for s in batch)


def test_a_batch_with_attachments_is_prepared_in_a_thread(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation_read(xapi, monkeypatch)
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    body, content_type = multipart(doc, (ESSAY, "text/plain"))
    threads = Threads(server, monkeypatch)
    response = xapi.request("POST", "/xAPI/statements", content=body,
                            headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert threads.on_loop() == (False, False)
    assert xapi.get(statementId=doc["id"]).status_code == 200


def test_an_invalid_large_batch_prepared_in_a_thread_is_refused_naming_the_statement_and_rule(
        xapi: XAPIClient) -> None:
    batch = _large_batch()
    del batch[20]["verb"]
    assert len(orjson.dumps(batch)) > INLINE_BODY_BYTES
    response = xapi.post(batch)
    assert response.status_code == 400
    assert "statements[20]" in response.text and "verb" in response.text
    assert xapi.get(statementId=batch[0]["id"]).status_code == 404


def test_a_worker_checks_at_most_heavy_at_once_large_batches_at_a_time(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU work gains nothing from more at once on the cores there are; each batch being
    checked holds its parsed and sealed copies in memory."""
    validate = ingest.pipeline.validate_statements
    inside, most = [0], [0]
    lock, crowded = threading.Lock(), threading.Event()

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            if inside[0] > HEAVY_AT_ONCE:
                crowded.set()
        crowded.wait(1.0)  # long enough for the others to come in, were they let in
        with lock:
            inside[0] -= 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(ingest.pipeline, "validate_statements", counted)
    batches = [_large_batch() for _ in range(HEAVY_AT_ONCE + 2)]
    answers: list[int] = []
    senders = [threading.Thread(target=lambda b=b: answers.append(xapi.post(b).status_code))
               for b in batches]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert answers == [200] * len(batches)
    assert most[0] == HEAVY_AT_ONCE
