"""What no store can keep is refused at the door, naming the property (issue 12, items 2b and 3).

PostgreSQL's text refuses NUL; orjson stops encoding at 254 levels. Either, found only while a
group of requests was written, failed every request in the group. Each case here must be a 400
that names the property and the rule, with nothing stored, on both stores.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas.limits import MAX_JSON_DEPTH
from tests.conftest import XAPIClient
from tests.statements import activity, agent, statement, with_id

NUL = "\x00"


def nested(depth: int) -> Any:
    """A value whose own nesting is ``depth`` levels of arrays."""
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def assert_refused(response: Any, *words: str) -> str:
    assert response.status_code == 400, response.text
    message: str = response.json()["error"]["message"]
    for word in words:
        assert word in message, message
    return message


def assert_nothing_stored(xapi: XAPIClient) -> None:
    assert xapi.get().json()["statements"] == []


@pytest.mark.parametrize(("where", "doc"), [
    ("verb.id", statement(verb={"id": f"http://example.org/verbs/a{NUL}b"})),
    ("object.id", statement(object={"id": f"http://example.org/activities/a{NUL}b"})),
    ("actor.mbox", statement(actor={"mbox": f"mailto:a{NUL}b@example.org"})),
    ("actor.name", statement(actor={**agent(), "name": f"Ada{NUL}"})),
    ('object.definition.name["en-US"]', statement(object={**activity(), "definition": {
        "name": {"en-US": f"x{NUL}"}}})),
    ('result.extensions["https://example.org/ext"].note',
     statement(result={"extensions": {"https://example.org/ext": {"note": f"a{NUL}"}}})),
])
def test_a_nul_character_in_any_string_is_rejected_naming_the_property(
        xapi: XAPIClient, where: str, doc: dict[str, Any]) -> None:
    assert_refused(xapi.post(doc), f"statement.{where}", "NUL")
    assert_nothing_stored(xapi)


def test_a_nul_character_in_an_extension_key_is_rejected(xapi: XAPIClient) -> None:
    doc = statement(context={"extensions": {f"https://example.org/a{NUL}b": 1}})
    assert_refused(xapi.post(doc), "statement.context.extensions")
    assert_nothing_stored(xapi)


def test_a_nul_in_one_statement_rejects_the_whole_batch(xapi: XAPIClient) -> None:
    batch = [with_id(statement()), with_id(statement(actor={**agent(), "name": NUL}))]
    assert_refused(xapi.post(batch), "statements[1].actor.name", "NUL")
    assert_nothing_stored(xapi)


def test_a_lone_surrogate_escape_is_rejected_naming_the_property(xapi: XAPIClient) -> None:
    body = b'{"actor": {"mbox": "mailto:a@example.org", "name": "\\ud800"},' \
           b' "verb": {"id": "http://example.org/v"}, "object": {"id": "http://example.org/a"}}'
    response = xapi.request("POST", "/xAPI/statements", content=body,
                            headers={"Content-Type": "application/json"})
    assert_refused(response, "body.actor.name", "lone surrogate")
    assert_nothing_stored(xapi)


def test_json_nested_deeper_than_the_limit_is_rejected_naming_the_limit(xapi: XAPIClient) -> None:
    doc = statement(result={"extensions": {"https://example.org/deep": nested(MAX_JSON_DEPTH)}})
    message = assert_refused(xapi.post(doc), "deeper than 64", "result")
    assert "extensions" in message
    assert_nothing_stored(xapi)


def test_json_nested_to_the_limit_is_accepted_and_read_back(xapi: XAPIClient) -> None:
    # statement > result > extensions > the value's own arrays: 3 levels above it.
    doc = with_id(statement(result={"extensions": {
        "https://example.org/deep": nested(MAX_JSON_DEPTH - 3)}}))
    assert xapi.post(doc).status_code == 200
    page = xapi.get()
    assert page.status_code == 200
    assert page.json()["statements"][0]["result"] == doc["result"]


def test_json_nested_a_thousand_levels_is_rejected_not_a_server_error(xapi: XAPIClient) -> None:
    body = b'{"actor": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = xapi.request("POST", "/xAPI/statements", content=body,
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_a_json_document_nested_deeper_than_the_limit_is_rejected(xapi: XAPIClient) -> None:
    params = {"activityId": "https://example.org/a", "agent": '{"mbox": "mailto:a@example.org"}',
              "stateId": "deep"}
    deep = b'{"a": ' + b"[" * 80 + b"]" * 80 + b"}"
    for method in ("PUT", "POST"):
        response = xapi.request(method, "/xAPI/activities/state", params=params, content=deep,
                                headers={"Content-Type": "application/json"})
        assert_refused(response, "deeper than 64")
    response = xapi.request("GET", "/xAPI/activities/state", params=params)
    assert response.status_code == 404


def test_a_nul_in_a_query_parameter_is_rejected_naming_it(xapi: XAPIClient) -> None:
    params = {"activityId": "https://example.org/a", "agent": '{"mbox": "mailto:a@example.org"}',
              "stateId": f"a{NUL}b"}
    response = xapi.request("PUT", "/xAPI/activities/state", params=params, content=b"x",
                            headers={"Content-Type": "text/plain"})
    assert_refused(response, "stateId", "NUL")


def test_an_id_followed_by_a_line_break_is_a_bad_parameter_not_a_server_error(
        xapi: XAPIClient) -> None:
    """Python's '$' matches before a final line break, so "<uuid>\n" passed the id check and
    reached the store as an id no statement can have: 400 naming the parameter, as for any
    malformed id."""
    stored = with_id(statement())
    assert xapi.post(stored).status_code == 200
    for name in ("statementId", "voidedStatementId"):
        assert_refused(xapi.get(**{name: stored["id"] + "\n"}), name, "UUID")
    assert_refused(xapi.get(activity="https://example.org/a\n"), "activity")
    assert_refused(xapi.get(since="2026-10-01T10:00:00Z\n"), "since")


def test_a_nul_in_the_agent_parameter_is_rejected(xapi: XAPIClient) -> None:
    response = xapi.get(agent='{"mbox": "mailto:a\\u0000b@example.org"}')
    assert_refused(response, "agent")


def test_a_statement_stored_before_the_depth_limit_still_reads_back(xapi: XAPIClient) -> None:
    """Stores written before the limit may hold statements nested nearly 254 deep; a page wraps
    them in two more levels, past what orjson encodes. Every page must still answer."""
    from dataclasses import replace

    from ingest.pipeline import prepare_statements
    from lrs.auth import Principal

    store = xapi.http.app.state.services.store  # type: ignore[attr-defined]
    writer = Principal("old", "old", frozenset({"all"}), "urn:lrs:credentials")
    (shallow,) = prepare_statements(with_id(statement()), writer, "1.0.3", 1)
    deep = {**shallow.document(), "result": {"extensions": {"https://example.org/deep": nested(250)}}}
    old = replace(shallow, body=orjson.dumps(deep))
    assert store.store_batches([[old]])[0] == [shallow.statement_id]
    page = xapi.get()
    assert page.status_code == 200
    assert page.json()["statements"][0]["id"] == shallow.statement_id


def test_an_agent_parameter_nested_too_deep_is_rejected_naming_the_limit(xapi: XAPIClient) -> None:
    deep = '{"mbox": "mailto:a@example.org", "x": ' + "[" * 80 + "]" * 80 + "}"
    assert_refused(xapi.get(agent=deep), "agent", "deeper than 64")
