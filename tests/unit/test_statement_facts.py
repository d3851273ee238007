"""Statement facts: what the views read from a statement, extracted in DuckDB (facts_sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from projections.facts import Fact, actor_key, facts_of
from projections.vocabulary import COMPETENCY_EXTENSION, COMPETENCY_TYPE, GOAL_TARGET_EXTENSION

ADA = {"mbox": "mailto:ada@example.org"}


def fact(**parts: Any) -> Fact:
    statement = {"id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee", "actor": ADA,
                 "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                 "object": {"id": "https://example.org/q/1"},
                 "timestamp": "2026-09-07T10:00:00Z", "stored": "2026-09-07T10:00:01Z", **parts}
    [only] = facts_of([(1, statement)])
    return only


@pytest.mark.parametrize("agent", [
    {"mbox": "mailto:Ada.L@Example.ORG"},
    {"mbox_sha1sum": "ABCDEF0123456789ABCDEF0123456789ABCDEF01"},
    {"openid": "https://openid.example.org/ada"},
    {"account": {"homePage": "https://sis.example.org", "name": "s001"}},
    {"objectType": "Group", "member": [{"account": {"homePage": "https://sis", "name": "m1"}},
                                       {"mbox": "mailto:m2@example.org"}]},
    {"objectType": "Group", "mbox": "mailto:team@example.org", "member": [ADA]},
])
def test_the_learner_key_in_sql_is_the_python_actor_key(agent: dict[str, Any]) -> None:
    assert fact(actor=agent).learner == actor_key(agent)


def test_an_email_domain_is_lowercased_and_the_local_part_kept() -> None:
    assert fact(actor={"mbox": "mailto:Ada@Example.ORG"}).learner == "mbox:mailto:Ada@example.org"


def test_a_timestamp_with_an_offset_becomes_utc() -> None:
    assert fact(timestamp="2026-09-07T10:00:00.250+02:00").ts == datetime(2026, 9, 7, 8, 0, 0, 250000)


def test_a_timestamp_outside_the_years_of_utc_stored_before_it_was_refused_is_clamped() -> None:
    assert fact(timestamp="0001-01-01T00:00:00+01:00").ts == datetime.min


def test_without_a_timestamp_the_stored_time_is_used() -> None:
    statement = fact()
    without = facts_of([(1, {k: v for k, v in {
        "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee", "actor": ADA, "verb": {"id": "x:v"},
        "object": {"id": "https://example.org/q/1"}, "stored": "2026-09-07T12:00:00Z"}.items()})])[0]
    assert without.ts == datetime(2026, 9, 7, 12) and statement.ts == datetime(2026, 9, 7, 10)


@pytest.mark.parametrize(("duration", "seconds"), [
    ("PT1H2.5M3S", 3753.0), ("P1D", 86400.0), ("PT0S", 0.0), ("PT90S", 90.0), ("P1W", None),
    ("ten minutes", None),
])
def test_result_duration_is_read_as_seconds(duration: str, seconds: float | None) -> None:
    assert fact(result={"duration": duration}).duration_s == seconds


def test_scaled_comes_from_score_scaled() -> None:
    assert fact(result={"score": {"scaled": 0.5, "raw": 9, "min": 0, "max": 10}}).scaled == 0.5


def test_without_scaled_raw_within_min_and_max_is_scaled() -> None:
    assert fact(result={"score": {"raw": 3, "min": 1, "max": 5}}).scaled == 0.5


def test_raw_without_a_range_gives_no_scaled_score() -> None:
    assert fact(result={"score": {"raw": 3}}).scaled is None


def test_competencies_come_from_objective_categories_and_the_extension_once_each() -> None:
    extracted = fact(
        object={"id": "https://example.org/q/1", "definition": {"extensions": {
            COMPETENCY_EXTENSION: ["https://c/b", "https://c/a"]}}},
        context={"contextActivities": {"category": [
            {"id": "https://c/a", "definition": {"type": COMPETENCY_TYPE}},
            {"id": "https://tag/not-a-competency"}]}})
    assert extracted.competencies == ["https://c/a", "https://c/b"]


def test_a_competency_extension_may_be_one_string() -> None:
    extracted = fact(object={"id": "https://example.org/q/1",
                             "definition": {"extensions": {COMPETENCY_EXTENSION: "https://c/x"}}})
    assert extracted.competencies == ["https://c/x"]


@pytest.mark.parametrize(("context", "class_id"), [
    ({"team": {"objectType": "Group", "name": "7B", "member": [ADA]}}, "team:7B"),
    ({"team": {"objectType": "Group", "account": {"homePage": "https://sis", "name": "7c"}}},
     "account:https://sis|7c"),
    ({"team": {"objectType": "Group", "member": [{"mbox": "mailto:Lead@Example.org"}, ADA]}},
     "mbox:mailto:Lead@example.org"),
    ({"contextActivities": {"grouping": [{"id": "https://example.org/course/1"}]}},
     "activity:https://example.org/course/1"),
    ({}, None),
])
def test_the_class_comes_from_the_team_else_the_first_grouping(context: dict[str, Any],
                                                              class_id: str | None) -> None:
    assert fact(context=context).class_id == class_id


def test_a_voiding_statement_names_its_target() -> None:
    voiding = fact(verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
                   object={"objectType": "StatementRef", "id": "0d8e1a3c-0000-4000-8000-000000000001"})
    assert voiding.voids == "0d8e1a3c-0000-4000-8000-000000000001" and voiding.object_id is None


def test_an_agent_object_is_a_peer() -> None:
    helping = fact(object={"objectType": "Agent", "mbox": "mailto:bob@example.org"})
    assert helping.peer == "mbox:mailto:bob@example.org" and helping.object_id is None


def test_an_anonymous_group_object_is_a_peer_named_by_its_first_member() -> None:
    helping = fact(object={"objectType": "Group", "member": [{"openid": "https://id.example.org/b"},
                                                             ADA]})
    assert helping.peer == "openid:https://id.example.org/b" and helping.learner == actor_key(ADA)


def test_a_goal_target_in_result_extensions_wins_over_context() -> None:
    goal = fact(result={"extensions": {GOAL_TARGET_EXTENSION: "https://c/result"}},
                context={"extensions": {GOAL_TARGET_EXTENSION: "https://c/context"}})
    assert goal.goal_target == "https://c/result"


def test_activity_type_and_success_are_read() -> None:
    answered = fact(object={"id": "https://example.org/q/1", "definition": {"type": "https://t/quiz"}},
                    result={"success": False, "response": "B"})
    assert (answered.object_type, answered.success, answered.response) == ("https://t/quiz", False, "B")
    assert answered.correct is False


def test_the_item_kind_is_the_interaction_type_else_the_activity_type() -> None:
    choice = fact(object={"id": "https://example.org/q/1", "definition": {
        "type": "http://adlnet.gov/expapi/activities/cmi.interaction", "interactionType": "choice"}})
    quiz = fact(object={"id": "https://example.org/quiz", "definition": {
        "type": "http://adlnet.gov/expapi/activities/assessment"}})
    assert (choice.item_kind, quiz.item_kind) == ("choice", "http://adlnet.gov/expapi/activities/assessment")
