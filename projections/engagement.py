"""Engagement per learner per day: active minutes, statements and sessions.

Active time comes from result.duration where a statement has one; otherwise it is the gap to
the learner's next statement, capped at 30 minutes. A session is a registration, or, without
one, a run of statements with no gap longer than 30 minutes. What depends on "today" (streaks,
recent weeks, risk) is computed in SQL views as of the newest event in the log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from projections.facts import Fact

GAP_CAP = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class DailyRow:
    learner: str
    day: date
    active_minutes: float
    statements: int
    sessions: int


def learner_days(learner: str, facts: Sequence[Fact]) -> list[DailyRow]:
    minutes: dict[date, float] = defaultdict(float)
    counts: dict[date, int] = defaultdict(int)
    sessions: dict[date, set[str]] = defaultdict(set)
    session_number = 0
    for index, fact in enumerate(facts):
        day = fact.ts.date()
        counts[day] += 1
        following = facts[index + 1] if index + 1 < len(facts) else None
        gap = following.ts - fact.ts if following is not None else None
        if fact.duration_s is not None:
            minutes[day] += fact.duration_s / 60
        elif gap is not None:
            minutes[day] += min(gap, GAP_CAP).total_seconds() / 60
        if index > 0 and fact.ts - facts[index - 1].ts > GAP_CAP:
            session_number += 1
        sessions[day].add(fact.registration or f"gap-session-{session_number}")
    return [DailyRow(learner, day, round(minutes[day], 3), counts[day], len(sessions[day]))
            for day in sorted(counts)]


def latest_class(facts: Sequence[Fact]) -> str | None:
    for fact in reversed(facts):
        if fact.class_id is not None:
            return fact.class_id
    return None
