"""Mastery per learner and competency, with the dated transitions between levels and the
estimate after every piece of evidence (what ``mastery_as_of`` reads).

The level follows the current estimate, so mastery can be lost: a wrong answer after
"mastered" can bring the estimate below 0.98 again. ``mastered_at`` is when the current
mastered spell began (NULL while not mastered), ``first_mastered_at`` when the learner first
reached mastered at all.

Each learner's own learning speed (projections/bkt.py, SPEEDS) is estimated from all the
learner's evidence, on every competency: a learner who learnt fractions in three answers is
credited sooner on decimals than one who needed twenty. A competency's estimate moves only with
its own evidence (taking the speed as estimated at that moment), so the row, its transitions and
``mastery_as_of`` always agree with the competency's last evidence.

A fold over the learner's evidence, oldest first, whose state (each competency's trace and the
learner's speed) can be saved and resumed, so new evidence continues the traces instead of
replaying the history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projections.bkt import SPEED_SHARES, BKTParameters, level, update_individual
from projections.facts import Fact, from_iso, to_iso


@dataclass(slots=True)
class _Trace:
    params: BKTParameters
    probability: float
    by_speed: list[float]  # P(known) at each of the SPEEDS, from this competency's evidence
    evidence: list[str] = field(default_factory=list)  # ids folded since the fold started or resumed
    count: int = 0  # all evidence, before and since
    last: datetime | None = None
    level: str = "not started"
    mastered_at: datetime | None = None
    first_mastered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MasteryRow:
    learner: str
    competency: str
    probability: float
    level: str
    evidence_count: int
    last_evidence: datetime | None
    statement_ids: tuple[str, ...]
    prior: float
    learn: float
    guess: float
    slip: float
    mastered_at: datetime | None
    first_mastered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence for one competency, and the estimate right after it."""

    learner: str
    competency: str
    n: int  # 1 for the learner's first evidence on the competency, 2 for the next ...
    ts: datetime
    statement_id: str
    correct: bool
    item_kind: str
    probability: float
    level: str


@dataclass(frozen=True, slots=True)
class Transition:
    learner: str
    competency: str
    level: str
    reached_at: datetime
    probability: float
    statement_id: str


def competencies_of(fact: Fact, alignments: Mapping[str, Sequence[str]]) -> list[str]:
    """Named in the statement, or aligned to its activity by a loaded alignment."""
    aligned = alignments.get(fact.object_id or "", ())
    return sorted({*fact.competencies, *aligned})


class MasteryFold:
    def __init__(self, learner: str, alignments: Mapping[str, Sequence[str]],
                 parameters: Mapping[str, BKTParameters]) -> None:
        self.learner = learner
        self.alignments = alignments
        self.parameters = parameters
        self.traces: dict[str, _Trace] = {}
        self.speeds = list(SPEED_SHARES)  # the posterior over the learner's speed
        self.transitions: list[Transition] = []  # those reached since this fold started or resumed
        self.evidence: list[Evidence] = []  # likewise

    def add(self, fact: Fact) -> None:
        correct = fact.correct
        if correct is None:
            return
        for competency in competencies_of(fact, self.alignments):
            trace = self.traces.get(competency)
            if trace is None:
                params = self.parameters.get(competency, BKTParameters())
                trace = self.traces[competency] = _Trace(params, params.prior,
                                                         [params.prior] * len(SPEED_SHARES))
            trace.probability = update_individual(trace.by_speed, self.speeds, correct, trace.params,
                                                  fact.item_kind)
            trace.evidence.append(fact.statement_id)
            trace.count += 1
            trace.last = fact.ts
            now = level(trace.probability)
            self.evidence.append(Evidence(self.learner, competency, trace.count, fact.ts,
                                          fact.statement_id, correct, fact.item_kind,
                                          round(trace.probability, 6), now))
            if now != trace.level:
                trace.level = now
                self.transitions.append(Transition(self.learner, competency, now, fact.ts,
                                                   trace.probability, fact.statement_id))
                trace.mastered_at = fact.ts if now == "mastered" else None
                if now == "mastered" and trace.first_mastered_at is None:
                    trace.first_mastered_at = fact.ts

    def rows(self, touched_only: bool = False) -> list[MasteryRow]:
        """Each competency's row. ``statement_ids`` holds the evidence folded since the fold
        started (all of it, for a fold from the first fact; for a resumed fold, what to append
        to the saved row, and ``touched_only`` leaves out competencies without new evidence)."""
        return [
            MasteryRow(self.learner, competency, round(t.probability, 6), t.level, t.count,
                       t.last, tuple(t.evidence), t.params.prior, t.params.learn, t.params.guess,
                       t.params.slip, t.mastered_at, t.first_mastered_at)
            for competency, t in sorted(self.traces.items()) if t.evidence or not touched_only
        ]

    def state(self) -> dict[str, Any]:
        # The evidence ids live in the mastery rows only: a saved fold stays small.
        return {"speeds": self.speeds,
                "traces": {c: [t.params.to_state(), t.probability, t.by_speed, t.count,
                               to_iso(t.last), t.level, to_iso(t.mastered_at),
                               to_iso(t.first_mastered_at)]
                           for c, t in self.traces.items()}}

    def resume(self, state: dict[str, Any]) -> MasteryFold:
        self.speeds = list(state["speeds"])
        for competency, (params, probability, by_speed, count, last, now, mastered_at,
                         first) in state["traces"].items():
            self.traces[competency] = _Trace(BKTParameters.from_state(params), probability,
                                             list(by_speed), [], count, from_iso(last), now,
                                             from_iso(mastered_at), from_iso(first))
        return self


def learner_mastery(learner: str, facts: Sequence[Fact], alignments: Mapping[str, Sequence[str]],
                    parameters: Mapping[str, BKTParameters]) -> tuple[list[MasteryRow], list[Transition]]:
    """Trace every competency through the learner's evidence, oldest first."""
    fold = MasteryFold(learner, alignments, parameters)
    for fact in facts:
        fold.add(fact)
    return fold.rows(), fold.transitions

