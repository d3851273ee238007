"""The simulated school goes through the real ingest path, and the projections recover the
simulator's hidden mastery far better than chance."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from projections.runner import ProjectionRunner
from projections.simulator import simulate

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
    assert balanced_accuracy > 0.8  # chance is 0.5


def test_simulate_posts_to_a_running_lrs_over_http(tmp_path: Path) -> None:
    from bench.harness import running_server

    with running_server(data_dir=str(tmp_path / "server")) as server:
        credential = "bench:bench-secret"
        result = subprocess.run(
            [sys.executable, "-m", "lrs.cli.main", "simulate", "--learners", "5", "--days", "5",
             "--seed", "2", "--url", server.url, "--credential", credential],
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
