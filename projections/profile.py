"""The learner profile: who, when, what kinds of activity, goals, interests, reflections and
community. Pace against the cohort is a view over mastery (projections/schema.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.facts import Fact
from projections.vocabulary import COMMUNITY_VERBS, PREFERRED, REFLECTED, SET_GOAL


@dataclass(frozen=True, slots=True)
class ProfileRow:
    learner: str
    names: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    statements: int
    activities_by_type: dict[str, int]
    goals: list[dict[str, Any]]
    interests: dict[str, int]
    reflections: list[dict[str, Any]]
    comments: int
    shares: int
    helped: int
    peers_helped: tuple[str, ...]


def learner_profile(learner: str, facts: Sequence[Fact]) -> ProfileRow:
    community: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    interests: Counter[str] = Counter()
    goals, reflections, peers = [], [], set()
    for fact in facts:
        if fact.object_type:
            by_type[fact.object_type] += 1
        if fact.verb == SET_GOAL:
            goals.append({"goal": fact.response, "activity": fact.object_id,
                          "competency": fact.goal_target, "set_at": fact.ts.isoformat(),
                          "statement_id": fact.statement_id})
        elif fact.verb == REFLECTED:
            reflections.append({"text": fact.response, "activity": fact.object_id,
                                "at": fact.ts.isoformat(), "statement_id": fact.statement_id})
        elif fact.verb == PREFERRED and fact.object_id:
            interests[fact.object_id] += 1
        if fact.verb in COMMUNITY_VERBS:
            community[COMMUNITY_VERBS[fact.verb]] += 1
            if fact.peer:
                peers.add(fact.peer)
    names = tuple(sorted({f.learner_name for f in facts if f.learner_name}))
    return ProfileRow(
        learner=learner, names=names, first_seen=facts[0].ts, last_seen=facts[-1].ts,
        statements=len(facts), activities_by_type=dict(sorted(by_type.items())), goals=goals,
        interests=dict(sorted(interests.items())), reflections=reflections,
        comments=community["comments"], shares=community["shares"], helped=community["helped"],
        peers_helped=tuple(sorted(peers)),
    )
