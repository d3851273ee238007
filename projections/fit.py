"""BKT parameters fitted to the evidence in the log by expectation-maximisation (Baum-Welch),
as pyBKT does: per competency, prior and learn, and guess and slip per item kind ("multigs").

Each learner's evidence on a competency, oldest first, is one sequence of a two-state hidden
Markov model (not known, known; no forgetting). The E-step runs the scaled forward-backward
pass over every sequence; the M-step sets each parameter to its expected count ratio, with one
pseudo-observation at the starting value (so an item kind seen a handful of times stays near its
default) and within BOUNDS (which also keep guess + slip below 1). EM stops when the
log-likelihood gains less than TOLERANCE per observation, or after MAX_ITERATIONS.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from projections.bkt import BKTParameters
from projections.facts import Fact
from projections.mastery import competencies_of

BOUNDS = {"prior": (0.01, 0.99), "learn": (0.01, 0.5), "guess": (0.01, 0.6), "slip": (0.01, 0.35)}
MAX_ITERATIONS = 100
TOLERANCE = 1e-6  # log-likelihood gain per observation
PSEUDO_COUNT = 1.0
METHOD = "EM (Baum-Welch), bounded"

Sequence_ = list[tuple[bool, str]]  # (correct, item kind), oldest first


@dataclass(frozen=True)
class FitResult:
    competency: str
    parameters: BKTParameters
    kinds: tuple[str, ...]  # the item kinds in the evidence ('' for none known)
    learners: int
    observations: int
    iterations: int
    log_likelihood: float  # per observation, at the fitted parameters
    start_log_likelihood: float  # per observation, at the starting parameters

    def statistics(self) -> dict[str, float]:
        return {"learners": self.learners, "observations": self.observations,
                "iterations": self.iterations, "log_likelihood": round(self.log_likelihood, 6),
                "start_log_likelihood": round(self.start_log_likelihood, 6)}


def evidence_sequences(facts_by_learner: Iterable[Sequence[Fact]],
                       alignments: Mapping[str, Sequence[str]]) -> dict[str, list[Sequence_]]:
    """Each competency's sequences, one per learner: the evidence the mastery fold reads, in its
    order (facts come in fold order, voided ones left out)."""
    sequences: dict[str, list[Sequence_]] = defaultdict(list)
    for facts in facts_by_learner:
        mine: dict[str, Sequence_] = defaultdict(list)
        for fact in facts:
            correct = fact.correct
            if correct is None:
                continue
            for competency in competencies_of(fact, alignments):
                mine[competency].append((correct, fact.item_kind))
        for competency, sequence in mine.items():
            sequences[competency].append(sequence)
    return sequences


def fit_competency(competency: str, sequences: Sequence[Sequence_], start: BKTParameters,
                   max_iterations: int = MAX_ITERATIONS) -> FitResult:
    """EM from ``start``; kinds seen in the evidence get guess and slip of their own."""
    params = _bounded(start, start, {}, {})
    observations = sum(len(s) for s in sequences)
    counts = _expectations(sequences, params)
    start_ll = previous = counts.log_likelihood
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        params = _maximised(counts, start)
        counts = _expectations(sequences, params)
        gain, previous = counts.log_likelihood - previous, counts.log_likelihood
        if gain < TOLERANCE * max(observations, 1):
            break
    per = max(observations, 1)
    kinds = tuple(sorted({kind for sequence in sequences for _, kind in sequence}))
    return FitResult(competency, params, kinds, len(sequences), observations, iterations,
                     previous / per, start_ll / per)


def fit_all(sequences: Mapping[str, Sequence[Sequence_]], current: Mapping[str, BKTParameters],
            competencies: Sequence[str] | None = None) -> list[FitResult]:
    """A fit per competency with evidence (or those named), each from its current parameters."""
    chosen = sorted(competencies) if competencies else sorted(sequences)
    return [fit_competency(c, sequences.get(c, []), current.get(c, BKTParameters())) for c in chosen
            if sequences.get(c)]


# --- the two steps ---------------------------------------------------------------------------

@dataclass
class _Counts:
    log_likelihood: float = 0.0
    sequences: int = 0
    prior: float = 0.0  # expected number of sequences that start known
    learned: float = 0.0  # expected transitions not known -> known
    unknown_before: float = 0.0  # expected opportunities while not known (all but the last)
    # per kind: expected right answers while not known, answers while not known,
    # wrong answers while known, answers while known
    guess_right: dict[str, float] | None = None
    not_known: dict[str, float] | None = None
    slip_wrong: dict[str, float] | None = None
    known: dict[str, float] | None = None


def _expectations(sequences: Sequence[Sequence_], p: BKTParameters) -> _Counts:
    counts = _Counts(guess_right=defaultdict(float), not_known=defaultdict(float),
                     slip_wrong=defaultdict(float), known=defaultdict(float))
    for sequence in sequences:
        if sequence:
            _add_sequence(sequence, p, counts)
    return counts


def _add_sequence(sequence: Sequence_, p: BKTParameters, counts: _Counts) -> None:
    """Scaled forward-backward over one sequence, adding its expected counts."""
    learn, stay = p.learn, 1 - p.learn
    emissions = []  # (P(obs | not known), P(obs | known))
    for correct, kind in sequence:
        guess, slip = p.emission(kind)
        emissions.append((guess, 1 - slip) if correct else (1 - guess, slip))
    forward: list[tuple[float, float]] = []
    scales: list[float] = []
    unknown, known = 1 - p.prior, p.prior
    for t, (e_u, e_k) in enumerate(emissions):
        if t:
            unknown, known = unknown * stay, unknown * learn + known
        unknown, known = unknown * e_u, known * e_k
        scale = unknown + known
        unknown, known = unknown / scale, known / scale
        forward.append((unknown, known))
        scales.append(scale)
        counts.log_likelihood += math.log(scale)
    assert counts.guess_right is not None and counts.not_known is not None
    assert counts.slip_wrong is not None and counts.known is not None
    b_u = b_k = 1.0
    for t in range(len(sequence) - 1, -1, -1):
        f_u, f_k = forward[t]
        g_u, g_k = f_u * b_u, f_k * b_k
        total = g_u + g_k
        g_u, g_k = g_u / total, g_k / total
        correct, kind = sequence[t]
        counts.not_known[kind] += g_u
        counts.known[kind] += g_k
        if correct:
            counts.guess_right[kind] += g_u
        else:
            counts.slip_wrong[kind] += g_k
        if t == 0:
            counts.prior += g_k
            break
        # From t-1 to t: ``b_u, b_k`` still hold beta at t.
        e_u, e_k = emissions[t]
        p_u, _ = forward[t - 1]
        counts.learned += p_u * learn * e_k * b_k / scales[t]
        counts.unknown_before += p_u * (stay * e_u * b_u + learn * e_k * b_k) / scales[t]
        b_u, b_k = (stay * e_u * b_u + learn * e_k * b_k) / scales[t], e_k * b_k / scales[t]
    counts.sequences += 1


def _maximised(c: _Counts, start: BKTParameters) -> BKTParameters:
    assert c.guess_right is not None and c.not_known is not None
    assert c.slip_wrong is not None and c.known is not None
    guesses = {k: (c.guess_right[k], c.not_known[k]) for k in c.not_known}
    slips = {k: (c.slip_wrong[k], c.known[k]) for k in c.known}
    prior = _ratio(c.prior, c.sequences, start.prior)
    learn = _ratio(c.learned, c.unknown_before, start.learn)
    return _bounded(BKTParameters(prior, learn, start.guess, start.slip, start.items), start,
                    guesses, slips)


def _ratio(count: float, total: float, start: float) -> float:
    return (count + PSEUDO_COUNT * start) / (total + PSEUDO_COUNT)


def _bounded(p: BKTParameters, start: BKTParameters, guesses: Mapping[str, tuple[float, float]],
             slips: Mapping[str, tuple[float, float]]) -> BKTParameters:
    """Within BOUNDS; kinds with evidence get the ratio of their expected counts, the kind ''
    (items of no known kind) sets the competency's own guess and slip."""
    items = {k: (g, s) for k, g, s in start.items}
    own_guess, own_slip = start.guess, start.slip
    for kind in sorted(set(guesses) | set(slips)):
        start_guess, start_slip = start.emission(kind)
        guess = _clip("guess", _ratio(*guesses.get(kind, (0.0, 0.0)), start_guess))
        slip = _clip("slip", _ratio(*slips.get(kind, (0.0, 0.0)), start_slip))
        if kind:
            items[kind] = (guess, slip)
        else:
            own_guess, own_slip = guess, slip
    kinds = tuple((k, _clip("guess", g), _clip("slip", s)) for k, (g, s) in sorted(items.items()))
    return BKTParameters(_clip("prior", p.prior), _clip("learn", p.learn), _clip("guess", own_guess),
                         _clip("slip", own_slip), kinds)


def _clip(name: str, value: float) -> float:
    low, high = BOUNDS[name]
    return round(min(max(value, low), high), 6)
