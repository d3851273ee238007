"""PUT /xAPI/statements?statementId= (Communication 2.1.1)."""

from __future__ import annotations

import uuid

from tests.conftest import XAPIClient
from tests.statements import statement


def test_put_stores_the_statement_and_answers_204(xapi: XAPIClient) -> None:
    sid = str(uuid.uuid4())
    response = xapi.put(statement(), sid)
    assert response.status_code == 204
    assert response.content == b""
    assert xapi.get(statementId=sid).json()["id"] == sid


def test_put_needs_a_statement_id(xapi: XAPIClient) -> None:
    response = xapi.request("PUT", "/xAPI/statements", json=statement())
    assert response.status_code == 400
    assert "statementId" in response.json()["error"]["message"]


def test_put_statement_id_must_be_a_uuid(xapi: XAPIClient) -> None:
    assert xapi.put(statement(), "not-a-uuid").status_code == 400


def test_put_id_in_body_must_match_the_parameter(xapi: XAPIClient) -> None:
    response = xapi.put({**statement(), "id": str(uuid.uuid4())}, str(uuid.uuid4()))
    assert response.status_code == 400
    assert "differs from statementId" in response.json()["error"]["message"]


def test_put_same_statement_twice_is_accepted(xapi: XAPIClient) -> None:
    sid = str(uuid.uuid4())
    assert xapi.put(statement(), sid).status_code == 204
    assert xapi.put(statement(), sid).status_code == 204


def test_put_different_statement_with_a_used_id_is_a_conflict(xapi: XAPIClient) -> None:
    sid = str(uuid.uuid4())
    xapi.put(statement(), sid)
    assert xapi.put(statement(verb={"id": "http://example.org/v/other"}), sid).status_code == 409


def test_put_takes_one_statement_not_an_array(xapi: XAPIClient) -> None:
    assert xapi.put([statement()], str(uuid.uuid4())).status_code == 400


def test_put_with_an_uppercase_id_finds_the_same_statement(xapi: XAPIClient) -> None:
    sid = str(uuid.uuid4())
    xapi.put(statement(), sid.upper())
    assert xapi.get(statementId=sid).status_code == 200
