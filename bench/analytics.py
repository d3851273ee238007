"""Benchmark: how right are mastery and at-risk? The views against the simulator's ground truth.

Each seed simulates a school (projections/simulator.py: item kinds with their own guess rates,
forgetting, disengagement, practice chosen as an LMS would from what it observes) and ingests
it day by day through the real pipeline, the LRS's clock set to the end of each simulated day,
so "now" in the views is that day. At each checkpoint the
runner catches up; mastery is folded from the runner's facts by the same fold the runner uses,
once with the default parameters and once with parameters fitted by `lrs mastery fit`'s EM on
the evidence so far (no ground truth goes into the fit). Two more rows are not models: they
read the simulator's hidden constants. "ceiling" knows each learner's own learning and
forgetting rate and each item kind's true guess and slip, and scores the exact posterior of each
pair from that pair's own evidence: the most any model can reach in expectation, were the
learners' rates known. "bayes" knows all that except each learner's own rates: it knows how
they vary in the population (skill and forgetfulness as the simulator draws them) and infers the
learner's from all the learner's evidence, on every competency, as of the checkpoint: the most
any estimate from the log can reach in expectation. At-risk comes from the engagement_with_risk
view.

Measured over the learner x competency pairs with evidence, against whether the learner knew
the competency at the checkpoint: AUC of probability, accuracy / precision / recall of level
"mastered", Brier score against the base rate's (always answering the share known), lag from
first learning to first reaching mastered (days and evidence items), the share of pairs that
reached mastered before they were learnt, and at-risk precision / recall against the learners
who had disengaged by the checkpoint. A calibration table follows for the end of term.

    python bench/analytics.py [--seeds 11 12 13] [--learners 200] [--days 60] [--checkpoints 10 20 30 60]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings
from projections.bkt import ASSESSMENT, MASTERED, BKTParameters
from projections.facts import Fact
from projections.fit import evidence_sequences, fit_all
from projections.mastery import Evidence, MasteryFold
from projections.runner import ProjectionRunner
from projections.simulator import (
    ITEM_KINDS,
    LEARN_PER_SKILL,
    MAX_FORGETFULNESS,
    MAX_LEARN,
    QUIZ_ITEMS,
    SKILL_SPREAD,
    START,
    Learner,
    School,
)

WRITER = Principal("simulator", "simulator", frozenset({"all"}), "urn:lrs:credentials")
BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0000001)
Pair = tuple[str, str]


@dataclass
class Scores:
    """One seed, one checkpoint, one parameter set."""

    pairs: int
    auc: float
    accuracy: float
    precision: float
    recall: float
    brier: float
    brier_base: float
    lag_days: list[float]
    lag_items: list[int]
    false_mastered: float  # share of pairs that reached mastered before they were learnt
    calibration: list[tuple[float, bool]] = field(default_factory=list)


def auc(scores: Sequence[float], truth: Sequence[bool]) -> float:
    """Mann-Whitney: the chance a known pair scores above an unknown one (ties count half)."""
    ranked = sorted(zip(scores, truth, strict=True))
    rank_sum, i, positives = 0.0, 0, sum(truth)
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + j + 1) / 2
        rank_sum += average_rank * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    negatives = len(ranked) - positives
    if not positives or not negatives:
        return float("nan")
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def score(facts: list[list[Fact]], alignments: dict[str, list[str]], parameters: dict[str, BKTParameters],
          learners: dict[str, Learner], moment: datetime) -> Scores:
    probability, mastered, first_mastered = {}, {}, {}
    evidence_times: dict[Pair, list[datetime]] = defaultdict(list)
    for mine in facts:
        fold = MasteryFold(mine[0].learner, alignments, parameters)
        for fact in mine:
            fold.add(fact)
        for row in fold.rows():
            pair = (row.learner, row.competency)
            probability[pair], mastered[pair] = row.probability, row.level == "mastered"
            first_mastered[pair] = row.first_mastered_at
        for e in fold.evidence:
            evidence_times[(e.learner, e.competency)].append(e.ts)
    return measured(probability, mastered, first_mastered, evidence_times, learners, moment)


# --- the ceiling: the simulator's own hidden model on each pair's evidence -------------------

def _binomial_at_least(n: int, k: int, p: float) -> float:
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def hidden_emission(kind: str) -> tuple[float, float]:
    """(P(right | not known), P(wrong | known)) of an item, as the simulator answers it; a quiz is
    right when at least 80% of its choice items are."""
    if kind == ASSESSMENT:
        guess, slip = ITEM_KINDS["choice"]
        need = math.ceil(0.8 * QUIZ_ITEMS)
        return _binomial_at_least(QUIZ_ITEMS, need, guess), 1 - _binomial_at_least(QUIZ_ITEMS, need, 1 - slip)
    return ITEM_KINDS[kind]


def _school_days_between(after: datetime, before: datetime) -> int:
    """Weekdays strictly after ``after``'s date and strictly before ``before``'s date."""
    day, count = after.date() + timedelta(days=1), 0
    while day < before.date():
        count += day.weekday() < 5
        day += timedelta(days=1)
    return count


def ceiling(evidence: Sequence[Evidence], learner: Learner,
            moment: datetime) -> tuple[float, datetime | None]:
    """P(known at the moment) by the simulator's hidden model, given only this pair's evidence:
    the learner starts not knowing, answers by the item kind's true guess and slip, learns at
    an opportunity at the learner's own rate, and forgets on each school day without practice
    at the learner's own rate. With the first time the estimate reached MASTERED.

    Reading the simulator's constants is what makes it a ceiling, not a model: no per-pair
    model does better in expectation. The simulated learners practise what an LMS would give
    them from what it observes (projections/simulator.py, ``Course``), never from the hidden
    truth, and competencies are learnt and forgotten independently given the learner's rates,
    so neither which competencies a learner practises nor the other pairs' evidence says more
    about this pair: with those rates known, no estimate from the log does better either."""
    p, last, first = 0.0, None, None
    for e in evidence:
        if last is not None:
            p *= (1 - learner.forgetfulness) ** _school_days_between(last, e.ts)
        guess, slip = hidden_emission(e.item_kind)
        right, wrong = (p * (1 - slip), (1 - p) * guess) if e.correct else (p * slip, (1 - p) * (1 - guess))
        posterior = right / (right + wrong)
        p = posterior + (1 - posterior) * learner.learn_rate
        last = e.ts
        if first is None and p >= MASTERED:
            first = e.ts
    if last is not None:
        p *= (1 - learner.forgetfulness) ** _school_days_between(last, moment.replace(tzinfo=None))
    return p, first


def score_ceiling(facts: list[list[Fact]], alignments: dict[str, list[str]],
                  learners: dict[str, Learner], moment: datetime) -> Scores:
    probability, mastered, first_mastered = {}, {}, {}
    evidence_times: dict[Pair, list[datetime]] = defaultdict(list)
    for mine in facts:
        fold = MasteryFold(mine[0].learner, alignments, {})
        for fact in mine:
            fold.add(fact)
        by_pair: dict[Pair, list[Evidence]] = defaultdict(list)
        for e in fold.evidence:
            by_pair[(e.learner, e.competency)].append(e)
            evidence_times[(e.learner, e.competency)].append(e.ts)
        for pair, evidence in by_pair.items():
            p, first = ceiling(evidence, learners[pair[0]], moment)
            probability[pair], mastered[pair], first_mastered[pair] = p, p >= MASTERED, first
    return measured(probability, mastered, first_mastered, evidence_times, learners, moment)


# --- bayes: the simulator's model, knowing the population but not the learner's own rates ----

def population_grid(points: int = 15, forgetting: int = 5) -> list[tuple[float, float, float]]:
    """(prior share, learning rate, forgetfulness): skill's log-normal on ``points`` points
    within 3 standard deviations, forgetfulness's uniform on the midpoints of ``forgetting`` bins."""
    zs = [-3 + 6 * i / (points - 1) for i in range(points)]
    shares = [math.exp(-z * z / 2) for z in zs]
    total = sum(shares) * forgetting
    return [(share / total, min(MAX_LEARN, LEARN_PER_SKILL * math.exp(SKILL_SPREAD * z)),
             MAX_FORGETFULNESS * (j + 0.5) / forgetting)
            for z, share in zip(zs, shares, strict=True) for j in range(forgetting)]


def bayes(evidence: Sequence[Evidence], moment: datetime,
          grid: Sequence[tuple[float, float, float]]) -> dict[str, tuple[float, datetime | None]]:
    """Each competency's P(known at the moment) by the simulator's hidden model, the learner's
    rates unknown: the posterior over the grid of rates from all the learner's evidence, and
    each competency's estimate at each grid point (as ``ceiling``). With the first time the
    estimate, as of that evidence, reached MASTERED."""
    shares = [share for share, _, _ in grid]
    known: dict[str, list[float]] = {}
    last: dict[str, datetime] = {}
    first: dict[str, datetime | None] = {}
    for e in evidence:
        p = known.setdefault(e.competency, [0.0] * len(grid))
        if e.competency in last:
            days = _school_days_between(last[e.competency], e.ts)
            p[:] = [q * (1 - forget) ** days for q, (_, _, forget) in zip(p, grid, strict=True)]
        guess, slip = hidden_emission(e.item_kind)
        if_known, if_not = (1 - slip, guess) if e.correct else (slip, 1 - guess)
        for k, (_, learn, _) in enumerate(grid):
            total = p[k] * if_known + (1 - p[k]) * if_not
            posterior = p[k] * if_known / total
            p[k] = posterior + (1 - posterior) * learn
            shares[k] *= total
        weight = sum(shares)
        shares = [w / weight for w in shares]
        last[e.competency] = e.ts
        if first.get(e.competency) is None:
            now = sum(w * q for w, q in zip(shares, p, strict=True))
            first[e.competency] = e.ts if now >= MASTERED else None
    naive = moment.replace(tzinfo=None)
    result = {}
    for competency, p in known.items():
        days = _school_days_between(last[competency], naive)
        result[competency] = (sum(w * q * (1 - forget) ** days
                                  for w, q, (_, _, forget) in zip(shares, p, grid, strict=True)),
                              first[competency])
    return result


def score_bayes(facts: list[list[Fact]], alignments: dict[str, list[str]],
                learners: dict[str, Learner], moment: datetime) -> Scores:
    probability, mastered, first_mastered = {}, {}, {}
    evidence_times: dict[Pair, list[datetime]] = defaultdict(list)
    grid = population_grid()
    for mine in facts:
        fold = MasteryFold(mine[0].learner, alignments, {})
        for fact in mine:
            fold.add(fact)
        for e in fold.evidence:
            evidence_times[(e.learner, e.competency)].append(e.ts)
        for competency, (p, first) in bayes(fold.evidence, moment, grid).items():
            pair = (mine[0].learner, competency)
            probability[pair], mastered[pair], first_mastered[pair] = p, p >= MASTERED, first
    return measured(probability, mastered, first_mastered, evidence_times, learners, moment)


def measured(probability: dict[Pair, float], mastered: dict[Pair, bool],
             first_mastered: dict[Pair, datetime | None], evidence_times: dict[Pair, list[datetime]],
             learners: dict[str, Learner], moment: datetime) -> Scores:
    """The scores of one estimate over the pairs with evidence, against the truth at the moment."""
    naive = moment.replace(tzinfo=None)
    pairs = sorted(probability)
    known = [learners[a].knew(c, moment) for a, c in pairs]
    p = [probability[pair] for pair in pairs]
    m = [mastered[pair] for pair in pairs]
    base = sum(known) / len(known)
    lag_days, lag_items, early = [], [], 0
    reached = [pair for pair in pairs if first_mastered[pair] is not None]
    for pair in reached:
        learnt = learners[pair[0]].first_learnt(pair[1])
        at = first_mastered[pair]
        assert at is not None
        if learnt is None or learnt.replace(tzinfo=None) > at:
            early += 1
            continue
        start = learnt.replace(tzinfo=None)
        lag_days.append((at - start).total_seconds() / 86400)
        lag_items.append(sum(1 for ts in evidence_times[pair] if start < ts <= at))
    assert all(ts <= naive for times in evidence_times.values() for ts in times)
    true_pos = sum(1 for k, x in zip(known, m, strict=True) if k and x)
    return Scores(
        pairs=len(pairs), auc=auc(p, known),
        accuracy=sum(k == x for k, x in zip(known, m, strict=True)) / len(pairs),
        precision=ratio(true_pos, sum(m)), recall=ratio(true_pos, sum(known)),
        brier=sum((q - k) ** 2 for q, k in zip(p, known, strict=True)) / len(pairs),
        brier_base=base * (1 - base), lag_days=lag_days, lag_items=lag_items,
        false_mastered=ratio(early, len(reached)), calibration=list(zip(p, known, strict=True)))


def at_risk(runner: ProjectionRunner, learners: dict[str, Learner], moment: datetime) -> tuple[int, int, int]:
    """(flagged and disengaged, flagged, disengaged) at the checkpoint."""
    flagged = {row[0] for row in runner.con.execute(
        "SELECT learner FROM engagement_with_risk WHERE at_risk").fetchall()}
    gone = {key for key, lrn in learners.items()
            if lrn.disengaged_from is not None and lrn.disengaged_from <= moment}
    return len(flagged & gone), len(flagged), len(gone)


def run_seed(seed: int, args: argparse.Namespace, folder: Path) -> dict[tuple[int, str], Any]:
    school = School(args.learners, seed, args.days, START)
    learners = {lrn.key: lrn for lrn in school.learners}
    dates = [START + timedelta(days=d) for d in range(args.days) if (START + timedelta(days=d)).weekday() < 5]
    store = LearningRecordStore(env=Settings(data_dir=folder).event_store_env())
    runner = ProjectionRunner(store, folder / "views.duckdb")
    results: dict[tuple[int, str], Any] = {}
    checkpoints = sorted(args.checkpoints)
    days = iter(zip(dates, school.days(args.days), strict=True))
    pending = next(days, None)
    for checkpoint in checkpoints:
        moment = START + timedelta(days=checkpoint)
        while pending is not None and pending[0] < moment:
            date, statements = pending
            stored = date + timedelta(hours=23)  # the LRS's clock: the end of that school day
            for first in range(0, len(statements), 1000):
                batch = prepare_statements(statements[first:first + 1000], WRITER, "1.0.3", 1000)
                outcome = store.store_batches([batch], now=stored)[0]
                assert not isinstance(outcome, Exception), outcome
            pending = next(days, None)
        runner.catch_up()
        facts = list(runner.facts_by_learner())
        alignments = runner.alignments()
        results[(checkpoint, "default")] = score(facts, alignments, {}, learners, moment)
        fitted = {r.competency: r.parameters for r in fit_all(evidence_sequences(facts, alignments), {})}
        results[(checkpoint, "fitted")] = score(facts, alignments, fitted, learners, moment)
        results[(checkpoint, "bayes")] = score_bayes(facts, alignments, learners, moment)
        results[(checkpoint, "ceiling")] = score_ceiling(facts, alignments, learners, moment)
        results[(checkpoint, "risk")] = at_risk(runner, learners, moment)
    runner.close()
    store.close()
    return results


def median_p90(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    return f"{statistics.median(values):.1f} / {statistics.quantiles(values, n=10)[-1]:.1f}"


def report(all_results: list[dict[tuple[int, str], Any]], args: argparse.Namespace) -> None:
    print(f"\n{len(all_results)} seeds ({' '.join(map(str, args.seeds))}), {args.learners} learners,"
          f" {args.days}-day term; means over seeds (AUC: min..max)")
    header = (f"{'day':>4} {'params':<8} {'pairs':>6} {'AUC':>17} {'acc':>6} {'prec':>6} {'recall':>6}"
              f" {'Brier':>6} {'base':>6} {'lag days p50/p90':>17} {'lag items p50/p90':>18} {'false m.':>8}")
    print(header)
    print("-" * len(header))
    for checkpoint in sorted(args.checkpoints):
        for params in ("default", "fitted", "bayes", "ceiling"):
            scores: list[Scores] = [r[(checkpoint, params)] for r in all_results]
            aucs = [s.auc for s in scores]

            def mean(name: str, of: list[Scores] = scores) -> float:
                return statistics.fmean(getattr(s, name) for s in of)

            days = [d for s in scores for d in s.lag_days]
            items = [float(i) for s in scores for i in s.lag_items]
            print(f"{checkpoint:>4} {params:<8} {mean('pairs'):>6.0f}"
                  f" {statistics.fmean(aucs):.3f} ({min(aucs):.3f}..{max(aucs):.3f})"
                  f" {mean('accuracy'):>6.3f} {mean('precision'):>6.3f} {mean('recall'):>6.3f}"
                  f" {mean('brier'):>6.3f} {mean('brier_base'):>6.3f} {median_p90(days):>17}"
                  f" {median_p90(items):>18} {100 * mean('false_mastered'):>7.1f}%")
    print(f"\n{'day':>4} at-risk precision / recall against the learners disengaged by then"
          " (summed over seeds)")
    for checkpoint in sorted(args.checkpoints):
        hits, flagged, gone = (sum(r[(checkpoint, 'risk')][i] for r in all_results) for i in range(3))
        print(f"{checkpoint:>4} {ratio(hits, flagged):.3f} / {ratio(hits, gone):.3f}"
              f"   ({flagged} flagged, {gone} disengaged, {hits} both)")
    end = max(args.checkpoints)
    print(f"\ncalibration at day {end} (all seeds): P(known) bin, pairs, mean probability, share known")
    print(f"{'bin':<12} {'default':>26}   {'fitted':>26}")
    for low, high in pairwise(BINS):
        cells = []
        for params in ("default", "fitted"):
            inside = [(p, k) for r in all_results for p, k in r[(end, params)].calibration if low <= p < high]
            if inside:
                cells.append(f"{len(inside):>6} {statistics.fmean(p for p, _ in inside):>8.3f}"
                             f" {sum(k for _, k in inside) / len(inside):>9.3f}")
            else:
                cells.append(f"{0:>6} {'-':>8} {'-':>9}")
        print(f"{low:.2f}-{min(high, 1.0):.2f}   {cells[0]:>26}   {cells[1]:>26}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[10, 20, 30, 60])
    args = parser.parse_args()
    args.checkpoints = [c for c in args.checkpoints if c <= args.days]
    started = time.monotonic()
    results = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="lrs-analytics-") as folder:
            results.append(run_seed(seed, args, Path(folder)))
        print(f"seed {seed}: done at {time.monotonic() - started:.0f} s", flush=True)
    report(results, args)


if __name__ == "__main__":
    main()
