"""BKT parameters: checked where they enter, and parameters or data that break the rules never
stop the projections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lrs.application import LearningRecordStore
from lrs.domain import AlignmentSet
from lrs.errors import BadRequest
from projections.learner import LearnerFold
from projections.runner import ProjectionRunner
from tests.integration.test_projection_runner import FRACTIONS, answer, append


def test_out_of_range_parameters_are_a_bad_request_naming_the_competency_and_the_rule(
    sqlite_store: LearningRecordStore
) -> None:
    with pytest.raises(BadRequest) as refused:
        sqlite_store.load_alignments("f", [], {FRACTIONS: {"prior": 0.2, "learn": 0.15, "guess": 1.7,
                                                           "slip": 0.1}})
    assert refused.value.status == 400
    assert str(refused.value) == (f"BKT parameters of {FRACTIONS}: guess must be above 0 and below 1"
                                  " (got 1.7)")


def test_parameters_in_the_log_that_break_the_rules_are_ignored(sqlite_store: LearningRecordStore,
                                                                tmp_path: Path) -> None:
    # Recorded before loads were checked: prior 0 and guess 0 made a right answer divide by zero.
    sqlite_store.save(AlignmentSet(framework="old", alignments=[], parameters={
        FRACTIONS: {"prior": 0.0, "learn": 0.1, "guess": 0.0, "slip": 0.1}}))
    append(sqlite_store, [answer("ada", 1, True)])
    runner = ProjectionRunner(sqlite_store, tmp_path / "views.duckdb")
    runner.rebuild()
    assert runner.con.execute("SELECT prior, probability FROM mastery").fetchone() == (0.2, 0.6)


def test_a_learner_whose_rows_fail_is_left_out_and_the_runner_goes_on(
    sqlite_store: LearningRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(sqlite_store, [answer("ada", 1, True), answer("bob", 1, True)])
    original = LearnerFold.add

    def add(fold: LearnerFold, fact: Any) -> None:
        if fold.learner.startswith("mbox:mailto:bob"):
            raise ValueError("a fact this version cannot fold")
        original(fold, fact)

    monkeypatch.setattr(LearnerFold, "add", add)
    runner = ProjectionRunner(sqlite_store, tmp_path / "views.duckdb")
    runner.catch_up()
    assert runner.con.execute("SELECT learner FROM learner_profile").fetchall() == [
        ("mbox:mailto:ada@example.org",)]
    assert runner.con.execute("SELECT * FROM projection_failures").fetchall() == [
        ("mbox:mailto:bob@example.org", "ValueError: a fact this version cannot fold")]
    assert runner.con.execute("SELECT count(*) FROM dirty_learners").fetchone() == (0,)
