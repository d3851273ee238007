"""Activities and Agents resources (Communication 2.5, 2.6)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import XAPIClient
from tests.statements import agent, statement

QUIZ = "https://example.org/activities/quiz-7"


def defined(name: dict[str, str], **definition: Any) -> dict[str, Any]:
    return {"objectType": "Activity", "id": QUIZ, "definition": {"name": name, **definition}}


def get_activity(xapi: XAPIClient) -> Any:
    return xapi.request("GET", "/xAPI/activities", params={"activityId": QUIZ})


def test_activity_definition_comes_from_the_statements(xapi: XAPIClient) -> None:
    xapi.post(statement(object=defined({"en-US": "Quiz 7"},
                                       type="http://adlnet.gov/expapi/activities/assessment")))
    response = get_activity(xapi)
    assert response.status_code == 200
    assert response.json() == {"objectType": "Activity", "id": QUIZ, "definition": {
        "name": {"en-US": "Quiz 7"}, "type": "http://adlnet.gov/expapi/activities/assessment"}}


def test_latest_definition_wins_per_language(xapi: XAPIClient) -> None:
    xapi.post(statement(object=defined({"en-US": "Quiz 7", "fr-FR": "Quiz sept"})))
    xapi.post(statement(object=defined({"en-US": "Quiz Seven"})))
    names = get_activity(xapi).json()["definition"]["name"]
    assert names == {"en-US": "Quiz Seven", "fr-FR": "Quiz sept"}


def test_context_activities_are_known_too(xapi: XAPIClient) -> None:
    ctx = {"contextActivities": {"parent": [defined({"en": "Quiz parent"})]}}
    xapi.post(statement(context=ctx))
    assert get_activity(xapi).json()["definition"]["name"] == {"en": "Quiz parent"}


def test_unknown_activity_is_404(xapi: XAPIClient) -> None:
    assert get_activity(xapi).status_code == 404


def test_activity_id_is_required(xapi: XAPIClient) -> None:
    response = xapi.request("GET", "/xAPI/activities")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "activityId: is required"


def test_without_the_define_scope_definitions_are_not_changed(
    xapi: XAPIClient, store_of: Any
) -> None:
    xapi.post(statement(object=defined({"en-US": "Quiz 7"})))
    key, secret = store_of.issue_credential("tool", ["statements/write"])
    xapi.as_credential(key, secret).post(statement(object=defined({"en-US": "Hijacked"})))
    assert get_activity(xapi).json()["definition"]["name"] == {"en-US": "Quiz 7"}


def test_person_combines_what_is_known_of_the_agent(xapi: XAPIClient) -> None:
    xapi.post(statement(actor={**agent("ada"), "name": "Ada Lovelace"}))
    xapi.post(statement(actor={**agent("ada"), "name": "A. Lovelace"}))
    response = xapi.request("GET", "/xAPI/agents", params={"agent": json.dumps(agent("ada"))})
    assert response.json() == {"objectType": "Person", "name": ["A. Lovelace", "Ada Lovelace"],
                               "mbox": ["mailto:ada@example.org"]}


def test_person_for_an_unseen_agent_has_its_identifier(xapi: XAPIClient) -> None:
    account = {"account": {"homePage": "https://sis.example.org", "name": "s42"}}
    response = xapi.request("GET", "/xAPI/agents", params={"agent": json.dumps(account)})
    assert response.json() == {"objectType": "Person", "account": [account["account"]]}


def test_agents_needs_a_valid_agent(xapi: XAPIClient) -> None:
    response = xapi.request("GET", "/xAPI/agents", params={"agent": '{"name": "x"}'})
    assert response.status_code == 400
    assert "exactly one of mbox" in response.json()["error"]["message"]


@pytest.mark.parametrize("scope", ["state", "profile", "define", "statements/read/mine",
                                   "statements/write"])
def test_person_is_refused_to_a_credential_that_cannot_read_every_statement(
    xapi: XAPIClient, store_of: Any, scope: str
) -> None:
    xapi.post(statement(actor={**agent("ada"), "name": "Ada Lovelace"}))
    other = xapi.as_credential(*store_of.issue_credential("tool", [scope]))
    response = other.request("GET", "/xAPI/agents", params={"agent": json.dumps(agent("ada"))})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "this credential may not read the Person object of an agent (needs scope all or all/read"
        " or statements/read)")


@pytest.mark.parametrize("scope", ["statements/read", "all/read"])
def test_person_is_read_with_a_scope_that_reads_every_statement(
    xapi: XAPIClient, store_of: Any, scope: str
) -> None:
    xapi.post(statement(actor={**agent("ada"), "name": "Ada Lovelace"}))
    reader = xapi.as_credential(*store_of.issue_credential("tool", [scope]))
    response = reader.request("GET", "/xAPI/agents", params={"agent": json.dumps(agent("ada"))})
    assert response.json()["name"] == ["Ada Lovelace"]


@pytest.mark.parametrize("scope", ["state", "profile", "define"])
def test_activity_definitions_stay_readable_by_document_and_define_scopes(
    xapi: XAPIClient, store_of: Any, scope: str
) -> None:
    xapi.post(statement(object=defined({"en-US": "Quiz 7"})))
    other = xapi.as_credential(*store_of.issue_credential("tool", [scope]))
    assert get_activity(other).status_code == 200


def test_2_0_0_an_unknown_activity_is_a_bare_activity(xapi: XAPIClient) -> None:
    activity_id = "https://example.org/activities/never-mentioned"
    response = xapi.speaking("2.0.0").request("GET", "/xAPI/activities",
                                              params={"activityId": activity_id})
    assert response.status_code == 200
    assert response.json() == {"objectType": "Activity", "id": activity_id}


def test_head_answers_activities_agents_and_about_without_a_body(xapi: XAPIClient) -> None:
    xapi.post({"actor": {"mbox": "mailto:ada@example.org"},
               "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
               "object": {"id": "https://example.org/activities/algebra-1"}})
    for path, params in (("/xAPI/activities", {"activityId": "https://example.org/activities/algebra-1"}),
                         ("/xAPI/agents", {"agent": '{"mbox": "mailto:ada@example.org"}'}),
                         ("/xAPI/about", {})):
        response = xapi.request("HEAD", path, params=params)
        assert response.status_code == 200, path
        assert response.content == b""
