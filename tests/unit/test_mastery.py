"""Mastery from evidence: the documented evidence rule, alignments, dated transitions and each
learner's own learning speed."""

from __future__ import annotations

import pytest

from projections.bkt import BKTParameters
from projections.facts import Fact
from projections.mastery import learner_mastery
from tests.projection_facts import fact

ADA = "mbox:mailto:ada@example.org"
BOB = "mbox:mailto:bob@example.org"
FRACTIONS = "https://example.org/c/fractions"
DECIMALS = "https://example.org/c/decimals"


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
    # .6, .888942, .976507 (still approaching: mastered needs .98), .995335 (plain BKT, one
    # speed: .6, .890323, .977346, .995651)
    assert [(t.level, t.reached_at.day) for t in transitions] == [
        ("developing", 1), ("approaching", 2), ("mastered", 4)]
    assert rows[0].mastered_at is not None and rows[0].mastered_at.day == 4
    assert rows[0].statement_ids == tuple(f.statement_id for f in facts)


def test_mastery_can_be_lost_and_mastered_at_is_the_start_of_the_current_mastered_spell() -> None:
    facts = [fact(f"2026-11-0{d}T10:00:00", success=d != 5, competencies=(FRACTIONS,))
             for d in (1, 2, 3, 4, 5)]
    rows, transitions = learner_mastery(ADA, facts, {}, {})
    # .995335 after four right answers, .968058 after the wrong one
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


def _answers(learner: str, competency: str, results: list[bool], day: int) -> list[Fact]:
    return [fact(f"2026-11-{day:02d}T10:{minute:02d}:00", learner=learner, success=right,
                 competencies=(competency,)) for minute, right in enumerate(results)]


def test_how_fast_a_learner_learnt_other_competencies_counts_on_the_next() -> None:
    # Ada got fractions right from the start; Bob needed ten tries. The same three right
    # answers on decimals then say more for Ada than for a learner with no other evidence, and
    # less for Bob.
    quick = _answers(ADA, FRACTIONS, [True] * 3, 2)
    slow = _answers(BOB, FRACTIONS, [False] * 10 + [True] * 3, 2)
    ada, _ = learner_mastery(ADA, [*quick, *_answers(ADA, DECIMALS, [True] * 3, 3)], {}, {})
    bob, _ = learner_mastery(BOB, [*slow, *_answers(BOB, DECIMALS, [True] * 3, 3)], {}, {})
    new, _ = learner_mastery(ADA, _answers(ADA, DECIMALS, [True] * 3, 3), {}, {})
    assert ada[0].competency == bob[0].competency == new[0].competency == DECIMALS
    assert ada[0].probability > new[0].probability > bob[0].probability


def test_a_competencys_estimate_moves_only_with_its_own_evidence() -> None:
    # Evidence elsewhere refines the learner's speed, but fractions keep the estimate of their
    # last evidence (so the row, its transitions and mastery_as_of agree).
    facts = [*_answers(ADA, FRACTIONS, [True], 2), *_answers(ADA, DECIMALS, [False] * 5, 3)]
    alone, _ = learner_mastery(ADA, facts[:1], {}, {})
    rows, _ = learner_mastery(ADA, facts, {}, {})
    assert {r.competency: r.probability for r in rows}[FRACTIONS] == alone[0].probability
