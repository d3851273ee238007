"""Bad transport input gets a clear error and never a partial write."""

from __future__ import annotations

from tests.conftest import XAPIClient
from tests.statements import statement, with_id


def test_malformed_json_is_400_with_the_position(xapi: XAPIClient) -> None:
    response = xapi.request("POST", "/xAPI/statements", content=b'{"actor": ',
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("body: malformed JSON")


def test_wrong_content_type_is_415(xapi: XAPIClient) -> None:
    response = xapi.request("POST", "/xAPI/statements", content=b"actor=ada",
                            headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "text/plain" in response.json()["error"]["message"]


def test_body_over_the_limit_is_413(xapi: XAPIClient) -> None:
    big = statement(result={"response": "x" * 250_000})
    response = xapi.post(big)
    assert response.status_code == 413
    assert "LRS_MAX_BODY_BYTES" in response.json()["error"]["message"]


def test_body_over_the_limit_without_content_length_is_413(xapi: XAPIClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"actor": {"mbox": "mailto:a@example.org"}, "verb": {"id": "http://e.org/v"},'
        yield b'"result": {"response": "' + b"x" * 250_000 + b'"}, "object": {"id": "http://e.org/a"}}'

    response = xapi.request("POST", "/xAPI/statements", content=chunks(),
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_batch_over_the_statement_limit_is_rejected(xapi: XAPIClient) -> None:
    batch = [with_id(statement()) for _ in range(51)]
    response = xapi.post(batch)
    assert response.status_code == 400
    assert "at most 50 statements" in response.json()["error"]["message"]
    assert xapi.get(statementId=batch[0]["id"]).status_code == 404


def test_a_json_string_body_is_not_a_statement(xapi: XAPIClient) -> None:
    response = xapi.post("hello")
    assert response.status_code == 400
    assert "must be a JSON object" in response.json()["error"]["message"]


def test_deeply_nested_garbage_does_not_crash_the_server(xapi: XAPIClient) -> None:
    nested = "[" * 2000 + "]" * 2000
    response = xapi.request("POST", "/xAPI/statements", content=nested.encode(),
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400
