"""A statement request's loop serves every request of its worker: it parses, validates and seals
a batch itself only when that cannot stall it, a small JSON body whose sealing reads nothing over
a network; a large body, one with attachments and a sealing that must read the erasure
generation from PostgreSQL go to a thread (lrs/request_loop.py). What is stored is the same."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

import lrs.application
from lrs.config import Settings
from lrs.request_loop import INLINE_BODY_BYTES
from tests.attachments import declared, multipart
from tests.conftest import XAPIClient
from tests.statements import statement, with_id

ESSAY = b"My essay on fractions.\n" * 20


def _large_batch() -> list[dict[str, Any]]:
    """40 statements (a test store takes at most 50 in a batch) of 2 KB answers each."""
    return [with_id(statement(result={"response": "x" * 2048})) for _ in range(40)]


def _prepared_on_loop(server: TestClient, monkeypatch: pytest.MonkeyPatch,
                      send: Any) -> list[bool]:
    """For each batch the request prepared: was it on the loop that handed it to the writer?"""
    services = server.app.state.services  # type: ignore[attr-defined]
    store, committer = services.store, services.committer
    work_ahead, submit = store.work_ahead, committer.submit
    prepared_in: list[int] = []
    submitted_from: list[int] = []

    def recorded_work_ahead(batch: Any) -> Any:
        prepared_in.append(threading.get_ident())
        return work_ahead(batch)

    def recorded_submit(batch: Any) -> Any:
        submitted_from.append(threading.get_ident())
        return submit(batch)

    monkeypatch.setattr(store, "work_ahead", recorded_work_ahead)
    monkeypatch.setattr(committer, "submit", recorded_submit)
    send()
    assert len(prepared_in) == len(submitted_from) == 1
    return [prepared == loop for prepared, loop in zip(prepared_in, submitted_from, strict=True)]


def _generation_fresh(monkeypatch: pytest.MonkeyPatch, fresh: bool) -> None:
    """The worker's erasure generation read a moment ago (True), or due to be read again."""
    monkeypatch.setattr(lrs.application, "KEY_GENERATION_MAX_AGE", 3600.0 if fresh else 0.0)


def _post_ok(xapi: XAPIClient, body: Any) -> Any:
    def send() -> None:
        response = xapi.post(body)
        assert response.status_code == 200, response.text
    return send


def test_a_small_batch_is_prepared_on_its_loop_when_it_reads_nothing_over_a_network(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    xapi.post(with_id(statement()))  # the generation is read once, when the ring is new
    _generation_fresh(monkeypatch, True)
    batch = [with_id(statement()) for _ in range(10)]
    assert _prepared_on_loop(server, monkeypatch, _post_ok(xapi, batch)) == [True]


def test_a_batch_whose_sealing_reads_the_generation_is_prepared_on_its_loop_only_from_a_local_store(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch,
        settings: Settings) -> None:
    _generation_fresh(monkeypatch, False)
    local = settings.event_store is None
    assert _prepared_on_loop(server, monkeypatch, _post_ok(xapi, with_id(statement()))) == [local]


def test_a_large_batch_is_prepared_in_a_thread(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation_fresh(monkeypatch, True)
    batch = _large_batch()
    assert len(orjson.dumps(batch)) > INLINE_BODY_BYTES
    assert _prepared_on_loop(server, monkeypatch, _post_ok(xapi, batch)) == [False]
    assert all(xapi.get(statementId=s["id"]).status_code == 200 for s in batch)


def test_a_batch_with_attachments_is_prepared_in_a_thread(
        xapi: XAPIClient, server: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _generation_fresh(monkeypatch, True)
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    body, content_type = multipart(doc, (ESSAY, "text/plain"))

    def send() -> None:
        response = xapi.request("POST", "/xAPI/statements", content=body,
                                headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
    assert _prepared_on_loop(server, monkeypatch, send) == [False]
    assert xapi.get(statementId=doc["id"]).status_code == 200


def test_an_invalid_large_batch_prepared_in_a_thread_is_refused_naming_the_statement_and_rule(
        xapi: XAPIClient, server: TestClient) -> None:
    batch = _large_batch()
    del batch[30]["verb"]
    assert len(orjson.dumps(batch)) > INLINE_BODY_BYTES
    response = xapi.post(batch)
    assert response.status_code == 400
    assert "statements[30]" in response.text and "verb" in response.text
    assert xapi.get(statementId=batch[0]["id"]).status_code == 404
