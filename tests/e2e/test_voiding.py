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
