"""The statement rules of a district bundle, on shapes an LMS (or anybody) may send."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lrs.export.pseudonyms import Disclosure, Pseudonymiser
from lrs.export.statements import KnownPeople, PseudonymousStatements
from projections.vocabulary import GOAL_TARGET_EXTENSION
from tests.lms_statements import MOODLE, PRIYA, TOMASZ

SECRET = b"district-secret-0123456789"
DEFAULT = Pseudonymiser(SECRET)
FREE = Pseudonymiser(SECRET, Disclosure(free_text=True))
EXTENSION = "https://example.org/xapi/extensions/anything"


def statement(**parts: Any) -> dict[str, Any]:
    return {"id": "6f1c3a52-0d7e-4f0b-9a3c-2b1d4e5f6a7b", "actor": PRIYA,
            "verb": {"id": "http://activitystrea.ms/send"},
            "object": {"id": f"{MOODLE}/course/view.php?id=12"}, **parts}


def rewritten(pseudonyms: Pseudonymiser, doc: dict[str, Any]) -> str:
    return json.dumps(PseudonymousStatements(pseudonyms).rewrite(doc), ensure_ascii=False)


def pseudonymous(agent: dict[str, Any]) -> dict[str, Any]:
    key = f"account:{agent['account']['homePage']}|{agent['account']['name']}"
    return {"objectType": "Agent", "account": {"homePage": "urn:lrs:pseudonym",
                                               "name": DEFAULT.learner(key)}}


def test_an_agent_deep_inside_an_extension_is_kept_in_place_as_a_pseudonym_and_the_rest_left_out() -> None:
    deep: Any = {"who": TOMASZ, "why": "private"}
    for level in range(20):
        deep = {f"level{level}": [deep, "text", 55209880]}
    out = PseudonymousStatements(DEFAULT).rewrite(statement(context={"extensions": {EXTENSION: deep}}))
    expected: Any = {"who": pseudonymous(TOMASZ)}
    for level in range(20):
        expected = {f"level{level}": [expected]}
    assert out["context"]["extensions"] == {EXTENSION: expected}


@pytest.mark.parametrize("pseudonyms", [DEFAULT, FREE], ids=["default", "free-text"])
@pytest.mark.parametrize("shape", [
    {"objectType": "Agent", "account": "55209880", "name": "Tomasz Wójcik"},
    {"objectType": "Group", "member": "Tomasz Wójcik"},
    {"objectType": "Group", "member": [5, None, {"name": "Tomasz Wójcik", "account": {"name": "55209880"}}]},
    {"account": {"homePage": 1, "name": ["Tomasz Wójcik", 55209880]}},
    {"mbox": "mailto:tomasz@home.example.com", "name": {"en": "Tomasz Wójcik"}},
    {"type": "Person", "id": f"{MOODLE}/user/profile.php?id=55209880", "name": "Tomasz Wójcik"},
], ids=["account-not-object", "members-not-list", "odd-members", "odd-account", "odd-name", "caliper"])
def test_malformed_agents_in_free_json_are_pseudonymised_without_failing(
        pseudonyms: Pseudonymiser, shape: dict[str, Any]) -> None:
    text = rewritten(pseudonyms, statement(result={"extensions": {EXTENSION: [shape]}}))
    assert "Tomasz" not in text and "55209880" not in text and "tomasz@" not in text


def test_the_lrs_own_extensions_stay_in_a_default_bundle() -> None:
    doc = statement(result={"extensions": {GOAL_TARGET_EXTENSION: "https://example.org/c/commas",
                                           EXTENSION: "Tomasz's essay"}})
    out = PseudonymousStatements(DEFAULT).rewrite(doc)
    assert out["result"] == {"extensions": {GOAL_TARGET_EXTENSION: "https://example.org/c/commas"}}


def test_a_response_holding_json_is_walked_like_an_extension() -> None:
    response = json.dumps({"to": {"mbox": "mailto:mei.chen@example.org", "name": "Mei Chen"},
                           "text": "see you at lunch"})
    free = PseudonymousStatements(FREE).rewrite(statement(result={"response": response}))
    assert json.loads(free["result"]["response"]) == {
        "to": {"objectType": "Agent", "account": {"homePage": "urn:lrs:pseudonym",
                                                  "name": FREE.learner("mbox:mailto:mei.chen@example.org")}},
        "text": "see you at lunch"}
    assert "response" not in PseudonymousStatements(DEFAULT).rewrite(statement(result={"response": response}))


def test_a_response_nested_past_the_depth_limit_is_scrubbed_as_plain_text() -> None:
    response = "[" * 5000 + '"Priya Ramanathan"' + "]" * 5000
    out = PseudonymousStatements(FREE).rewrite(statement(result={"response": response}))
    assert "Priya" not in out["result"]["response"] and out["result"]["response"].startswith("[[[")


def known(pseudonyms: Pseudonymiser) -> KnownPeople:
    people = KnownPeople(pseudonyms)
    people.add("account:https://moodle.example.edu|55209880", ["Tomasz Wójcik"])
    people.add("account:https://moodle.example.edu|42", ["Al Bo"])
    return people


def test_free_text_loses_the_names_and_ids_of_known_people_but_not_ordinary_words() -> None:
    tomasz = FREE.learner("account:https://moodle.example.edu|55209880")
    scrubbed = known(FREE).scrub("TOMASZ WÓJCIK and Tomasz (id 55209880, file tomasz-wójcik.pdf);"
                                 " page 42, a tomasz in lower case")
    # One name word alone counts only capitalised ("Will", "Rose" are words too); ids under four
    # characters are left alone (page 42).
    assert scrubbed == (f"{tomasz} and {tomasz} (id {tomasz}, file {tomasz}.pdf);"
                        " page 42, a tomasz in lower case")


def test_free_text_keeps_names_when_names_are_disclosed_but_never_account_ids() -> None:
    open_names = Pseudonymiser(SECRET, Disclosure(names=True, free_text=True))
    tomasz = open_names.learner("account:https://moodle.example.edu|55209880")
    assert known(open_names).scrub("Tomasz Wójcik is 55209880") == f"Tomasz Wójcik is {tomasz}"
