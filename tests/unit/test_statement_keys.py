"""What a statement is found by (Communication 2.1.3): one index key per agent, activity, verb
and registration it names, in the narrow form for its actor and object, the related form for
the rest; a related filter reads both forms."""

from __future__ import annotations

from lrs.store.keys import (
    ACTIVITY,
    ACTIVITY_RELATED,
    AGENT,
    AGENT_RELATED,
    REGISTRATION,
    VERB,
    key_forms,
    statement_keys,
)
from schemas.actor import Agent
from schemas.statement import Statement
from tests.statements import activity, agent, statement

ADA, BOB = "mbox:mailto:ada@example.org", "mbox:mailto:bob@example.org"
A1, A2 = "https://example.org/activities/a1", "https://example.org/activities/a2"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
REG = "6fbd600f-d17c-4c74-801a-2ec2e53231c7"


def keys_of(**overrides: object) -> frozenset[str]:
    authority = Agent.model_validate(agent("bob"))  # the LRS's, set at the write
    return statement_keys(Statement.model_validate(statement(**overrides)), authority)


def test_the_actor_and_object_are_stored_under_their_narrow_keys_alone() -> None:
    assert keys_of(actor=agent("ada"), object=activity("a1")) == {
        f"{VERB}:{COMPLETED}", f"{AGENT}:{ADA}", f"{ACTIVITY}:{A1}", f"{AGENT_RELATED}:{BOB}"}


def test_an_agent_or_activity_named_only_in_the_context_is_stored_under_its_related_key() -> None:
    found = keys_of(actor=agent("cy"), object=activity("a2"), context={
        "registration": REG, "instructor": agent("ada"), "contextActivities": {"parent": [activity("a1")]}})
    assert {f"{AGENT_RELATED}:{ADA}", f"{ACTIVITY_RELATED}:{A1}", f"{REGISTRATION}:{REG}"} <= found
    assert f"{AGENT}:{ADA}" not in found and f"{ACTIVITY}:{A1}" not in found


def test_an_actor_named_again_in_the_context_is_stored_once_under_its_narrow_key() -> None:
    found = keys_of(actor=agent("ada"), object=activity("a1"), context={
        "instructor": agent("ada"), "contextActivities": {"parent": [activity("a1")]}})
    assert f"{AGENT}:{ADA}" in found and f"{AGENT_RELATED}:{ADA}" not in found
    assert f"{ACTIVITY}:{A1}" in found and f"{ACTIVITY_RELATED}:{A1}" not in found


def test_a_substatements_agents_and_activities_are_related_to_the_statement() -> None:
    found = keys_of(actor=agent("cy"), object={"objectType": "SubStatement", "actor": agent("ada"),
                                               "verb": {"id": COMPLETED}, "object": activity("a1")})
    assert {f"{AGENT_RELATED}:{ADA}", f"{ACTIVITY_RELATED}:{A1}"} <= found


def test_a_related_filter_reads_its_own_key_and_the_narrow_one() -> None:
    assert key_forms(f"{AGENT_RELATED}:{ADA}") == (f"{AGENT_RELATED}:{ADA}", f"{AGENT}:{ADA}")
    assert key_forms(f"{ACTIVITY_RELATED}:{A1}") == (f"{ACTIVITY_RELATED}:{A1}", f"{ACTIVITY}:{A1}")
    for narrow in (f"{AGENT}:{ADA}", f"{ACTIVITY}:{A1}", f"{VERB}:{COMPLETED}", f"{REGISTRATION}:{REG}"):
        assert key_forms(narrow) == (narrow,)
