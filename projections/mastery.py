"""Mastery per learner and competency, with the dated transitions between levels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from projections.bkt import BKTParameters, level, update
from projections.facts import Fact


@dataclass(slots=True)
class _Trace:
    params: BKTParameters
    probability: float
    evidence: list[str] = field(default_factory=list)
    last: datetime | None = None
    level: str = "not started"
    mastered_at: datetime | None = None


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


def learner_mastery(learner: str, facts: Sequence[Fact], alignments: Mapping[str, Sequence[str]],
                    parameters: Mapping[str, BKTParameters]) -> tuple[list[MasteryRow], list[Transition]]:
    """Trace every competency through the learner's evidence, oldest first."""
    traces: dict[str, _Trace] = {}
    transitions: list[Transition] = []
    for fact in facts:
        correct = fact.correct
        if correct is None:
            continue
        for competency in competencies_of(fact, alignments):
            params = parameters.get(competency, BKTParameters())
            trace = traces.setdefault(competency, _Trace(params, params.prior))
            trace.probability = update(trace.probability, correct, params)
            trace.evidence.append(fact.statement_id)
            trace.last = fact.ts
            now = level(trace.probability)
            if now != trace.level:
                trace.level = now
                transitions.append(Transition(learner, competency, now, fact.ts, trace.probability,
                                              fact.statement_id))
                if now == "mastered" and trace.mastered_at is None:
                    trace.mastered_at = fact.ts
    rows = [
        MasteryRow(learner, competency, round(t.probability, 6), t.level, len(t.evidence), t.last,
                   tuple(t.evidence), t.params.prior, t.params.learn, t.params.guess, t.params.slip,
                   t.mastered_at)
        for competency, t in sorted(traces.items())
    ]
    return rows, transitions
