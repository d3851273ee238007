"""Bayesian Knowledge Tracing (Corbett and Anderson, 1995), one competency at a time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BKTParameters:
    """prior P(L0), learn P(T), guess P(G), slip P(S)."""

    prior: float = 0.2
    learn: float = 0.15
    guess: float = 0.2
    slip: float = 0.1


def update(p_known: float, correct: bool, params: BKTParameters) -> float:
    """The posterior after one observation, then the chance to learn from the opportunity."""
    if correct:
        evidence = p_known * (1 - params.slip)
        posterior = evidence / (evidence + (1 - p_known) * params.guess)
    else:
        evidence = p_known * params.slip
        posterior = evidence / (evidence + (1 - p_known) * (1 - params.guess))
    return posterior + (1 - posterior) * params.learn


# Levels: no evidence is "not started"; thresholds follow the usual 0.95 mastery criterion.
MASTERED, APPROACHING = 0.95, 0.7


def level(probability: float | None) -> str:
    if probability is None:
        return "not started"
    if probability >= MASTERED:
        return "mastered"
    if probability >= APPROACHING:
        return "approaching"
    return "developing"
