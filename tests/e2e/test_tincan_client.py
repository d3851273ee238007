"""A real xAPI client against a real server: Rustici's TinCanPython (RemoteLRS) over HTTP.

Statements, voiding, queries with paging, State, both profiles; Activities and Agents, which the
client library has no call for, through plain HTTP on the same server.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tincan import (
    Activity,
    ActivityDefinition,
    ActivityProfileDocument,
    Agent,
    AgentProfileDocument,
    LanguageMap,
    RemoteLRS,
    StateDocument,
    Statement,
    StatementRef,
    Verb,
)
from tincan.statements_result import StatementsResult

from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET
from tests.live_server import running

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


@pytest.fixture
def lrs(settings: Settings) -> Iterator[RemoteLRS]:
    yield from serving(settings)


@pytest.fixture
def lenient_lrs(settings: Settings) -> Iterator[RemoteLRS]:
    """TinCanPython creates profiles without If-None-Match, which xAPI 1.0.3 requires of it."""
    yield from serving(settings.model_copy(update={"profile_put_without_precondition": "accept"}))


def serving(settings: Settings) -> Iterator[RemoteLRS]:
    live = settings.model_copy(update={"host": "127.0.0.1", "port": 0,
                                       "max_page_statements": 3})
    with running(live) as (host, port):
        # The endpoint exactly as `lrs serve` prints it.
        yield RemoteLRS(endpoint=f"http://{host}:{port}/xAPI/", username=ADMIN_KEY,
                        password=ADMIN_SECRET, version="1.0.3")


def ada() -> Agent:
    return Agent(name="Ada", mbox=f"mailto:ada-{uuid.uuid4().hex[:8]}@example.org")


def course() -> Activity:
    return Activity(id=f"https://example.org/courses/{uuid.uuid4().hex[:8]}",
                    definition=ActivityDefinition(name=LanguageMap({"en-US": "Fractions"})))


def completed(actor: Agent, activity: Activity) -> Statement:
    return Statement(actor=actor, verb=Verb(id=COMPLETED, display=LanguageMap({"en-US": "completed"})),
                     object=activity)


def ok(response: Any) -> Any:
    assert response.success, (response.response.status, response.data)
    return response.content


def test_a_real_client_saves_and_retrieves_a_statement(lrs: RemoteLRS) -> None:
    saved = ok(lrs.save_statement(completed(ada(), course())))
    found = ok(lrs.retrieve_statement(saved.id))
    assert str(found.id) == str(saved.id)
    assert found.verb.id == COMPLETED
    assert found.authority is not None and found.stored is not None


def test_a_real_client_saves_a_batch_and_voids_one(lrs: RemoteLRS) -> None:
    learner, activity = ada(), course()
    saved = ok(lrs.save_statements([completed(learner, activity), completed(learner, activity)]))
    target = saved[0].id
    voiding = Statement(actor=learner, verb=Verb(id=VOIDED), object=StatementRef(id=target))
    ok(lrs.save_statement(voiding))
    assert not lrs.retrieve_statement(target).success
    assert str(ok(lrs.retrieve_voided_statement(target)).id) == str(target)


def test_a_real_client_pages_through_a_query_with_more(lrs: RemoteLRS) -> None:
    learner, activity = ada(), course()
    ok(lrs.save_statements([completed(learner, activity) for _ in range(7)]))
    page: StatementsResult = ok(lrs.query_statements({"agent": learner, "verb": Verb(id=COMPLETED)}))
    seen = [str(s.id) for s in page.statements]
    while page.more:
        page = ok(lrs.more_statements(page))
        seen += [str(s.id) for s in page.statements]
    assert len(seen) == len(set(seen)) == 7


def test_a_real_client_saves_retrieves_and_deletes_state(lrs: RemoteLRS) -> None:
    learner, activity = ada(), course()
    state = StateDocument(id="bookmark", activity=activity, agent=learner,
                          content=json.dumps({"page": 4}), content_type="application/json")
    ok(lrs.save_state(state))
    found = ok(lrs.retrieve_state(activity, learner, "bookmark"))
    assert json.loads(found.content) == {"page": 4}
    ok(lrs.delete_state(found))
    assert lrs.retrieve_state(activity, learner, "bookmark").response.status == 404


def test_a_real_client_that_omits_the_profile_precondition_is_told_what_to_change(
        lrs: RemoteLRS) -> None:
    answer = lrs.save_activity_profile(ActivityProfileDocument(
        id="settings", activity=course(), content="level=2", content_type="text/plain"))
    assert answer.response.status == 400
    assert not answer.success
    assert "LRS_PROFILE_PUT_WITHOUT_PRECONDITION=accept" in answer.data


def test_a_real_client_saves_and_retrieves_both_profiles(lenient_lrs: RemoteLRS) -> None:
    lrs = lenient_lrs
    learner, activity = ada(), course()
    ok(lrs.save_activity_profile(ActivityProfileDocument(
        id="settings", activity=activity, content="level=2", content_type="text/plain")))
    assert ok(lrs.retrieve_activity_profile(activity, "settings")).content == b"level=2"
    ok(lrs.save_agent_profile(AgentProfileDocument(
        id="preferences", agent=learner, content='{"font": "large"}',
        content_type="application/json")))
    assert json.loads(ok(lrs.retrieve_agent_profile(learner, "preferences")).content) == {
        "font": "large"}


def test_activities_and_agents_answer_what_the_client_sent(lrs: RemoteLRS) -> None:
    learner, activity = ada(), course()
    ok(lrs.save_statement(completed(learner, activity)))
    auth = "Basic " + base64.b64encode(f"{ADMIN_KEY}:{ADMIN_SECRET}".encode()).decode()
    headers = {"Authorization": auth, "X-Experience-API-Version": "1.0.3"}
    with httpx.Client(base_url=lrs.endpoint, headers=headers) as http:
        found = http.get("activities", params={"activityId": activity.id})
        assert found.status_code == 200
        assert found.json()["definition"]["name"] == {"en-US": "Fractions"}
        person = http.get("agents", params={"agent": json.dumps({"mbox": learner.mbox})})
        assert person.status_code == 200
        assert person.json()["name"] == ["Ada"]
