"""A learner's fold resumed from its saved state gives the rows of one fold over all facts."""

from __future__ import annotations

from dataclasses import replace

from projections.bkt import BKTParameters
from projections.learner import LearnerFold
from projections.mastery import MasteryRow
from projections.vocabulary import MENTORED, REFLECTED, SET_GOAL
from tests.projection_facts import fact

ADA = "mbox:mailto:ada@example.org"
FRACTIONS = "https://example.org/c/fractions"
FACTS = [
    fact("2026-11-02T10:00:00", success=True, competencies=(FRACTIONS,), duration_s=120,
         registration="r1", object_type="https://t/quiz"),
    fact("2026-11-02T10:05:00", success=False, competencies=(FRACTIONS,), class_id="team:7B"),
    fact("2026-11-02T23:50:00", verb=SET_GOAL, response="Fractions by Friday", goal_target=FRACTIONS),
    fact("2026-11-03T00:10:00", verb=REFLECTED, response="Hard but fun"),
    fact("2026-11-03T09:00:00", scaled=0.9, competencies=(FRACTIONS,)),
    fact("2026-11-03T09:01:00", verb=MENTORED, peer="mbox:mailto:bob@example.org", object_id=None),
    fact("2026-11-05T12:00:00", success=True, competencies=(FRACTIONS,), learner_name="Ada L"),
]
ALIGNMENTS = {"https://example.org/q1": ["https://example.org/c/decimals"]}
PARAMETERS = {FRACTIONS: BKTParameters(prior=0.3, learn=0.2, guess=0.25, slip=0.1)}


def rows(fold: LearnerFold) -> tuple[object, ...]:
    return (fold.profile.row(), fold.engagement.rows()[-1], fold.last_class)


def mastery_after(first: LearnerFold, resumed: LearnerFold) -> list[MasteryRow]:
    """The runner's write of a resumed fold: touched rows replace, their evidence appended."""
    merged = {r.competency: r for r in first.mastery.rows()}
    for r in resumed.mastery.rows(touched_only=True):
        before = merged.get(r.competency)
        ids = (before.statement_ids if before else ()) + r.statement_ids
        merged[r.competency] = replace(r, statement_ids=ids)
    return [merged[c] for c in sorted(merged)]


def test_a_fold_resumed_at_any_point_ends_where_one_fold_over_everything_ends() -> None:
    whole = LearnerFold(ADA, ALIGNMENTS, PARAMETERS)
    for f in FACTS:
        whole.add(f)
    for split in range(1, len(FACTS)):
        first = LearnerFold(ADA, ALIGNMENTS, PARAMETERS)
        for f in FACTS[:split]:
            first.add(f)
        resumed = LearnerFold.resume(ADA, ALIGNMENTS, PARAMETERS, first.state())
        for f in FACTS[split:]:
            resumed.add(f)
        assert rows(resumed) == rows(whole), split
        assert mastery_after(first, resumed) == whole.mastery.rows(), split
        transitions = first.mastery.transitions + resumed.mastery.transitions
        assert transitions == whole.mastery.transitions, split
        days = {d.day: d for d in first.engagement.rows()} | {d.day: d for d in resumed.engagement.rows()}
        assert sorted(days.values(), key=lambda d: d.day) == whole.engagement.rows(), split
