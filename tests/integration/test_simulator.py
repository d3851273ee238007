"""The simulated school goes through the real ingest path, and the projections recover the
simulator's hidden mastery far better than chance."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from projections.bkt import ASSESSMENT
from projections.runner import ProjectionRunner
from projections.simulator import (
    COMPETENCIES,
    ITEM_KINDS,
    PASS_IN_A_ROW,
    QUIZ_PASS,
    REOPEN_IN_A_ROW,
    Course,
    simulate,
)
from projections.vocabulary import SET_GOAL

WRITER = Principal("simulator", "simulator", frozenset({"all"}), "urn:lrs:credentials")


def in_process(store: LearningRecordStore) -> Any:
    def send(batch: list[dict[str, Any]]) -> None:
        outcome = store.store_batches([prepare_statements(batch, WRITER, "1.0.3", len(batch))])[0]
        assert not isinstance(outcome, Exception), outcome

    return send


def test_the_same_seed_simulates_the_same_school(sqlite_store: LearningRecordStore) -> None:
    sent: list[list[dict[str, Any]]] = [[], []]
    for run in (0, 1):
        simulate(10, 10, seed=42, send=sent[run].extend)
    assert sent[0] == sent[1] and len(sent[0]) > 100


def test_the_projections_recover_the_hidden_mastery(sqlite_store: LearningRecordStore,
                                                    tmp_path: Path) -> None:
    simulation = simulate(40, 40, seed=7, send=in_process(sqlite_store))
    runner = ProjectionRunner(sqlite_store, tmp_path / "views.duckdb")
    runner.catch_up()
    estimated = {(learner, competency): level == "mastered" for learner, competency, level
                 in runner.con.execute("SELECT learner, competency, level FROM mastery").fetchall()}
    truth = simulation.hidden_mastery()
    pairs = [(truth[key], estimated[key]) for key in estimated]
    known = [est for hidden, est in pairs if hidden]
    unknown = [not est for hidden, est in pairs if not hidden]
    assert known and unknown
    balanced_accuracy = (sum(known) / len(known) + sum(unknown) / len(unknown)) / 2
    # Chance is 0.5. Not higher: at the end of term most of the pairs not known were learnt and
    # forgotten since their last evidence, which no estimate from the evidence can see (0.76 here).
    assert balanced_accuracy > 0.7


def test_simulate_posts_to_a_running_lrs_over_http(tmp_path: Path) -> None:
    from bench.harness import running_server

    with running_server(data_dir=str(tmp_path / "server")) as server:
        credential = "bench:bench-secret"
        result = subprocess.run(
            [sys.executable, "-m", "lrs.cli.main", "simulate", "--learners", "5", "--days", "5",
             "--seed", "2", "--start", "2026-09-07", "--url", server.url, "--credential", credential,
             "--truth", str(tmp_path / "truth.json")],
            capture_output=True, text=True, timeout=120, env=os.environ.copy())
        assert result.returncode == 0, result.stderr
        sent = int(result.stdout.split(":")[1].split()[0])
        auth = "Basic " + base64.b64encode(credential.encode()).decode()
        count = httpx.post(f"{server.url}/api/sql", json={"sql": "SELECT count(*) FROM statement_facts"},
                           headers={"Authorization": auth}, timeout=30)
        # the embedded runner has had at most a second; the log itself holds every statement
        statements = httpx.get(f"{server.url}/xAPI/statements", params={"limit": 0},
                               headers={"Authorization": auth, "X-Experience-API-Version": "1.0.3"})
        assert count.status_code == 200
        assert sent > 0 and len(statements.json()["statements"]) == min(sent, 500)


def test_the_simulation_keeps_when_each_learner_learnt_each_competency() -> None:
    simulation = simulate(20, 30, seed=3, send=lambda batch: None)
    end = simulation.start + timedelta(days=30)
    learnt = [(lrn, c) for lrn in simulation.learners for c in COMPETENCIES if lrn.first_learnt(c)]
    assert learnt
    for learner, competency in learnt:
        first = learner.first_learnt(competency)
        assert first is not None and simulation.start <= first < end
        assert learner.knew(competency, first) and not learner.knew(competency, first - timedelta(seconds=1))
    assert all(lrn.knew(c, end) == (c in lrn.known) for lrn in simulation.learners for c in COMPETENCIES)


def test_simulated_learners_forget_what_they_do_not_practise() -> None:
    simulation = simulate(40, 60, seed=3, send=lambda batch: None)
    forgotten = [episode for lrn in simulation.learners for episodes in lrn.episodes.values()
                 for episode in episodes if episode[1] is not None]
    assert forgotten


def test_simulated_items_are_guessed_at_the_rate_of_their_kind() -> None:
    statements: list[dict[str, Any]] = []
    simulation = simulate(60, 40, seed=4, send=statements.extend)
    learners = {lrn.key: lrn for lrn in simulation.learners}
    guessed: dict[str, list[bool]] = {kind: [] for kind in ITEM_KINDS}
    for s in statements:
        kind = s["object"].get("definition", {}).get("interactionType")
        if kind is None:
            continue
        learner = learners[f"account:{s['actor']['account']['homePage']}|{s['actor']['account']['name']}"]
        competency = s["context"]["contextActivities"]["category"][0]["id"]
        at = datetime.fromisoformat(s["timestamp"].replace("Z", "+00:00"))
        if not learner.knew(competency, at - timedelta(microseconds=1)):  # answered before learning
            guessed[kind].append(s["result"]["success"])
    rates = {kind: sum(answers) / len(answers) for kind, answers in guessed.items()}
    assert rates["true-false"] > 0.4 and 0.15 < rates["choice"] < 0.35 and rates["fill-in"] < 0.08


def test_some_simulated_learners_disengage_and_come_less_often() -> None:
    statements: list[dict[str, Any]] = []
    simulation = simulate(60, 60, seed=5, send=statements.extend)
    disengaged = [lrn for lrn in simulation.learners if lrn.disengaged_from is not None]
    assert 0 < len(disengaged) < len(simulation.learners) / 2
    before = after = 0.0
    for learner in disengaged:
        assert learner.disengaged_from is not None
        mine = [datetime.fromisoformat(s["timestamp"].replace("Z", "+00:00")) for s in statements
                if s["actor"]["account"]["name"] == f"s{learner.number:05d}"]
        days_before = (learner.disengaged_from - simulation.start).days
        before += sum(m < learner.disengaged_from for m in mine) / max(days_before, 1)
        after += sum(m >= learner.disengaged_from for m in mine) / max(60 - days_before, 1)
    assert after < before / 3


def by_learner(statements: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each learner's statements in the order the simulator made them."""
    mine: dict[str, list[dict[str, Any]]] = {}
    for s in statements:
        mine.setdefault(s["actor"]["account"]["name"], []).append(s)
    return mine


def test_simulated_learners_choose_practice_from_what_the_lms_observes() -> None:
    # Replaying only what the statements show (right or wrong, quiz scores) through a Course of
    # our own gives the competency the simulator put each learner on: goals and quizzes are on
    # it, and practice items are, apart from the one in five that reviews any competency.
    statements: list[dict[str, Any]] = []
    simulate(30, 30, seed=6, send=statements.extend)
    on_current = items = checked = 0
    for mine in by_learner(statements).values():
        course = Course()
        for s in mine:
            if s["verb"]["id"] == SET_GOAL:
                assert s["object"]["id"] == course.current()
                checked += 1
            if "result" not in s or "contextActivities" not in s["context"]:
                continue
            competency = s["context"]["contextActivities"]["category"][0]["id"]
            if s["object"]["definition"]["type"] == ASSESSMENT:
                assert competency == course.current()
                checked += 1
                course.answered(competency, s["result"]["score"]["scaled"] >= QUIZ_PASS, quiz=True)
            else:
                items += 1
                on_current += competency == course.current()
                course.answered(competency, s["result"]["success"])
    assert checked > 50 and 0.75 < on_current / items < 0.9


def test_the_lms_passes_a_competency_after_right_answers_in_a_row_or_a_passed_quiz() -> None:
    first, second, third = COMPETENCIES[:3]
    course = Course()
    for correct in [True] * (PASS_IN_A_ROW - 1) + [False] + [True] * (PASS_IN_A_ROW - 1):
        course.answered(first, correct)
    assert course.current() == first  # a wrong answer starts the run again
    course.answered(first, True)
    assert course.current() == second
    course.answered(second, False, quiz=True)
    assert course.current() == second
    course.answered(second, True, quiz=True)
    assert course.current() == third


def test_the_lms_reopens_a_passed_competency_after_wrong_answers_in_a_row() -> None:
    first, second = COMPETENCIES[:2]
    course = Course()
    for _ in range(PASS_IN_A_ROW):
        course.answered(first, True)
    for _ in range(REOPEN_IN_A_ROW - 1):
        course.answered(first, False)
    assert course.current() == second  # one slip does not reopen it
    course.answered(first, False)
    assert course.current() == first


def test_simulated_learners_can_be_moved_on_without_knowing_what_they_passed() -> None:
    # The LMS sees answers, not knowing: a lucky run passes a competency the learner does not
    # know, and the learner goes on to the next one all the same.
    statements: list[dict[str, Any]] = []
    simulation = simulate(60, 30, seed=6, send=statements.extend)
    learners = {f"s{lrn.number:05d}": lrn for lrn in simulation.learners}
    lucky = 0
    for name, mine in by_learner(statements).items():
        course = Course()
        for s in mine:
            if "result" not in s or "contextActivities" not in s["context"]:
                continue
            competency = s["context"]["contextActivities"]["category"][0]["id"]
            quiz = s["object"]["definition"]["type"] == ASSESSMENT
            correct = s["result"]["score"]["scaled"] >= QUIZ_PASS if quiz else s["result"]["success"]
            before = competency in course.passed
            course.answered(competency, correct, quiz=quiz)
            at = datetime.fromisoformat(s["timestamp"].replace("Z", "+00:00"))
            if not before and competency in course.passed:
                lucky += not learners[name].knew(competency, at - timedelta(microseconds=1))
    assert lucky > 0


def test_lrs_simulate_writes_the_ground_truth_beside_the_data(tmp_path: Path) -> None:
    from lrs.cli.main import main

    assert main(["simulate", "--learners", "4", "--days", "10", "--start", "2026-09-07",
                 "--data-dir", str(tmp_path)]) == 0
    truth = json.loads((tmp_path / "simulation-truth.json").read_text())
    assert (truth["start"], truth["days"], len(truth["learners"])) == ("2026-09-07T00:00:00Z", 10, 4)
    learnt = [episodes for lrn in truth["learners"] for episodes in lrn["competencies"].values()]
    assert learnt and all(e[0].startswith("2026-09") for episodes in learnt for e in episodes)
    assert truth["practice"] == {"order": COMPETENCIES, "passed_after_right_in_a_row": PASS_IN_A_ROW,
                                 "passed_by_quiz_at_scaled": QUIZ_PASS,
                                 "reopened_after_wrong_in_a_row": REOPEN_IN_A_ROW}
