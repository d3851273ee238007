"""A realistic school, simulated: classes, learners with different skill, pace and interests,
goals, reflections and peer help, and practice results that follow a hidden model of knowing.

The hidden model is harder than BKT's own story, so that the views are not only measured on
their own assumptions: items are true/false, one of four choices or typed answers, each kind
with its own guess and slip rate (ITEM_KINDS); quizzes score five choice items; learners learn
at each opportunity at a rate that depends on their skill, forget what they do not practise
(each school day, at a rate of their own), and some disengage part-way through the term and
come much less often after. The simulation keeps the ground truth: when each learner learnt
(and forgot) each competency, and who disengaged when (``Simulation.truth``); `lrs simulate`
writes it beside the data. The projections never see it; tests and bench/analytics.py do.

What a learner practises is chosen as an LMS would choose it, from what it observes and never
from the hidden truth (``Course``): the competencies in a fixed course order, the learner on the
first one not passed; a competency is passed after PASS_IN_A_ROW right answers in a row to its
items (a skill builder, as in ASSISTments) or a quiz scored at 0.8 or more, and a passed one is
reopened after REOPEN_IN_A_ROW wrong answers in a row (so forgotten competencies come back into
practice when the LMS sees them go wrong, not when they are forgotten). A learner who passes a
competency by luck moves on without knowing it, as in a real course.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.bkt import ASSESSMENT
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
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
INTERACTION = "http://adlnet.gov/expapi/activities/cmi.interaction"
# interactionType -> (guess, slip): how an item of that kind is answered by a learner who does
# not know (a lucky guess) and one who does (a slip).
ITEM_KINDS = {"true-false": (0.5, 0.05), "choice": (0.25, 0.08), "fill-in": (0.03, 0.15)}
QUIZ_ITEMS = 5  # choice items; the quiz's score.scaled is the evidence (correct at 0.8)
LEARN_PER_SKILL = 0.12  # chance to learn at an opportunity, per unit of skill (at most MAX_LEARN)
MAX_LEARN = 0.9
SKILL_SPREAD = 0.5  # a learner's skill is exp(N(0, SKILL_SPREAD))
MAX_FORGETFULNESS = 0.01  # a learner's forgetfulness is uniform in 0..MAX_FORGETFULNESS
DISENGAGING = 0.2  # share of learners who disengage part-way through the term
DISENGAGED_VISITS = 0.15  # their sessions afterwards, as a share of before
PASS_IN_A_ROW = 3  # right answers in a row to a competency's items that pass it in the course
REOPEN_IN_A_ROW = 2  # wrong answers in a row to a passed competency's items that reopen it
QUIZ_PASS = 0.8  # score.scaled at which a quiz passes its competency


@dataclass
class Course:
    """What the LMS knows of one learner, and so the only thing practice is chosen from: the
    competencies passed, and each competency's run of right (positive) or wrong (negative)
    answers in a row, in the learner's own order of answering."""

    passed: set[str] = field(default_factory=set)
    runs: dict[str, int] = field(default_factory=dict)

    def current(self) -> str:
        """The competency the LMS puts the learner on: the first one not passed, in course
        order; the last one, for more practice, when all are passed."""
        return next((c for c in COMPETENCIES if c not in self.passed), COMPETENCIES[-1])

    def answered(self, competency: str, correct: bool, quiz: bool = False) -> None:
        """An item (or a quiz, correct at QUIZ_PASS) of the competency, as the LMS saw it."""
        run = self.runs.get(competency, 0)
        run = max(run, 0) + 1 if correct else min(run, 0) - 1
        self.runs[competency] = run
        if run >= PASS_IN_A_ROW or (quiz and correct):
            self.passed.add(competency)
        elif run <= -REOPEN_IN_A_ROW:
            self.passed.discard(competency)


@dataclass
class Learner:
    number: int
    class_name: str
    skill: float  # learning rate multiplier
    sessions_per_week: float
    interests: list[str]
    forgetfulness: float = 0.0  # chance per school day to forget a competency not practised that day
    disengaged_from: datetime | None = None
    course: Course = field(default_factory=Course)  # what the LMS observes; practice follows it
    known: set[str] = field(default_factory=set)  # the hidden truth, never used to choose practice
    # competency -> [[learnt at, forgotten at or None], ...]: the ground truth
    episodes: dict[str, list[list[datetime | None]]] = field(default_factory=dict)

    @property
    def agent(self) -> dict[str, Any]:
        return {"objectType": "Agent", "name": f"Learner {self.number}",
                "account": {"homePage": f"{BASE}/sis", "name": f"s{self.number:05d}"}}

    @property
    def key(self) -> str:
        return f"account:{BASE}/sis|s{self.number:05d}"

    @property
    def learn_rate(self) -> float:
        """The chance to learn a competency not known at one opportunity (an item or a quiz)."""
        return min(MAX_LEARN, LEARN_PER_SKILL * self.skill)

    def learn(self, competency: str, at: datetime) -> None:
        self.known.add(competency)
        self.episodes.setdefault(competency, []).append([at, None])

    def forget(self, competency: str, at: datetime) -> None:
        self.known.discard(competency)
        self.episodes[competency][-1][1] = at

    def knew(self, competency: str, moment: datetime) -> bool:
        """Whether the learner knew the competency at that moment (learnt at or before it)."""
        return any(learnt is not None and learnt <= moment and (forgot is None or forgot > moment)
                   for learnt, forgot in self.episodes.get(competency, []))

    def first_learnt(self, competency: str) -> datetime | None:
        episodes = self.episodes.get(competency)
        return episodes[0][0] if episodes else None


@dataclass
class Simulation:
    statements: int = 0
    learners: list[Learner] = field(default_factory=list)
    seed: int = 0
    days: int = 0
    start: datetime = START

    def hidden_mastery(self) -> dict[tuple[str, str], bool]:
        return {(lrn.key, c): c in lrn.known for lrn in self.learners for c in COMPETENCIES}

    def truth(self) -> dict[str, Any]:
        """The ground truth as JSON: what `lrs simulate` writes beside the data."""
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat().replace("+00:00", "Z") if moment is not None else None

        return {
            "seed": self.seed, "days": self.days, "start": iso(self.start), "statements": self.statements,
            "competencies": COMPETENCIES,
            "item_kinds": {kind: {"guess": g, "slip": s} for kind, (g, s) in ITEM_KINDS.items()},
            "quiz": {"items": QUIZ_ITEMS, "kind": "choice", "correct_at_scaled": QUIZ_PASS},
            "practice": {"order": COMPETENCIES, "passed_after_right_in_a_row": PASS_IN_A_ROW,
                         "passed_by_quiz_at_scaled": QUIZ_PASS,
                         "reopened_after_wrong_in_a_row": REOPEN_IN_A_ROW},
            "learners": [{
                "learner": lrn.key, "class": lrn.class_name, "skill": round(lrn.skill, 4),
                "sessions_per_week": round(lrn.sessions_per_week, 3),
                "forgetfulness": round(lrn.forgetfulness, 4),
                "disengaged_from": iso(lrn.disengaged_from),
                "competencies": {c: [[iso(a), iso(b)] for a, b in episodes]
                                 for c, episodes in sorted(lrn.episodes.items())},
            } for lrn in self.learners],
        }


def _objective(competency: str) -> dict[str, Any]:
    return {"id": competency, "definition": {"type": COMPETENCY_TYPE}}


def item_kind(number: int) -> str:
    """Practice item n of a competency: a fixed kind, a third of each."""
    return ("true-false", "choice", "fill-in")[number % 3]


class School:
    def __init__(self, learners: int, seed: int, days: int = 60, start: datetime = START) -> None:
        self.rng = random.Random(seed)
        self.start = start
        classes = max(1, math.ceil(learners / 25))
        self.learners = [
            Learner(n, f"Class {n % classes + 1}", skill=math.exp(self.rng.gauss(0, SKILL_SPREAD)),
                    sessions_per_week=self.rng.uniform(1.5, 6),
                    interests=self.rng.sample(TOPICS, 2),
                    forgetfulness=self.rng.uniform(0, MAX_FORGETFULNESS))
            for n in range(1, learners + 1)
        ]
        for learner in self.learners:
            if self.rng.random() < DISENGAGING:
                day = self.rng.randint(max(1, days // 6), max(1, days - 1))
                learner.disengaged_from = start + timedelta(days=day)

    def _base(self, learner: Learner, verb: str, obj: dict[str, Any], at: datetime,
              registration: str) -> dict[str, Any]:
        team = {"objectType": "Group", "name": learner.class_name,
                "account": {"homePage": f"{BASE}/classes", "name": learner.class_name}}
        return {"id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "actor": learner.agent, "verb": {"id": verb}, "object": obj,
                "context": {"registration": registration, "team": team},
                "timestamp": at.isoformat().replace("+00:00", "Z")}

    def _answer(self, learner: Learner, competency: str, kind: str) -> bool:
        guess, slip = ITEM_KINDS[kind]
        return self.rng.random() < (1 - slip if competency in learner.known else guess)

    def _opportunity(self, learner: Learner, competency: str, at: datetime) -> None:
        """Learning from an item or a quiz: known from the next opportunity on."""
        if competency not in learner.known and self.rng.random() < learner.learn_rate:
            learner.learn(competency, at)

    def _session(self, learner: Learner, at: datetime) -> Iterator[dict[str, Any]]:
        rng = self.rng
        registration = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        course = learner.course
        target = course.current()
        if rng.random() < 0.15:
            goal = self._base(learner, SET_GOAL, _objective(target), at, registration)
            goal["result"] = {"response": f"Get {target.rsplit('/', 1)[1]} done this week"}
            yield goal
        for _ in range(rng.randint(4, 12)):
            # Mostly the competency the LMS has the learner on; sometimes a review of another.
            target = course.current()
            competency = target if rng.random() < 0.8 else rng.choice(COMPETENCIES)
            number = rng.randint(1, 30)
            kind = item_kind(number)
            correct = self._answer(learner, competency, kind)
            course.answered(competency, correct)
            at += timedelta(minutes=rng.uniform(1, 5))
            self._opportunity(learner, competency, at)
            statement = self._base(learner, ANSWERED, {
                "objectType": "Activity", "id": f"{competency}/practice/{number}",
                "definition": {"type": INTERACTION, "interactionType": kind}}, at, registration)
            statement["result"] = {"success": correct, "duration": f"PT{rng.randint(40, 280)}S"}
            statement["context"]["contextActivities"] = {"category": [_objective(competency)]}
            yield statement
        target = course.current()
        if rng.random() < 0.25:
            right = sum(self._answer(learner, target, "choice") for _ in range(QUIZ_ITEMS))
            course.answered(target, right / QUIZ_ITEMS >= QUIZ_PASS, quiz=True)
            at += timedelta(minutes=rng.uniform(5, 10))
            self._opportunity(learner, target, at)
            quiz = self._base(learner, ANSWERED, {
                "objectType": "Activity", "id": f"{target}/quiz",
                "definition": {"type": ASSESSMENT}}, at, registration)
            quiz["result"] = {"score": {"raw": right, "min": 0, "max": QUIZ_ITEMS,
                                        "scaled": right / QUIZ_ITEMS},
                              "duration": f"PT{rng.randint(300, 600)}S"}
            quiz["context"]["contextActivities"] = {"category": [_objective(target)]}
            yield quiz
        yield from self._social(learner, target, at, registration)

    def _social(self, learner: Learner, target: str, at: datetime,
                registration: str) -> Iterator[dict[str, Any]]:
        rng = self.rng
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

    def _forget(self, learner: Learner, practised: set[str], day_end: datetime) -> None:
        for competency in sorted(learner.known - practised):
            if self.rng.random() < learner.forgetfulness:
                learner.forget(competency, day_end)

    def days(self, days: int) -> Iterator[list[dict[str, Any]]]:
        """One list of statements per school day."""
        for day in range(days):
            date = self.start + timedelta(days=day)
            if date.weekday() >= 5:
                continue
            statements: list[dict[str, Any]] = []
            for learner in self.learners:
                rate = learner.sessions_per_week / 5
                if learner.disengaged_from is not None and date >= learner.disengaged_from:
                    rate *= DISENGAGED_VISITS
                practised: set[str] = set()
                if self.rng.random() < rate:
                    start = date + timedelta(hours=self.rng.uniform(8, 16))
                    for statement in self._session(learner, start):
                        practised.update(c["id"] for c in statement["context"].get(
                            "contextActivities", {}).get("category", []))
                        statements.append(statement)
                self._forget(learner, practised, date + timedelta(hours=23))
            yield statements


def simulate(learners: int, days: int, seed: int,
             send: Callable[[list[dict[str, Any]]], None], batch: int = 500,
             start: datetime = START) -> Simulation:
    """Generate the school day by day and hand the statements to ``send`` in batches."""
    school = School(learners, seed, days, start)
    result = Simulation(learners=school.learners, seed=seed, days=days, start=start)
    for statements in school.days(days):
        for first in range(0, len(statements), batch):
            chunk = statements[first:first + batch]
            send(chunk)
            result.statements += len(chunk)
    return result
