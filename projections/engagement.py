"""Engagement per learner per day: active minutes, statements and sessions.

Active time comes from result.duration where a statement has one; otherwise it is the gap to
the learner's next statement when that gap is 30 minutes or less. A statement without a
duration that ends its session (the next one comes more than 30 minutes later, or none has come
yet) counts LAST_STATEMENT_MINUTES: nothing says how long the learner stayed, and counting the
whole 30 minutes made the cap a third of all active time. A session is a registration, or,
without one, a run of statements with no gap longer than 30 minutes. What depends on "today"
(streaks, recent weeks, risk) is computed in SQL views as of the newest stored time in the log.

A fold over the learner's facts, oldest first. Only the newest day can still change (its last
statement's gap is open), so the saved state is that day and where the sessions stand; the
open statement's LAST_STATEMENT_MINUTES shows in the rows but not in the state, and is
replaced by the gap when the next statement comes within 30 minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from projections.facts import Fact, from_iso, to_iso

GAP_CAP = timedelta(minutes=30)
LAST_STATEMENT_MINUTES = 1.0


@dataclass(frozen=True, slots=True)
class DailyRow:
    learner: str
    day: date
    active_minutes: float
    statements: int
    sessions: int


@dataclass(slots=True)
class _Day:
    minutes: float = 0.0
    statements: int = 0
    sessions: set[str] = field(default_factory=set)


class EngagementFold:
    def __init__(self, learner: str) -> None:
        self.learner = learner
        self.days: dict[date, _Day] = {}  # the days touched since this fold started or resumed
        self.session = 0
        self.previous: datetime | None = None
        self.previous_open = False  # the previous statement had no duration: its gap counts

    def add(self, fact: Fact) -> None:
        if self.previous is not None:
            gap = fact.ts - self.previous
            if self.previous_open:
                minutes = gap.total_seconds() / 60 if gap <= GAP_CAP else LAST_STATEMENT_MINUTES
                self._day(self.previous.date()).minutes += minutes
            if gap > GAP_CAP:
                self.session += 1
        day = self._day(fact.ts.date())
        day.statements += 1
        if fact.duration_s is not None:
            day.minutes += fact.duration_s / 60
        day.sessions.add(fact.registration or f"gap-session-{self.session}")
        self.previous, self.previous_open = fact.ts, fact.duration_s is None

    def _day(self, moment: date) -> _Day:
        day = self.days.get(moment)
        if day is None:
            day = self.days[moment] = _Day()
        return day

    def rows(self) -> list[DailyRow]:
        open_day = self.previous.date() if self.previous is not None and self.previous_open else None
        return [DailyRow(self.learner, moment,
                         round(d.minutes + (LAST_STATEMENT_MINUTES if moment == open_day else 0), 3),
                         d.statements, len(d.sessions))
                for moment, d in sorted(self.days.items())]

    def state(self) -> dict[str, Any]:
        last = self.days.get(self.previous.date()) if self.previous is not None else None
        return {"session": self.session, "previous": to_iso(self.previous), "open": self.previous_open,
                "day": None if last is None else [last.minutes, last.statements, sorted(last.sessions)]}

    def resume(self, state: dict[str, Any]) -> EngagementFold:
        self.session, self.previous_open = state["session"], state["open"]
        self.previous = from_iso(state["previous"])
        if self.previous is not None and state["day"] is not None:
            minutes, statements, sessions = state["day"]
            self.days[self.previous.date()] = _Day(minutes, statements, set(sessions))
        return self


def learner_days(learner: str, facts: Sequence[Fact]) -> list[DailyRow]:
    fold = EngagementFold(learner)
    for fact in facts:
        fold.add(fact)
    return fold.rows()

