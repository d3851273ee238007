"""Engagement per day, from small histories with known answers."""

from __future__ import annotations

from projections.engagement import learner_days
from projections.learner import LearnerFold
from tests.projection_facts import fact

ADA = "mbox:mailto:ada@example.org"


def test_duration_counts_as_active_time_where_present() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00", duration_s=600)])
    assert [(d.active_minutes, d.statements) for d in days] == [(10.0, 1)]


def test_without_duration_the_gap_to_the_next_statement_counts() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00"), fact("2026-11-02T10:12:00", duration_s=0)])
    assert days[0].active_minutes == 12.0


def test_a_gap_of_30_minutes_still_counts_whole() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00"), fact("2026-11-02T10:30:00", duration_s=0)])
    assert days[0].active_minutes == 30.0


def test_a_sessions_last_statement_without_duration_counts_one_minute() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00"), fact("2026-11-02T13:00:00", duration_s=60)])
    assert days[0].active_minutes == 1.0 + 1.0


def test_the_newest_statement_without_duration_counts_one_minute() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00", duration_s=120), fact("2026-11-02T10:05:00")])
    assert days[0].active_minutes == 2.0 + 1.0


def test_a_gap_over_30_minutes_starts_a_new_session() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00"), fact("2026-11-02T10:20:00"),
                              fact("2026-11-02T11:30:00")])
    assert days[0].sessions == 2


def test_a_registration_is_one_session() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00", registration="r1"),
                              fact("2026-11-02T12:00:00", registration="r1")])
    assert days[0].sessions == 1


def test_each_day_gets_its_own_row() -> None:
    days = learner_days(ADA, [fact("2026-11-02T10:00:00", duration_s=60),
                              fact("2026-11-04T10:00:00", duration_s=120)])
    assert [(str(d.day), d.active_minutes) for d in days] == [("2026-11-02", 1.0), ("2026-11-04", 2.0)]


def test_the_class_is_the_latest_one_named() -> None:
    facts = [fact("2026-11-02T10:00:00", class_id="team:7A"), fact("2026-11-03T10:00:00"),
             fact("2026-11-04T10:00:00", class_id="team:7B"), fact("2026-11-05T10:00:00")]
    fold = LearnerFold(ADA, {}, {})
    for f in facts:
        fold.add(f)
    assert fold.last_class == "team:7B"
