"""GET /xAPI/statements (Communication 2.1.3)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest

from lrs.api.statement_params import MORE_LIFETIME, MoreTokens, parse_request
from tests.conftest import ADMIN_KEY, XAPIClient
from tests.statements import activity, agent, statement, with_id

ADA = json.dumps({"mbox": "mailto:ada@example.org"})


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["statements"]]


def post(xapi: XAPIClient, *docs: dict[str, Any]) -> list[str]:
    response = xapi.post([with_id(d) for d in docs])
    assert response.status_code == 200, response.text
    return list(response.json())


def test_single_statement_by_id(xapi: XAPIClient) -> None:
    (sid,) = post(xapi, statement())
    response = xapi.get(statementId=sid)
    assert response.status_code == 200
    assert response.json()["id"] == sid


def test_unknown_statement_id_is_404(xapi: XAPIClient) -> None:
    assert xapi.get(statementId=str(uuid.uuid4())).status_code == 404


def test_statement_id_cannot_be_combined_with_filters(xapi: XAPIClient) -> None:
    response = xapi.get(statementId=str(uuid.uuid4()), verb="http://example.org/v")
    assert response.status_code == 400


def test_unknown_parameter_is_rejected(xapi: XAPIClient) -> None:
    response = xapi.get(colour="red")
    assert response.status_code == 400
    assert "colour" in response.json()["error"]["message"]


def test_results_are_newest_first_by_default(xapi: XAPIClient) -> None:
    first = post(xapi, statement())
    second = post(xapi, statement())
    assert ids(xapi.get()) == second + first


def test_ascending_returns_oldest_first(xapi: XAPIClient) -> None:
    first = post(xapi, statement())
    second = post(xapi, statement())
    assert ids(xapi.get(ascending="true")) == first + second


def test_agent_filter_matches_actor(xapi: XAPIClient) -> None:
    mine = post(xapi, statement())
    post(xapi, statement(actor=agent("bob")))
    assert ids(xapi.get(agent=ADA)) == mine


def test_agent_filter_matches_an_agent_object(xapi: XAPIClient) -> None:
    about_ada = post(xapi, statement(actor=agent("bob"), object=agent("ada")))
    assert ids(xapi.get(agent=ADA)) == about_ada


def test_agent_filter_matches_group_members(xapi: XAPIClient) -> None:
    team = {"objectType": "Group", "member": [agent("ada"), agent("bob")]}
    by_team = post(xapi, statement(actor=team))
    assert ids(xapi.get(agent=ADA)) == by_team


def test_agent_filter_ignores_instructor_unless_related_agents(xapi: XAPIClient) -> None:
    taught = post(xapi, statement(actor=agent("bob"), context={"instructor": agent("ada")}))
    assert ids(xapi.get(agent=ADA)) == []
    assert ids(xapi.get(agent=ADA, related_agents="true")) == taught


def test_related_agents_includes_authority(xapi: XAPIClient) -> None:
    stored = post(xapi, statement(actor=agent("bob")))
    authority = json.dumps({"account": {"homePage": "urn:lrs:credentials", "name": "admin"}})
    assert ids(xapi.get(agent=authority, related_agents="true")) == stored


def test_related_agents_includes_context_agents_in_version_2(xapi: XAPIClient) -> None:
    ctx = {"contextAgents": [{"objectType": "contextAgent", "agent": agent("ada")}]}
    stored = xapi.speaking("2.0.0").post(statement(actor=agent("bob"), context=ctx)).json()
    assert ids(xapi.get(agent=ADA, related_agents="true")) == stored


def test_agent_filter_must_be_a_json_agent(xapi: XAPIClient) -> None:
    response = xapi.get(agent="ada@example.org")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("agent:")


def test_agent_filter_with_an_invalid_agent_names_the_rule(xapi: XAPIClient) -> None:
    response = xapi.get(agent=json.dumps({"mbox": "ada"}))
    assert "agent.mbox" in response.json()["error"]["message"]


def test_verb_filter(xapi: XAPIClient) -> None:
    failed = post(xapi, statement(verb={"id": "http://adlnet.gov/expapi/verbs/failed"}))
    post(xapi, statement())
    assert ids(xapi.get(verb="http://adlnet.gov/expapi/verbs/failed")) == failed


def test_activity_filter_matches_the_object(xapi: XAPIClient) -> None:
    geometry = post(xapi, statement(object=activity("geometry")))
    post(xapi, statement())
    assert ids(xapi.get(activity="https://example.org/activities/geometry")) == geometry


def test_activity_filter_matches_context_activities_only_when_related(xapi: XAPIClient) -> None:
    ctx = {"contextActivities": {"parent": [activity("course")]}}
    in_course = post(xapi, statement(context=ctx))
    course = "https://example.org/activities/course"
    assert ids(xapi.get(activity=course)) == []
    assert ids(xapi.get(activity=course, related_activities="true")) == in_course


def test_related_activities_includes_substatement_object(xapi: XAPIClient) -> None:
    sub = {"objectType": "SubStatement", "actor": agent("bob"),
           "verb": {"id": "http://example.org/v/will-attempt"}, "object": activity("quiz")}
    planned = post(xapi, statement(object=sub))
    quiz = "https://example.org/activities/quiz"
    assert ids(xapi.get(activity=quiz)) == []
    assert ids(xapi.get(activity=quiz, related_activities="true")) == planned


def test_registration_filter(xapi: XAPIClient) -> None:
    registration = str(uuid.uuid4())
    registered = post(xapi, statement(context={"registration": registration}))
    post(xapi, statement())
    assert ids(xapi.get(registration=registration)) == registered


def test_filters_combine_with_and(xapi: XAPIClient) -> None:
    wanted = post(xapi, statement(verb={"id": "http://adlnet.gov/expapi/verbs/failed"}))
    post(xapi, statement(actor=agent("bob"), verb={"id": "http://adlnet.gov/expapi/verbs/failed"}))
    post(xapi, statement())
    assert ids(xapi.get(agent=ADA, verb="http://adlnet.gov/expapi/verbs/failed")) == wanted


def test_since_and_until_filter_on_stored(xapi: XAPIClient) -> None:
    (first,) = post(xapi, statement())
    stored = xapi.get(statementId=first).json()["stored"]
    (second,) = post(xapi, statement())
    assert ids(xapi.get(since=stored)) == [second]
    assert ids(xapi.get(until=stored)) == [first]


def test_since_and_until_before_year_1000_compare_as_times(xapi: XAPIClient) -> None:
    """Found by an attacker: year 999 was written '999-...', which sorts after '2026-...'."""
    (only,) = post(xapi, statement())
    assert ids(xapi.get(until="0999-01-01T00:00:00Z")) == []
    assert ids(xapi.get(since="0999-01-01T00:00:00Z")) == [only]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_since_or_until_outside_the_years_of_utc_is_refused(xapi: XAPIClient,
                                                                 moment: str) -> None:
    for name in ("since", "until"):
        response = xapi.get(**{name: moment})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"].startswith(f"{name}:")
        assert "out of range once converted to UTC" in response.json()["error"]["message"]


def test_since_must_be_a_timestamp(xapi: XAPIClient) -> None:
    response = xapi.get(since="last week")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("since:")


def test_limit_caps_the_page_and_more_fetches_the_rest(xapi: XAPIClient) -> None:
    stored = post(xapi, *[statement() for _ in range(5)])
    page = xapi.get(limit=2).json()
    assert len(page["statements"]) == 2
    seen = [s["id"] for s in page["statements"]]
    while page["more"]:
        assert page["more"].startswith("/xAPI/statements?more=")
        page = xapi.request("GET", page["more"]).json()
        seen += [s["id"] for s in page["statements"]]
    assert seen == list(reversed(stored))


def test_limit_zero_means_the_server_maximum(xapi: XAPIClient) -> None:
    post(xapi, *[statement() for _ in range(25)])
    page = xapi.get(limit=0).json()
    assert len(page["statements"]) == 20  # max_page_statements in the test settings
    assert page["more"]


def test_more_pages_stay_stable_while_new_statements_arrive(xapi: XAPIClient) -> None:
    older = post(xapi, *[statement() for _ in range(4)])
    page = xapi.get(limit=2, ascending="true").json()
    post(xapi, statement())  # arrives between pages
    rest = xapi.request("GET", page["more"]).json()
    seen = [s["id"] for s in page["statements"] + rest["statements"]]
    assert seen == older
    assert rest["more"] == ""


def test_a_forged_more_token_is_rejected(xapi: XAPIClient) -> None:
    assert xapi.request("GET", "/xAPI/statements?more=bm90LWEtdG9rZW4").status_code == 400


def test_empty_result_has_an_empty_more(xapi: XAPIClient) -> None:
    assert xapi.get().json() == {"statements": [], "more": ""}


def test_ids_format_keeps_only_identifiers(xapi: XAPIClient) -> None:
    named = {**agent("ada"), "name": "Ada Lovelace"}
    (sid,) = post(xapi, statement(actor=named))
    shown = xapi.get(statementId=sid, format="ids").json()
    assert shown["actor"] == {"objectType": "Agent", "mbox": "mailto:ada@example.org"}
    assert shown["object"] == {"id": "https://example.org/activities/algebra-1"}  # minimal form
    assert shown["verb"] == {"id": "http://adlnet.gov/expapi/verbs/completed"}


def test_exact_format_returns_the_statement_as_stored(xapi: XAPIClient) -> None:
    named = {**agent("ada"), "name": "Ada Lovelace"}
    (sid,) = post(xapi, statement(actor=named))
    assert xapi.get(statementId=sid, format="exact").json()["actor"]["name"] == "Ada Lovelace"


def test_canonical_format_picks_the_accepted_language(xapi: XAPIClient) -> None:
    verb = {"id": "http://example.org/v/done", "display": {"en-US": "done", "fr-FR": "fait"}}
    (sid,) = post(xapi, statement(verb=verb))
    shown = xapi.get(statementId=sid, format="canonical",
                     headers={"Accept-Language": "fr;q=0.9, de;q=0.5"}).json()
    assert shown["verb"]["display"] == {"fr-FR": "fait"}


def test_unknown_format_is_rejected(xapi: XAPIClient) -> None:
    assert xapi.get(format="compact").status_code == 400


def test_consistent_through_and_last_modified_headers(xapi: XAPIClient) -> None:
    post(xapi, statement())
    response = xapi.get()
    assert response.headers["X-Experience-API-Consistent-Through"].endswith("Z")
    assert response.headers["Last-Modified"].endswith("GMT")


def test_head_answers_headers_without_a_body(xapi: XAPIClient) -> None:
    post(xapi, statement())
    response = xapi.request("HEAD", "/xAPI/statements")
    assert response.status_code == 200
    assert response.content == b""
    assert "X-Experience-API-Consistent-Through" in response.headers


def test_attachments_true_answers_multipart_with_the_result_first(xapi: XAPIClient) -> None:
    (sid,) = post(xapi, statement())
    response = xapi.get(attachments="true")
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=")
    assert sid.encode() in response.content.split(b"\r\n\r\n", 1)[1]


def test_statement_referencing_a_match_is_returned_too(xapi: XAPIClient) -> None:
    (original,) = post(xapi, statement())
    ref = {"objectType": "StatementRef", "id": original}
    (follow_up,) = post(xapi, statement(actor=agent("coach"),
                                        verb={"id": "http://example.org/v/confirmed"}, object=ref))
    assert ids(xapi.get(agent=ADA)) == [follow_up, original]
    assert ids(xapi.get(activity="https://example.org/activities/algebra-1")) == [follow_up, original]


def test_statement_references_apply_recursively(xapi: XAPIClient) -> None:
    (c,) = post(xapi, statement())
    (b,) = post(xapi, statement(actor=agent("x"), object={"objectType": "StatementRef", "id": c}))
    (a,) = post(xapi, statement(actor=agent("y"), object={"objectType": "StatementRef", "id": b}))
    assert ids(xapi.get(agent=ADA)) == [a, b, c]


def test_reference_to_a_statement_stored_later_matches_once_it_arrives(xapi: XAPIClient) -> None:
    target = with_id(statement())
    (ref,) = post(xapi, statement(actor=agent("coach"),
                                  object={"objectType": "StatementRef", "id": target["id"]}))
    assert ids(xapi.get(agent=ADA)) == []
    xapi.post(target)
    assert ids(xapi.get(agent=ADA)) == [target["id"], ref]


def test_a_reference_chain_inside_one_batch_resolves_in_any_order(xapi: XAPIClient) -> None:
    c = with_id(statement())
    b = with_id(statement(actor=agent("x"), object={"objectType": "StatementRef", "id": c["id"]}))
    a = with_id(statement(actor=agent("y"), object={"objectType": "StatementRef", "id": b["id"]}))
    assert xapi.post([a, b, c]).status_code == 200
    assert sorted(ids(xapi.get(agent=ADA))) == sorted([a["id"], b["id"], c["id"]])


def test_canonical_format_uses_the_lrs_canonical_activity_definition(xapi: XAPIClient) -> None:
    first = statement(object={**activity("algebra-1"),
                              "definition": {"name": {"en-US": "Algebra", "fr-FR": "Algèbre"}}})
    (sid,) = post(xapi, first)
    post(xapi, statement(object={**activity("algebra-1"),
                                 "definition": {"name": {"en-US": "Algebra I"}}}))
    shown = xapi.get(statementId=sid, format="canonical",
                     headers={"Accept-Language": "en-US"}).json()
    assert shown["object"]["definition"]["name"] == {"en-US": "Algebra I"}
    exact = xapi.get(statementId=sid).json()
    assert exact["object"]["definition"]["name"] == {"en-US": "Algebra", "fr-FR": "Algèbre"}


def _more_links(xapi: XAPIClient) -> Any:
    return xapi.http.app.state.services.more_links  # type: ignore[attr-defined]


def _posted_pages(xapi: XAPIClient, count: int = 5) -> dict[str, Any]:
    post(xapi, *[statement() for _ in range(count)])
    page: dict[str, Any] = xapi.get(limit=2, agent=ADA).json()
    assert page["more"]
    return page


def test_a_more_link_does_not_show_the_agent_filter(xapi: XAPIClient) -> None:
    page = _posted_pages(xapi)
    assert "ada" not in page["more"]
    assert "example.org" not in base64.urlsafe_b64decode(page["more"].split("=", 1)[1] + "===")\
        .decode("latin-1")


def test_a_tampered_more_link_is_refused(xapi: XAPIClient) -> None:
    token = _posted_pages(xapi)["more"].split("more=", 1)[1]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    response = xapi.request("GET", f"/xAPI/statements?more={flipped}")
    assert response.status_code == 400
    assert "more" in response.json()["error"]["message"]


def test_an_unsigned_more_token_with_a_huge_limit_is_refused(xapi: XAPIClient) -> None:
    _posted_pages(xapi)
    forged = base64.urlsafe_b64encode(json.dumps({
        "query": {"keys": [], "since": None, "until": None, "credential": None,
                  "ascending": False, "limit": 100_000, "after_seq": None, "bound_seq": None},
        "format": "exact", "attachments": False}).encode()).decode().rstrip("=")
    assert xapi.request("GET", f"/xAPI/statements?more={forged}").status_code == 400


def test_a_more_link_is_refused_to_another_credential(xapi: XAPIClient) -> None:
    more = _posted_pages(xapi)["more"]
    key, secret = xapi.http.app.state.services.store.issue_credential(  # type: ignore[attr-defined]
        "reader", ["statements/read"])
    assert xapi.as_credential(key, secret).request("GET", more).status_code == 400
    assert xapi.request("GET", more).status_code == 200


def test_a_sealed_more_link_over_the_page_limit_is_refused(xapi: XAPIClient) -> None:
    """The bounds are checked again even when the seal is good (the server key may leak)."""
    _posted_pages(xapi)
    links: MoreTokens = _more_links(xapi)
    request = parse_request({"limit": "5"}, 10_000)
    huge = replace(request, query=replace(request.query, limit=10_000))
    token = links.issue(huge, 0, 10, ADMIN_KEY)
    response = xapi.request("GET", f"/xAPI/statements?more={token}")
    assert response.status_code == 400


def test_a_sealed_more_link_whose_limit_is_a_string_is_400_not_500(xapi: XAPIClient) -> None:
    _posted_pages(xapi)
    links = _more_links(xapi)
    request = parse_request({}, 20)
    odd = replace(request, query=replace(request.query, limit="20"))  # type: ignore[arg-type]
    token = links.issue(odd, 0, 10, ADMIN_KEY)
    assert xapi.request("GET", f"/xAPI/statements?more={token}").status_code == 400


def test_an_expired_more_link_is_refused(xapi: XAPIClient) -> None:
    links = _more_links(xapi)
    request = parse_request({"limit": "2"}, 20)
    token = links.issue(request, 0, 10, ADMIN_KEY, now=time.time() - MORE_LIFETIME - 1)
    response = xapi.request("GET", f"/xAPI/statements?more={token}")
    assert response.status_code == 400
    assert "expired" in response.json()["error"]["message"]


def test_a_limit_that_is_not_ascii_digits_is_400(xapi: XAPIClient) -> None:
    for limit in ("²", "٣", "1" * 40):
        assert xapi.get(limit=limit).status_code == 400


def test_a_cachebuster_parameter_is_accepted_and_ignored(xapi: XAPIClient) -> None:
    (sid,) = post(xapi, statement())
    assert ids(xapi.get(cachebuster="1733100000000")) == [sid]
    assert xapi.get(statementId=sid, cachebuster="x").json()["id"] == sid
    more = _posted_pages(xapi)["more"]
    assert xapi.request("GET", f"{more}&cachebuster=17").status_code == 200
