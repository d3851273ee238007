"""Mastery from evidence: the documented evidence rule, alignments and dated transitions."""

from __future__ import annotations

import pytest

from projections.bkt import BKTParameters
from projections.mastery import learner_mastery
from tests.projection_facts import fact

ADA = "mbox:mailto:ada@example.org"
FRACTIONS = "https://example.org/c/fractions"


def test_success_is_evidence_for_the_competency_the_statement_names() -> None:
    rows, _ = learner_mastery(ADA, [fact("2026-11-02T10:00:00", success=True,
                                         competencies=(FRACTIONS,))], {}, {})
    assert (rows[0].competency, rows[0].probability, rows[0].evidence_count) == (FRACTIONS, 0.6, 1)


def test_scaled_score_at_or_above_0_8_counts_as_correct() -> None:
    right, _ = learner_mastery(ADA, [fact("2026-11-02T10:00:00", scaled=0.8,
                                          competencies=(FRACTIONS,))], {}, {})
    wrong, _ = learner_mastery(ADA, [fact("2026-11-02T10:00:00", scaled=0.79,
                                          competencies=(FRACTIONS,))], {}, {})
    assert right[0].probability == pytest.approx(0.6)
    assert wrong[0].probability < 0.2 + 0.15


def test_statements_without_a_result_are_not_evidence() -> None:
    rows, _ = learner_mastery(ADA, [fact("2026-11-02T10:00:00", competencies=(FRACTIONS,))], {}, {})
    assert rows == []


def test_an_alignment_makes_an_activity_evidence() -> None:
    rows, _ = learner_mastery(ADA, [fact("2026-11-02T10:00:00", success=True)],
                              {"https://example.org/q1": [FRACTIONS]}, {})
    assert rows[0].competency == FRACTIONS


def test_per_competency_parameters_are_used() -> None:
    params = {FRACTIONS: BKTParameters(prior=0.5, learn=0.0, guess=0.5, slip=0.0)}
    rows, _ = learner_mastery(ADA, [fact("2026-11-02T10:00:00", success=True,
                                         competencies=(FRACTIONS,))], {}, params)
    assert rows[0].probability == pytest.approx(0.5 / 0.75)


def test_transitions_record_when_each_level_was_reached() -> None:
    facts = [fact(f"2026-11-0{d}T10:00:00", success=True, competencies=(FRACTIONS,)) for d in (1, 2, 3, 4)]
    rows, transitions = learner_mastery(ADA, facts, {}, {})
    # .6, .890323, .977346 (still approaching: mastered needs .98), .995651
    assert [(t.level, t.reached_at.day) for t in transitions] == [
        ("developing", 1), ("approaching", 2), ("mastered", 4)]
    assert rows[0].mastered_at is not None and rows[0].mastered_at.day == 4
    assert rows[0].statement_ids == tuple(f.statement_id for f in facts)


def test_mastery_can_be_lost_and_mastered_at_is_the_start_of_the_current_mastered_spell() -> None:
    facts = [fact(f"2026-11-0{d}T10:00:00", success=d != 5, competencies=(FRACTIONS,))
             for d in (1, 2, 3, 4, 5)]
    rows, transitions = learner_mastery(ADA, facts, {}, {})
    # .995651 after four right answers, .971263 after the wrong one
    assert (rows[0].level, rows[0].mastered_at) == ("approaching", None)
    assert rows[0].first_mastered_at is not None and rows[0].first_mastered_at.day == 4
    assert [t.level for t in transitions][-2:] == ["mastered", "approaching"]


def test_a_true_false_item_does_not_share_the_guess_rate_of_a_many_option_item() -> None:
    def after_a_right_answer(kind: str) -> float:
        rows, _ = learner_mastery(ADA, [fact("2026-11-02T10:00:00", success=True, interaction_type=kind,
                                             competencies=(FRACTIONS,))], {}, {})
        return rows[0].probability

    # true/false, guess 0.5: .18 / (.18 + .8 * .5) = .310345 + .689655 * .15 = .413793
    # four choices, guess 0.25: .18 / (.18 + .8 * .25) = .473684 + .526316 * .15 = .552632
    assert after_a_right_answer("true-false") == pytest.approx(0.413793, abs=1e-6)
    assert after_a_right_answer("choice") == pytest.approx(0.552632, abs=1e-6)
