"""Fitting BKT parameters by EM: evidence generated from known parameters gives them back."""

from __future__ import annotations

import random

import pytest

from projections.bkt import BKTParameters, parameters_from
from projections.fit import BOUNDS, evidence_sequences, fit_competency
from tests.projection_facts import fact

FRACTIONS = "https://example.org/c/fractions"
# A true/false item is guessed half the time, a fill-in item rarely; fill-in items slip more.
TRUE_FALSE, FILL_IN = (0.5, 0.05), (0.05, 0.15)


def generated(prior: float, learn: float, learners: int = 300, seed: int = 3) -> list[list[tuple[bool, str]]]:
    rng = random.Random(seed)
    sequences = []
    for _ in range(learners):
        known, sequence = rng.random() < prior, []
        for _ in range(20):
            kind = "true-false" if rng.random() < 0.5 else "fill-in"
            guess, slip = TRUE_FALSE if kind == "true-false" else FILL_IN
            sequence.append((rng.random() < (1 - slip if known else guess), kind))
            known = known or rng.random() < learn
        sequences.append(sequence)
    return sequences


def test_em_recovers_the_prior_and_learning_rate_that_generated_the_evidence() -> None:
    fitted = fit_competency(FRACTIONS, generated(prior=0.3, learn=0.2), BKTParameters()).parameters
    assert (fitted.prior, fitted.learn) == (pytest.approx(0.3, abs=0.05), pytest.approx(0.2, abs=0.05))


def test_em_gives_each_item_kind_its_own_guess_and_slip() -> None:
    fitted = fit_competency(FRACTIONS, generated(prior=0.3, learn=0.2), BKTParameters()).parameters
    assert fitted.emission("true-false") == (pytest.approx(0.5, abs=0.05), pytest.approx(0.05, abs=0.03))
    assert fitted.emission("fill-in") == (pytest.approx(0.05, abs=0.03), pytest.approx(0.15, abs=0.05))


def test_fitted_parameters_stay_within_their_bounds_and_the_rules() -> None:
    always_right = [[(True, "")] * 10 for _ in range(50)]  # unbounded, guess would reach 1
    result = fit_competency(FRACTIONS, always_right, BKTParameters())
    p = result.parameters
    for name in ("prior", "learn", "guess", "slip"):
        low, high = BOUNDS[name]
        assert low <= getattr(p, name) <= high, name
    assert parameters_from(FRACTIONS, p.to_event()) == p


def test_the_fit_reads_the_evidence_the_mastery_fold_reads() -> None:
    facts = [fact("2026-11-02T10:00:00", success=True, competencies=(FRACTIONS,), interaction_type="choice"),
             fact("2026-11-02T10:01:00", response="no result: not evidence", competencies=(FRACTIONS,)),
             fact("2026-11-02T10:02:00", scaled=0.5)]  # aligned below
    sequences = evidence_sequences([facts], {"https://example.org/q1": [FRACTIONS]})
    assert sequences == {FRACTIONS: [[(True, "choice"), (False, "")]]}
