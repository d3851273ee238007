"""State, Activity Profile and Agent Profile (Communication 2.2-2.6, 3.1)."""

from __future__ import annotations

import hashlib
import json
import random
import string
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import XAPIClient

ADA = json.dumps({"mbox": "mailto:ada@example.org"})
ACTIVITY = "https://example.org/activities/algebra-1"
STATE = "/xAPI/activities/state"
ACTIVITY_PROFILE = "/xAPI/activities/profile"
AGENT_PROFILE = "/xAPI/agents/profile"


def state(**extra: str) -> dict[str, str]:
    return {"activityId": ACTIVITY, "agent": ADA, "stateId": "bookmark", **extra}


CREATE = {"If-None-Match": "*"}  # a 1.0.3 profile PUT must carry a precondition


def put(xapi: XAPIClient, path: str, params: dict[str, str], body: bytes,
        content_type: str = "application/json", **headers: str) -> Any:
    return xapi.request("PUT", path, params=params, content=body,
                        headers={"Content-Type": content_type, **headers})


def post(xapi: XAPIClient, path: str, params: dict[str, str], body: bytes,
         content_type: str = "application/json", **headers: str) -> Any:
    return xapi.request("POST", path, params=params, content=body,
                        headers={"Content-Type": content_type, **headers})


def test_put_then_get_returns_the_same_bytes_and_content_type(xapi: XAPIClient) -> None:
    body = b"\x00\x01binary suspend data\xff"
    assert put(xapi, STATE, state(), body, "application/octet-stream").status_code == 204
    got = xapi.request("GET", STATE, params=state())
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "application/octet-stream"


def test_get_answers_the_quoted_sha1_etag_and_last_modified(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b'{"page": 3}')
    got = xapi.request("GET", STATE, params=state())
    assert got.headers["ETag"] == '"' + hashlib.sha1(b'{"page": 3}').hexdigest() + '"'
    assert got.headers["Last-Modified"].endswith("GMT")


def test_post_merges_top_level_properties_of_json_objects(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b'{"x": "foo", "y": "bar"}')
    assert post(xapi, STATE, state(), b'{"x": "bash", "z": "faz"}').status_code == 204
    assert xapi.request("GET", STATE, params=state()).json() == {"x": "bash", "y": "bar", "z": "faz"}


def test_post_creates_a_missing_document(xapi: XAPIClient) -> None:
    assert post(xapi, STATE, state(), b'{"x": 1}').status_code == 204
    assert xapi.request("GET", STATE, params=state()).json() == {"x": 1}


def test_post_onto_a_non_json_document_is_400_and_changes_nothing(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"plain", "text/plain")
    response = post(xapi, STATE, state(), b'{"x": 1}')
    assert response.status_code == 400
    assert "not application/json" in response.json()["error"]["message"]
    assert xapi.request("GET", STATE, params=state()).content == b"plain"


def test_post_of_non_json_content_is_400(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b'{"x": 1}')
    assert post(xapi, STATE, state(), b"x=1", "text/plain").status_code == 400


def test_post_of_a_json_array_is_400(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b'{"x": 1}')
    response = post(xapi, STATE, state(), b"[1, 2]")
    assert response.status_code == 400
    assert "must be a JSON object" in response.json()["error"]["message"]


def test_get_without_state_id_lists_the_ids(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(stateId="a"), b"1")
    put(xapi, STATE, state(stateId="b"), b"2")
    listing = xapi.request("GET", STATE, params={"activityId": ACTIVITY, "agent": ADA})
    assert listing.json() == ["a", "b"]


def test_listing_since_returns_only_documents_updated_after(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(stateId="old"), b"1")
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    put(xapi, STATE, state(stateId="new"), b"2")
    listing = xapi.request("GET", STATE, params={"activityId": ACTIVITY, "agent": ADA,
                                                 "since": moment})
    assert listing.json() == ["new"]


def test_registration_keeps_documents_apart(xapi: XAPIClient) -> None:
    registration = "6f0b4c0e-1b1a-4d7e-9d2b-3a1f0d9a8c11"
    put(xapi, STATE, state(registration=registration), b"with")
    put(xapi, STATE, state(), b"without")
    assert xapi.request("GET", STATE, params=state(registration=registration)).content == b"with"
    assert xapi.request("GET", STATE, params=state()).content == b"without"


def test_delete_one_state_document(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"1")
    assert xapi.request("DELETE", STATE, params=state()).status_code == 204
    assert xapi.request("GET", STATE, params=state()).status_code == 404


def test_delete_without_state_id_deletes_all_for_the_context(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(stateId="a"), b"1")
    put(xapi, STATE, state(stateId="b"), b"2")
    other = {**state(stateId="c"), "agent": json.dumps({"mbox": "mailto:bob@example.org"})}
    put(xapi, STATE, other, b"3")
    assert xapi.request("DELETE", STATE, params={"activityId": ACTIVITY, "agent": ADA}).status_code == 204
    assert xapi.request("GET", STATE, params={"activityId": ACTIVITY, "agent": ADA}).json() == []
    assert xapi.request("GET", STATE, params=other).status_code == 200


def test_delete_all_with_a_registration_deletes_only_that_registration(xapi: XAPIClient) -> None:
    registration = "6f0b4c0e-1b1a-4d7e-9d2b-3a1f0d9a8c11"
    put(xapi, STATE, state(registration=registration), b"with")
    put(xapi, STATE, state(), b"without")
    xapi.request("DELETE", STATE, params={"activityId": ACTIVITY, "agent": ADA,
                                          "registration": registration})
    assert xapi.request("GET", STATE, params=state()).content == b"without"


def test_a_document_can_be_written_again_after_deletion(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"1")
    xapi.request("DELETE", STATE, params=state())
    assert put(xapi, STATE, state(), b"2").status_code == 204
    assert xapi.request("GET", STATE, params=state()).content == b"2"


@pytest.mark.parametrize("missing", ["activityId", "agent", "stateId"])
def test_state_put_names_a_missing_required_parameter(xapi: XAPIClient, missing: str) -> None:
    params = {k: v for k, v in state().items() if k != missing}
    response = put(xapi, STATE, params, b"1")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"{missing}: is required"


def test_an_invalid_agent_is_400_naming_the_agent_rule(xapi: XAPIClient) -> None:
    response = put(xapi, STATE, state(agent='{"mbox": "ada@example.org"}'), b"1")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("agent.mbox")


def test_agent_that_is_not_json_is_400(xapi: XAPIClient) -> None:
    assert put(xapi, STATE, state(agent="ada"), b"1").status_code == 400


def test_activity_id_must_be_an_iri(xapi: XAPIClient) -> None:
    response = put(xapi, STATE, state(activityId="not an iri"), b"1")
    assert response.json()["error"]["message"].startswith("activityId:")


def _incompressible(n: int, seed: int) -> str:
    return "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=n))


def test_a_state_at_the_longest_activity_id_and_agent_is_kept_on_every_store(
    xapi: XAPIClient,
) -> None:
    account = {"homePage": "https://sis.example.org/" + _incompressible(1000, 1),
               "name": _incompressible(256, 2)}
    params = state(activityId="https://example.org/" + _incompressible(1004, 3),
                   agent=json.dumps({"account": account}), stateId=_incompressible(1024, 4))
    assert put(xapi, STATE, params, b"{}").status_code == 204
    assert xapi.request("GET", STATE, params=params).content == b"{}"


def test_an_activity_id_over_1024_octets_is_400_naming_it(xapi: XAPIClient) -> None:
    params = state(activityId="https://example.org/" + _incompressible(3000, 5))
    response = put(xapi, STATE, params, b"{}")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "activityId: must be at most 1024 octets of UTF-8 (it has 3020)")


def test_a_state_id_over_1024_octets_is_400_naming_it(xapi: XAPIClient) -> None:
    response = put(xapi, STATE, state(stateId="s" * 1025), b"{}")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "stateId: must be at most 1024 octets of UTF-8 (it has 1025)")


def test_a_profile_id_over_1024_octets_is_400_naming_it(xapi: XAPIClient) -> None:
    response = xapi.request("GET", AGENT_PROFILE, params={"agent": ADA, "profileId": "p" * 1025})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("profileId: must be at most 1024 octets")


def test_unknown_parameter_is_rejected(xapi: XAPIClient) -> None:
    assert put(xapi, STATE, state(colour="red"), b"1").status_code == 400


def test_oversized_document_is_413_and_not_stored(xapi: XAPIClient) -> None:
    response = put(xapi, STATE, state(), b"x" * 250_000, "text/plain")
    assert response.status_code == 413
    assert xapi.request("GET", STATE, params=state()).status_code == 404


def test_state_put_without_preconditions_overwrites(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"1")
    assert put(xapi, STATE, state(), b"2").status_code == 204


def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"1")
    response = put(xapi, STATE, state(), b"2", **{"If-Match": '"0000"'})
    assert response.status_code == 412
    assert xapi.request("GET", STATE, params=state()).content == b"1"


def test_if_match_with_the_current_etag_succeeds(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"1")
    etag = xapi.request("GET", STATE, params=state()).headers["ETag"]
    assert put(xapi, STATE, state(), b"2", **{"If-Match": etag}).status_code == 204


def test_if_none_match_star_refuses_to_overwrite(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"1")
    assert put(xapi, STATE, state(), b"2", **{"If-None-Match": "*"}).status_code == 412


def test_if_match_on_delete_is_honoured(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"1")
    response = xapi.request("DELETE", STATE, params=state(), headers={"If-Match": '"0000"'})
    assert response.status_code == 412
    assert xapi.request("GET", STATE, params=state()).status_code == 200


def test_concurrent_if_match_writers_exactly_one_wins(xapi: XAPIClient) -> None:
    put(xapi, STATE, state(), b"0")
    etag = xapi.request("GET", STATE, params=state()).headers["ETag"]
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def write(n: int) -> None:
        barrier.wait()
        statuses.append(put(xapi, STATE, state(), str(n).encode(), "text/plain",
                            **{"If-Match": etag}).status_code)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [204] + [412] * 5


def test_state_needs_the_state_scope(xapi: XAPIClient, store_of: Any) -> None:
    key, secret = store_of.issue_credential("tool", ["statements/write"])
    assert put(xapi.as_credential(key, secret), STATE, state(), b"1").status_code == 403


def test_state_scope_reads_and_writes_state(xapi: XAPIClient, store_of: Any) -> None:
    key, secret = store_of.issue_credential("player", ["state"])
    player = xapi.as_credential(key, secret)
    assert put(player, STATE, state(), b"1").status_code == 204
    assert player.request("GET", STATE, params=state()).status_code == 200


def profile(**extra: str) -> dict[str, str]:
    return {"activityId": ACTIVITY, "profileId": "settings", **extra}


def test_profile_put_over_an_existing_document_without_precondition_is_409(
    xapi: XAPIClient,
) -> None:
    assert put(xapi, ACTIVITY_PROFILE, profile(), b'{"a": 1}', **CREATE).status_code == 204
    response = put(xapi, ACTIVITY_PROFILE, profile(), b'{"a": 2}')
    assert response.status_code == 409
    assert "If-Match" in response.json()["error"]["message"]
    assert xapi.request("GET", ACTIVITY_PROFILE, params=profile()).json() == {"a": 1}


def test_profile_put_with_if_match_overwrites(xapi: XAPIClient) -> None:
    put(xapi, ACTIVITY_PROFILE, profile(), b'{"a": 1}', **CREATE)
    etag = xapi.request("GET", ACTIVITY_PROFILE, params=profile()).headers["ETag"]
    assert put(xapi, ACTIVITY_PROFILE, profile(), b'{"a": 2}', **{"If-Match": etag}).status_code == 204


def test_profile_post_merges_without_preconditions(xapi: XAPIClient) -> None:
    put(xapi, ACTIVITY_PROFILE, profile(), b'{"a": 1}', **CREATE)
    assert post(xapi, ACTIVITY_PROFILE, profile(), b'{"b": 2}').status_code == 204
    assert xapi.request("GET", ACTIVITY_PROFILE, params=profile()).json() == {"a": 1, "b": 2}


def test_profile_delete_needs_a_profile_id(xapi: XAPIClient) -> None:
    response = xapi.request("DELETE", ACTIVITY_PROFILE, params={"activityId": ACTIVITY})
    assert response.status_code == 400
    assert "profileId" in response.json()["error"]["message"]


def test_profile_ids_are_listed(xapi: XAPIClient) -> None:
    put(xapi, ACTIVITY_PROFILE, profile(profileId="one"), b"1", **CREATE)
    put(xapi, ACTIVITY_PROFILE, profile(profileId="two"), b"2", **CREATE)
    assert xapi.request("GET", ACTIVITY_PROFILE, params={"activityId": ACTIVITY}).json() == ["one", "two"]


def test_agent_profile_round_trip(xapi: XAPIClient) -> None:
    params = {"agent": ADA, "profileId": "preferences"}
    assert put(xapi, AGENT_PROFILE, params, b'{"language": "fr"}', **CREATE).status_code == 204
    assert xapi.request("GET", AGENT_PROFILE, params=params).json() == {"language": "fr"}
    assert xapi.request("GET", AGENT_PROFILE, params={"agent": ADA}).json() == ["preferences"]


def test_profiles_need_the_profile_scope(xapi: XAPIClient, store_of: Any) -> None:
    key, secret = store_of.issue_credential("player", ["state"])
    params = {"agent": ADA, "profileId": "preferences"}
    assert put(xapi.as_credential(key, secret), AGENT_PROFILE, params, b"1").status_code == 403


def test_every_document_change_is_an_event_and_its_history_replays(
    xapi: XAPIClient, store_of: Any
) -> None:
    from lrs.documents import STATE as STATE_RESOURCE
    from lrs.documents import DocumentKey
    from schemas.actor import Agent, ifi_key

    put(xapi, STATE, state(), b'{"page": 1}')
    post(xapi, STATE, state(), b'{"page": 2}')
    xapi.request("DELETE", STATE, params=state())
    key = DocumentKey(STATE_RESOURCE, "bookmark", ACTIVITY,
                      ifi_key(Agent(mbox="mailto:ada@example.org")))
    history = [store_of.repository.get(key.aggregate_id, version=v) for v in (1, 2, 3)]
    # The content is sealed under the agent's key in the log (README, Privacy), and opens.
    assert [store_of.opened_content(h.content) for h in history] == [
        b'{"page": 1}', b'{"page":2}', None]
    assert b"page" not in history[0].content


def test_a_document_labelled_multipart_keeps_the_document_size_limit(xapi: XAPIClient) -> None:
    params = {"activityId": "https://example.org/a", "agent": '{"mbox": "mailto:a@example.org"}',
              "stateId": "big"}
    big = b"x" * 250_000  # over the suite's 200,000-byte body limit, under its request limit
    for content_type in ("multipart/mixed; boundary=x", "multipart/form-data; boundary=x"):
        response = xapi.request("PUT", "/xAPI/activities/state", params=params, content=big,
                                headers={"Content-Type": content_type})
        assert response.status_code == 413, response.text
        assert "LRS_MAX_BODY_BYTES" in response.json()["error"]["message"]
    assert xapi.request("GET", "/xAPI/activities/state", params=params).status_code == 404


@pytest.mark.parametrize("path", [ACTIVITY_PROFILE, AGENT_PROFILE])
def test_1_0_3_profile_put_without_preconditions_to_a_new_document_is_400(
        xapi: XAPIClient, path: str) -> None:
    """1.0.3 Communication 3.1.s3.b1: the client MUST send If-Match or If-None-Match; the 1.0.3
    conformance suite holds the LRS to 400 (XAPI-00273), and nothing is stored."""
    params = profile() if path == ACTIVITY_PROFILE else {"agent": ADA, "profileId": "p"}
    response = xapi.request("PUT", path, params=params, content=b"x",
                            headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "If-None-Match" in message and "LRS_PROFILE_PUT_WITHOUT_PRECONDITION" in message
    assert xapi.request("GET", path, params=params).status_code == 404


def test_2_0_0_profile_put_without_preconditions_creates_a_new_document(xapi: XAPIClient) -> None:
    """2.0.0 governs overwriting only (409 over an existing document), and its suite agrees."""
    response = xapi.speaking("2.0.0").request("PUT", ACTIVITY_PROFILE, params=profile(),
                                              content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 204


def test_a_deployment_may_accept_1_0_3_profile_puts_without_preconditions(
        settings: Settings) -> None:
    """LRS_PROFILE_PUT_WITHOUT_PRECONDITION=accept: for clients that never send the header."""
    lenient = settings.model_copy(update={"profile_put_without_precondition": "accept"})
    with TestClient(create_app(lenient)) as client:
        xapi = XAPIClient(client)
        response = xapi.request("PUT", ACTIVITY_PROFILE, params=profile(), content=b"x",
                                headers={"Content-Type": "text/plain"})
        assert response.status_code == 204
        again = xapi.request("PUT", ACTIVITY_PROFILE, params=profile(), content=b"y",
                             headers={"Content-Type": "text/plain"})
        assert again.status_code == 409  # overwriting still needs a precondition


def test_1_0_3_profile_put_without_preconditions_over_an_existing_document_is_409(
        xapi: XAPIClient) -> None:
    xapi.request("PUT", ACTIVITY_PROFILE, params=profile(), content=b"x",
                 headers={"Content-Type": "text/plain", "If-None-Match": "*"})
    response = xapi.request("PUT", ACTIVITY_PROFILE, params=profile(), content=b"y",
                            headers={"Content-Type": "text/plain"})
    assert response.status_code == 409


def test_2_0_0_state_put_without_preconditions_over_an_existing_document_is_409(
        xapi: XAPIClient) -> None:
    v2 = xapi.speaking("2.0.0")
    assert put(v2, STATE, state(), b"first", "text/plain").status_code == 204
    assert put(v2, STATE, state(), b"second", "text/plain").status_code == 409
    matched = put(v2, STATE, state(), b"second", "text/plain",
                  **{"If-Match": f'"{hashlib.sha1(b"first").hexdigest()}"'})
    assert matched.status_code == 204


def test_1_0_3_state_put_may_overwrite_without_preconditions(xapi: XAPIClient) -> None:
    assert put(xapi, STATE, state(), b"first", "text/plain").status_code == 204
    assert put(xapi, STATE, state(), b"second", "text/plain").status_code == 204


def test_deleting_a_profile_that_was_never_stored_is_204(xapi: XAPIClient) -> None:
    for path, params in ((ACTIVITY_PROFILE, profile(profileId="never")),
                         (AGENT_PROFILE, {"agent": ADA, "profileId": "never"})):
        assert xapi.request("DELETE", path, params=params).status_code == 204


def test_deleting_a_missing_document_with_if_match_is_412(xapi: XAPIClient) -> None:
    response = xapi.request("DELETE", ACTIVITY_PROFILE, params=profile(profileId="never"),
                            headers={"If-Match": '"abc"'})
    assert response.status_code == 412


def test_one_agents_state_is_never_anothers_whatever_separator_their_ids_hold(
        xapi: XAPIClient) -> None:
    """A document was named by its key's parts joined with U+001F, a character an account name
    and a stateId may hold: account "n" + U+001F with stateId "d", and account "n" with stateId
    U+001F + "d", named the same document, so one agent read the other's state."""
    def agent(name: str) -> str:
        return json.dumps({"account": {"homePage": "https://sis.example.org", "name": name}})

    mine = state(agent=agent("n\x1f"), stateId="d")
    theirs = state(agent=agent("n"), stateId="\x1fd")
    assert put(xapi, STATE, theirs, b'{"grade": "private"}').status_code == 204
    assert xapi.request("GET", STATE, params=mine).status_code == 404
    assert put(xapi, STATE, mine, b'{"mine": true}').status_code == 204
    assert xapi.request("GET", STATE, params=theirs).json() == {"grade": "private"}
    assert xapi.request("GET", STATE, params=mine).json() == {"mine": True}
    listed = xapi.request("GET", STATE, params={k: v for k, v in theirs.items() if k != "stateId"})
    assert listed.json() == ["\x1fd"]


def test_a_key_without_the_separator_keeps_the_document_name_every_store_has_used() -> None:
    """Stores hold documents named the old way: a key free of U+001F must keep its name."""
    from uuid import NAMESPACE_URL, uuid5

    from lrs.documents import STATE as STATE_RESOURCE
    from lrs.documents import DocumentKey

    key = DocumentKey(STATE_RESOURCE, "bookmark", ACTIVITY, "mbox:mailto:ada@example.org")
    joined = "\x1f".join((STATE_RESOURCE, ACTIVITY, "mbox:mailto:ada@example.org", "", "bookmark"))
    assert key.aggregate_id == uuid5(uuid5(NAMESPACE_URL, "urn:lrs:document"), joined)
