"""A realistic school, simulated: classes, learners with different skill, pace and interests,
goals, reflections and peer help, and practice results that follow a hidden mastery model.

The hidden model is BKT's own generative story: a learner either knows a competency or not,
answers right with probability 1 - slip when knowing and guess when not, and may learn at each
opportunity. The projections never see the hidden state; tests check they recover it.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.vocabulary import (
    COMMENTED,
    COMPETENCY_TYPE,
    MENTORED,
    PREFERRED,
    REFLECTED,
    SET_GOAL,
    SHARED,
)

BASE = "https://school.example.org"
START = datetime(2026, 9, 7, tzinfo=UTC)
COMPETENCIES = [f"{BASE}/competencies/math-{n}" for n in range(1, 9)]
TOPICS = ["robots", "poetry", "space", "music", "sport", "nature"]
GUESS, SLIP = 0.2, 0.1
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"


@dataclass
class Learner:
    number: int
    class_name: str
    skill: float  # learning rate multiplier
    sessions_per_week: float
    interests: list[str]
    known: set[str] = field(default_factory=set)

    @property
    def agent(self) -> dict[str, Any]:
        return {"objectType": "Agent", "name": f"Learner {self.number}",
                "account": {"homePage": f"{BASE}/sis", "name": f"s{self.number:05d}"}}

    @property
    def key(self) -> str:
        return f"account:{BASE}/sis|s{self.number:05d}"


@dataclass
class Simulation:
    statements: int = 0
    learners: list[Learner] = field(default_factory=list)

    def hidden_mastery(self) -> dict[tuple[str, str], bool]:
        return {(lrn.key, c): c in lrn.known for lrn in self.learners for c in COMPETENCIES}


def _objective(competency: str) -> dict[str, Any]:
    return {"id": competency, "definition": {"type": COMPETENCY_TYPE}}


class School:
    def __init__(self, learners: int, seed: int) -> None:
        self.rng = random.Random(seed)
        classes = max(1, math.ceil(learners / 25))
        self.learners = [
            Learner(n, f"Class {n % classes + 1}", skill=math.exp(self.rng.gauss(0, 0.5)),
                    sessions_per_week=self.rng.uniform(1.5, 6),
                    interests=self.rng.sample(TOPICS, 2))
            for n in range(1, learners + 1)
        ]

    def _base(self, learner: Learner, verb: str, obj: dict[str, Any], at: datetime,
              registration: str) -> dict[str, Any]:
        team = {"objectType": "Group", "name": learner.class_name,
                "account": {"homePage": f"{BASE}/classes", "name": learner.class_name}}
        return {"id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "actor": learner.agent, "verb": {"id": verb}, "object": obj,
                "context": {"registration": registration, "team": team},
                "timestamp": at.isoformat().replace("+00:00", "Z")}

    def _session(self, learner: Learner, at: datetime) -> Iterator[dict[str, Any]]:
        rng = self.rng
        registration = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        target = next((c for c in COMPETENCIES if c not in learner.known), COMPETENCIES[-1])
        if rng.random() < 0.15:
            goal = self._base(learner, SET_GOAL, _objective(target), at, registration)
            goal["result"] = {"response": f"Get {target.rsplit('/', 1)[1]} done this week"}
            yield goal
        for _ in range(rng.randint(4, 12)):
            # Mostly the next competency on the path; sometimes a review of an earlier one.
            competency = target if rng.random() < 0.8 else rng.choice(COMPETENCIES)
            knows = competency in learner.known
            correct = rng.random() < (1 - SLIP if knows else GUESS)
            if not knows and rng.random() < min(0.9, 0.12 * learner.skill):
                learner.known.add(competency)
            at += timedelta(minutes=rng.uniform(1, 5))
            statement = self._base(learner, ANSWERED, {
                "objectType": "Activity",
                "id": f"{competency}/practice/{rng.randint(1, 30)}",
                "definition": {"type": "http://adlnet.gov/expapi/activities/interaction"}},
                at, registration)
            statement["result"] = {"success": correct, "duration": f"PT{rng.randint(40, 280)}S"}
            statement["context"]["contextActivities"] = {"category": [_objective(competency)]}
            yield statement
        if rng.random() < 0.25:
            # A quiz of five items on the target: its score.scaled is the evidence.
            knows = target in learner.known
            right = sum(rng.random() < (1 - SLIP if knows else GUESS) for _ in range(5))
            at += timedelta(minutes=rng.uniform(5, 10))
            quiz = self._base(learner, ANSWERED, {
                "objectType": "Activity", "id": f"{target}/quiz",
                "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"}},
                at, registration)
            quiz["result"] = {"score": {"raw": right, "min": 0, "max": 5, "scaled": right / 5},
                              "duration": f"PT{rng.randint(300, 600)}S"}
            quiz["context"]["contextActivities"] = {"category": [_objective(target)]}
            yield quiz
        if rng.random() < 0.3:
            reflection = self._base(learner, REFLECTED, {"id": f"{target}/practice"}, at, registration)
            reflection["result"] = {"response": rng.choice([
                "I understood it better after the second try", "I rushed and made mistakes",
                "Asking a friend helped", "I want more practice on this"])}
            yield reflection
        if rng.random() < 0.2:
            topic = rng.choice(learner.interests)
            yield self._base(learner, PREFERRED, {"id": f"{BASE}/projects/{topic}"}, at, registration)
        if rng.random() < 0.15:
            peer = rng.choice(self.learners)
            verb = rng.choice([COMMENTED, SHARED, MENTORED])
            obj = peer.agent if verb == MENTORED else {"id": f"{BASE}/work/{peer.number}"}
            yield self._base(learner, verb, obj, at, registration)

    def days(self, days: int) -> Iterator[list[dict[str, Any]]]:
        """One list of statements per school day."""
        for day in range(days):
            date = START + timedelta(days=day)
            if date.weekday() >= 5:
                continue
            statements: list[dict[str, Any]] = []
            for learner in self.learners:
                if self.rng.random() < learner.sessions_per_week / 5:
                    start = date + timedelta(hours=self.rng.uniform(8, 16))
                    statements.extend(self._session(learner, start))
            yield statements


def simulate(learners: int, days: int, seed: int,
             send: Callable[[list[dict[str, Any]]], None], batch: int = 500) -> Simulation:
    """Generate the school day by day and hand the statements to ``send`` in batches."""
    school = School(learners, seed)
    result = Simulation(learners=school.learners)
    for statements in school.days(days):
        for start in range(0, len(statements), batch):
            chunk = statements[start:start + batch]
            send(chunk)
            result.statements += len(chunk)
    return result
