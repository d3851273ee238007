"""POST /xAPI/statements (Communication 2.1.2)."""

from __future__ import annotations

import json
import random
import string
import time
import uuid

from tests.conftest import XAPIClient
from tests.statements import statement, with_id


def test_post_returns_the_ids_in_order(xapi: XAPIClient) -> None:
    docs = [with_id(statement()), with_id(statement())]
    response = xapi.post(docs)
    assert response.status_code == 200
    assert response.json() == [d["id"] for d in docs]


def test_post_assigns_a_uuid_when_the_statement_has_none(xapi: XAPIClient) -> None:
    response = xapi.post(statement())
    assert response.status_code == 200
    (assigned,) = response.json()
    assert uuid.UUID(assigned).variant == uuid.RFC_4122  # variant 2, as Data 2.4.1 asks
    assert xapi.get(statementId=assigned).status_code == 200


def test_assigned_ids_are_time_ordered_and_unique(xapi: XAPIClient) -> None:
    """Version 1 (RFC 4122 4.2), with a random node: a later id's timestamp is greater, so
    the ids the LRS assigns go next to each other in the indexes on statement id."""
    first = xapi.post([statement() for _ in range(50)]).json()
    second = xapi.post([statement() for _ in range(50)]).json()
    ids = [uuid.UUID(i) for i in first + second]
    assert {i.version for i in ids} == {1}
    assert len(set(ids)) == 100
    assert max(i.time for i in ids[:50]) < min(i.time for i in ids[50:])
    gregorian_to_unix = 0x01B21DD213814000  # 100 ns steps from 1582-10-15 to 1970-01-01
    assert abs((ids[0].time - gregorian_to_unix) / 1e7 - time.time()) < 60
    assert ids[0].node & 1 << 40  # the multicast bit: a random node, not a machine's address


def test_lrs_sets_stored_and_timestamp_defaults_to_stored(xapi: XAPIClient) -> None:
    (sid,) = xapi.post(statement()).json()
    stored = xapi.get(statementId=sid).json()
    assert stored["stored"].endswith("Z")
    assert stored["timestamp"] == stored["stored"]


def test_client_timestamp_is_kept(xapi: XAPIClient) -> None:
    (sid,) = xapi.post(statement(timestamp="2024-05-01T10:00:00.123+02:00")).json()
    assert xapi.get(statementId=sid).json()["timestamp"] == "2024-05-01T10:00:00.123+02:00"


def test_a_timestamp_outside_the_years_of_utc_is_refused(xapi: XAPIClient) -> None:
    """0001-01-01T00:00:00+01:00 is a valid text, but of a moment in year 0 in UTC: stored, it
    would fail every view that reads the statement's time."""
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        response = xapi.post(statement(timestamp=moment))
        assert response.status_code == 400, response.text
        message = response.json()["error"]["message"]
        assert "timestamp" in message and "out of range once converted to UTC" in message
    assert xapi.get().json()["statements"] == []


def test_lrs_overrides_authority_with_the_credential(xapi: XAPIClient) -> None:
    forged = {"mbox": "mailto:forger@example.org"}
    (sid,) = xapi.post(statement(authority=forged)).json()
    authority = xapi.get(statementId=sid).json()["authority"]
    assert authority["account"]["name"] == "admin"


def test_version_is_stored_as_the_version_spoken(xapi: XAPIClient) -> None:
    (sid,) = xapi.speaking("2.0.0").post(statement()).json()
    assert xapi.get(statementId=sid).json()["version"] == "2.0.0"


def test_client_version_is_kept(xapi: XAPIClient) -> None:
    (sid,) = xapi.post(statement(version="1.0.1")).json()
    assert xapi.get(statementId=sid).json()["version"] == "1.0.1"


def test_same_id_and_same_content_is_accepted_without_a_second_copy(xapi: XAPIClient) -> None:
    doc = with_id(statement())
    assert xapi.post(doc).status_code == 200
    assert xapi.post(doc).status_code == 200
    found = xapi.get(agent='{"mbox": "mailto:ada@example.org"}').json()["statements"]
    assert [s["id"] for s in found] == [doc["id"]]


def test_resending_with_lrs_assigned_properties_is_the_same_statement(xapi: XAPIClient) -> None:
    doc = with_id(statement())
    xapi.post(doc)
    stored = xapi.get(statementId=doc["id"]).json()
    assert xapi.post(stored).status_code == 200


def test_same_id_with_different_content_is_a_conflict(xapi: XAPIClient) -> None:
    doc = with_id(statement())
    xapi.post(doc)
    response = xapi.post({**doc, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}})
    assert response.status_code == 409
    assert doc["id"] in response.json()["error"]["message"]


def test_a_conflict_stores_none_of_the_batch(xapi: XAPIClient) -> None:
    doc = with_id(statement())
    xapi.post(doc)
    fresh = with_id(statement())
    clash = {**doc, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
    assert xapi.post([fresh, clash]).status_code == 409
    assert xapi.get(statementId=fresh["id"]).status_code == 404


def test_a_batch_with_one_invalid_statement_stores_none(xapi: XAPIClient) -> None:
    good = with_id(statement())
    response = xapi.post([good, statement(verb={"id": "not-an-iri"})])
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("statements[1].verb.id")
    assert xapi.get(statementId=good["id"]).status_code == 404


def test_the_same_id_twice_in_one_batch_is_400_naming_both(xapi: XAPIClient) -> None:
    doc = with_id(statement())
    twin = {**doc, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
    for batch in ([doc, twin], [doc, dict(doc)]):
        response = xapi.post(batch)
        assert response.status_code == 400
        assert "statements[1].id" in response.json()["error"]["message"]
        assert "statements[0]" in response.json()["error"]["message"]
    assert xapi.get(statementId=doc["id"]).status_code == 404


def test_a_statement_without_version_is_1_0_0_under_1_0_3(xapi: XAPIClient) -> None:
    (sid,) = xapi.post(statement()).json()
    assert xapi.get(statementId=sid).json()["version"] == "1.0.0"


def test_every_1_0_x_version_header_is_answered_as_1_0_3(xapi: XAPIClient) -> None:
    for header in ("1.0", "1.0.0", "1.0.3", "1.0.4", "1.0.9"):
        response = xapi.speaking(header).post(statement())
        assert response.status_code == 200, header
        assert response.headers["X-Experience-API-Version"] == "1.0.3"


def test_context_activities_sent_as_one_object_are_stored_and_returned_as_arrays(
        xapi: XAPIClient) -> None:
    parent = {"id": "https://example.org/course", "objectType": "Activity"}
    sub = {"objectType": "SubStatement", **statement(context={"contextActivities": {"other": parent}})}
    doc = with_id(statement(object=sub, context={"contextActivities": {
        "parent": parent, "grouping": [parent]}}))
    assert xapi.post(doc).status_code == 200
    for fmt in ("exact", "canonical"):
        got = xapi.get(statementId=doc["id"], format=fmt, headers={"Accept-Language": "en"}).json()
        lists = got["context"]["contextActivities"]
        assert lists["parent"] == [parent] and lists["grouping"] == [parent]
        assert got["object"]["context"]["contextActivities"]["other"] == [parent]
    assert xapi.post(doc).status_code == 200  # the same statement again: not a conflict


def test_score_min_equal_to_max_is_accepted(xapi: XAPIClient) -> None:
    response = xapi.post(statement(result={"score": {"raw": 0, "min": 0, "max": 0}}))
    assert response.status_code == 200, response.text


def test_an_invalid_statement_gets_400_naming_the_property(xapi: XAPIClient) -> None:
    response = xapi.post(statement(actor={"mbox": "ada@example.org"}))
    assert response.status_code == 400
    assert "statement.actor.mbox" in response.json()["error"]["message"]


def test_an_attachment_without_file_url_needs_a_part(xapi: XAPIClient) -> None:
    attachment = {"usageType": "https://example.org/essay", "display": {"en": "essay"},
                  "contentType": "text/plain", "length": 5, "sha2": "a" * 64}
    response = xapi.post(statement(attachments=[attachment]))
    assert response.status_code == 400
    assert "attachments[0]: has no fileUrl" in response.json()["error"]["message"]


def test_an_attachment_with_a_file_url_is_accepted_as_json(xapi: XAPIClient) -> None:
    attachment = {"usageType": "https://example.org/essay", "display": {"en": "essay"},
                  "contentType": "text/plain", "length": 5, "sha2": "a" * 64,
                  "fileUrl": "https://files.example.org/essay.txt"}
    assert xapi.post(statement(attachments=[attachment])).status_code == 200


def test_post_with_query_parameters_is_rejected(xapi: XAPIClient) -> None:
    response = xapi.request("POST", "/xAPI/statements", json=statement(),
                            params={"statementId": str(uuid.uuid4())})
    assert response.status_code == 400


# Random text does not compress, so it reaches a store's index at its full length.
def _incompressible(n: int, seed: int) -> str:
    return "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=n))


def test_ids_and_names_at_their_bounds_are_stored_and_found_on_every_store(xapi: XAPIClient) -> None:
    activity_id = "https://example.org/" + _incompressible(1004, 1)  # 1,024 octets
    account = {"homePage": "https://sis.example.org/" + _incompressible(1000, 2),
               "name": _incompressible(256, 3)}
    actor = {"objectType": "Agent", "name": _incompressible(512, 4), "account": account}
    verb = {"id": "https://example.org/verbs/" + _incompressible(998, 5)}
    response = xapi.post(statement(actor=actor, verb=verb, object={"id": activity_id}))
    assert response.status_code == 200, response.text
    found = xapi.get(activity=activity_id, agent=json.dumps({"account": account})).json()
    assert [s["id"] for s in found["statements"]] == response.json()


def test_an_activity_id_over_1024_octets_is_400_naming_it(xapi: XAPIClient) -> None:
    long_id = "https://example.org/" + _incompressible(3000, 6)
    response = xapi.post(statement(object={"id": long_id}))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "statement.object.id: must be at most 1024 octets of UTF-8 (it has 3020)")


def test_a_100000_character_mbox_local_part_is_400_naming_it(xapi: XAPIClient) -> None:
    response = xapi.post(statement(actor={"mbox": f"mailto:{'a' * 100_000}@example.org"}))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "statement.actor.mbox: the local part of an email address is at most 64 octets (RFC 5321)")


def test_an_iri_with_a_percent_not_before_two_hex_digits_is_400_naming_it(xapi: XAPIClient) -> None:
    response = xapi.post(statement(verb={"id": "https://example.org/verbs/%zz"}))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "statement.verb.id: must be an absolute IRI")
