"""The learner profile, from small histories with known answers."""

from __future__ import annotations

from projections.profile import learner_profile
from projections.vocabulary import COMMENTED, MENTORED, PREFERRED, REFLECTED, SET_GOAL, SHARED
from tests.projection_facts import fact

ADA = "mbox:mailto:ada@example.org"


def test_first_and_last_seen_and_statement_count() -> None:
    p = learner_profile(ADA, [fact("2026-11-02T10:00:00"), fact("2026-11-09T08:00:00")])
    assert (p.first_seen.day, p.last_seen.day, p.statements) == (2, 9, 2)


def test_goals_are_the_learners_own_set_goal_statements() -> None:
    p = learner_profile(ADA, [fact("2026-11-02T10:00:00", verb=SET_GOAL, response="Master fractions",
                                   goal_target="https://example.org/c/fractions")])
    assert p.goals[0]["goal"] == "Master fractions"
    assert p.goals[0]["competency"] == "https://example.org/c/fractions"


def test_reflections_keep_their_text() -> None:
    p = learner_profile(ADA, [fact("2026-11-02T10:00:00", verb=REFLECTED, response="I rushed")])
    assert [r["text"] for r in p.reflections] == ["I rushed"]


def test_interests_count_what_the_learner_chose() -> None:
    facts = [fact("2026-11-02T10:00:00", verb=PREFERRED, object_id="https://example.org/robots"),
             fact("2026-11-03T10:00:00", verb=PREFERRED, object_id="https://example.org/robots"),
             fact("2026-11-03T11:00:00", verb=PREFERRED, object_id="https://example.org/poems")]
    assert learner_profile(ADA, facts).interests == {"https://example.org/poems": 1,
                                                     "https://example.org/robots": 2}


def test_community_counts_comments_shares_and_help() -> None:
    facts = [fact("2026-11-02T10:00:00", verb=COMMENTED), fact("2026-11-02T10:05:00", verb=SHARED),
             fact("2026-11-02T10:09:00", verb=MENTORED, object_id=None,
                  peer="mbox:mailto:bob@example.org")]
    p = learner_profile(ADA, facts)
    assert (p.comments, p.shares, p.helped, p.peers_helped) == (1, 1, 1, ("mbox:mailto:bob@example.org",))


def test_activities_are_counted_by_type() -> None:
    quiz = "http://adlnet.gov/expapi/activities/assessment"
    facts = [fact("2026-11-02T10:00:00", object_type=quiz), fact("2026-11-02T10:01:00", object_type=quiz),
             fact("2026-11-02T10:02:00")]
    assert learner_profile(ADA, facts).activities_by_type == {quiz: 2}
