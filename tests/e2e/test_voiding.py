"""Voiding (Data 2.3.2, Communication 2.1.4)."""

from __future__ import annotations

import json

from tests.conftest import XAPIClient
from tests.statements import statement, voiding, with_id

ADA = json.dumps({"mbox": "mailto:ada@example.org"})


def stored(xapi: XAPIClient, doc: dict) -> str:  # type: ignore[type-arg]
    response = xapi.post(with_id(doc))
    assert response.status_code == 200, response.text
    return str(response.json()[0])


def test_a_voided_statement_is_hidden_from_statement_id(xapi: XAPIClient) -> None:
    target = stored(xapi, statement())
    stored(xapi, voiding(target))
    assert xapi.get(statementId=target).status_code == 404


def test_a_voided_statement_is_returned_by_voided_statement_id(xapi: XAPIClient) -> None:
    target = stored(xapi, statement())
    stored(xapi, voiding(target))
    response = xapi.get(voidedStatementId=target)
    assert response.status_code == 200
    assert response.json()["id"] == target


def test_voided_statement_id_does_not_return_a_statement_that_is_not_voided(
    xapi: XAPIClient,
) -> None:
    target = stored(xapi, statement())
    assert xapi.get(voidedStatementId=target).status_code == 404


def test_a_voided_statement_leaves_filtered_queries_but_its_voiding_statement_stays(
    xapi: XAPIClient,
) -> None:
    target = stored(xapi, statement())
    voider = stored(xapi, voiding(target))
    found = [s["id"] for s in xapi.get(agent=ADA).json()["statements"]]
    assert found == [voider]


def test_voiding_a_voiding_statement_is_rejected(xapi: XAPIClient) -> None:
    target = stored(xapi, statement())
    voider = stored(xapi, voiding(target))
    response = xapi.post(voiding(voider))
    assert response.status_code == 400
    assert "voiding statements cannot be voided" in response.json()["error"]["message"]


def test_voiding_a_voiding_statement_in_the_same_batch_is_rejected(xapi: XAPIClient) -> None:
    target = stored(xapi, statement())
    first = with_id(voiding(target))
    response = xapi.post([first, voiding(first["id"])])
    assert response.status_code == 400
    assert xapi.get(statementId=target).status_code == 200


def test_a_statement_voided_before_it_arrives_is_voided_when_it_arrives(xapi: XAPIClient) -> None:
    late = with_id(statement())
    stored(xapi, voiding(late["id"]))
    xapi.post(late)
    assert xapi.get(statementId=late["id"]).status_code == 404
    assert xapi.get(voidedStatementId=late["id"]).status_code == 200


def _writer(xapi: XAPIClient, name: str, scopes: list[str]) -> XAPIClient:
    store = xapi.http.app.state.services.store  # type: ignore[attr-defined]
    key, secret = store.issue_credential(name, scopes)
    return xapi.as_credential(key, secret)


def test_a_credential_may_void_its_own_statements(xapi: XAPIClient) -> None:
    tool = _writer(xapi, "tool", ["statements/write", "statements/read"])
    target = stored(tool, statement())
    assert tool.post(with_id(voiding(target))).status_code == 200
    assert xapi.get(voidedStatementId=target).status_code == 200


def test_voiding_another_credentials_statement_needs_scope_all(xapi: XAPIClient) -> None:
    owner = _writer(xapi, "owner", ["statements/write"])
    other = _writer(xapi, "other", ["statements/write", "statements/read"])
    target = stored(owner, statement())
    response = other.post(with_id(voiding(target)))
    assert response.status_code == 403
    assert "scope all" in response.json()["error"]["message"]
    assert xapi.get(statementId=target).status_code == 200  # still there, not voided


def test_a_credential_with_scope_all_may_void_any_statement(xapi: XAPIClient) -> None:
    owner = _writer(xapi, "owner", ["statements/write"])
    target = stored(owner, statement())
    assert xapi.post(with_id(voiding(target))).status_code == 200
    assert xapi.get(statementId=target).status_code == 404


def test_voiding_a_statement_not_yet_held_needs_scope_all(xapi: XAPIClient) -> None:
    tool = _writer(xapi, "tool", ["statements/write"])
    response = tool.post(with_id(voiding("6f5e8a3c-4f0d-4b8e-9d7a-1c2b3a4d5e6f")))
    assert response.status_code == 403
    assert "did not store" in response.json()["error"]["message"]


def test_a_refused_voiding_statement_refuses_its_whole_batch(xapi: XAPIClient) -> None:
    owner = _writer(xapi, "owner", ["statements/write"])
    other = _writer(xapi, "other", ["statements/write"])
    target = stored(owner, statement())
    batch = [with_id(statement()), with_id(voiding(target))]
    assert other.post(batch).status_code == 403
    assert xapi.get(statementId=batch[0]["id"]).status_code == 404
