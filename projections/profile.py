"""The learner profile: who, when, what kinds of activity, goals, interests, reflections and
community. Pace against the cohort is a view over mastery (projections/schema.py).

Built as a fold over the learner's facts, oldest first, whose state can be saved and resumed,
so new facts extend a profile without reading the learner's history again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projections.facts import Fact, from_iso, to_iso
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


@dataclass(slots=True)
class ProfileFold:
    learner: str
    names: set[str] = field(default_factory=set)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    statements: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    goals: list[dict[str, Any]] = field(default_factory=list)
    interests: Counter[str] = field(default_factory=Counter)
    reflections: list[dict[str, Any]] = field(default_factory=list)
    community: Counter[str] = field(default_factory=Counter)
    peers: set[str] = field(default_factory=set)

    def add(self, fact: Fact) -> None:
        if self.first_seen is None:
            self.first_seen = fact.ts
        self.last_seen = fact.ts
        self.statements += 1
        if fact.learner_name:
            self.names.add(fact.learner_name)
        if fact.object_type:
            self.by_type[fact.object_type] += 1
        if fact.verb == SET_GOAL:
            self.goals.append({"goal": fact.response, "activity": fact.object_id,
                               "competency": fact.goal_target, "set_at": fact.ts.isoformat(),
                               "statement_id": fact.statement_id})
        elif fact.verb == REFLECTED:
            self.reflections.append({"text": fact.response, "activity": fact.object_id,
                                     "at": fact.ts.isoformat(), "statement_id": fact.statement_id})
        elif fact.verb == PREFERRED and fact.object_id:
            self.interests[fact.object_id] += 1
        if fact.verb in COMMUNITY_VERBS:
            self.community[COMMUNITY_VERBS[fact.verb]] += 1
            if fact.peer:
                self.peers.add(fact.peer)

    def row(self) -> ProfileRow:
        assert self.first_seen is not None and self.last_seen is not None, "no facts folded"
        return ProfileRow(
            learner=self.learner, names=tuple(sorted(self.names)), first_seen=self.first_seen,
            last_seen=self.last_seen, statements=self.statements,
            activities_by_type=dict(sorted(self.by_type.items())), goals=list(self.goals),
            interests=dict(sorted(self.interests.items())), reflections=list(self.reflections),
            comments=self.community["comments"], shares=self.community["shares"],
            helped=self.community["helped"], peers_helped=tuple(sorted(self.peers)),
        )

    def state(self) -> dict[str, Any]:
        return {"names": sorted(self.names), "first_seen": to_iso(self.first_seen),
                "last_seen": to_iso(self.last_seen), "statements": self.statements,
                "by_type": dict(self.by_type), "goals": self.goals,
                "interests": dict(self.interests), "reflections": self.reflections,
                "community": dict(self.community), "peers": sorted(self.peers)}

    @classmethod
    def resume(cls, learner: str, state: dict[str, Any]) -> ProfileFold:
        return cls(learner, set(state["names"]), from_iso(state["first_seen"]),
                   from_iso(state["last_seen"]), state["statements"], Counter(state["by_type"]),
                   state["goals"], Counter(state["interests"]), state["reflections"],
                   Counter(state["community"]), set(state["peers"]))


def learner_profile(learner: str, facts: Sequence[Fact]) -> ProfileRow:
    fold = ProfileFold(learner)
    for fact in facts:
        fold.add(fact)
    return fold.row()
