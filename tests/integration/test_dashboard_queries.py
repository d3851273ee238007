"""The dashboard's page queries agree with the views they are built beside: today, a class
overview and a learner page say what `mastery`, `engagement_with_risk` and `learner_pace` say;
as of an earlier day, they say what the log held then. On a simulated school, in-process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.dashboard import queries
from lrs.errors import NotFound
from projections.runner import ProjectionRunner
from projections.simulator import simulate

WRITER = Principal("simulator", "simulator", frozenset({"all"}), "urn:lrs:credentials")
CLASS = "team:Class 1"


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from lrs.config import Settings

    folder = tmp_path_factory.mktemp("dashboard-queries")
    store = LearningRecordStore(env=Settings(data_dir=folder).event_store_env())
    start = datetime.combine(datetime.now(UTC).date() - timedelta(days=40), datetime.min.time(), UTC)

    def send(batch: list[dict[str, Any]]) -> None:
        outcome = store.store_batches([prepare_statements(batch, WRITER, "1.0.3", len(batch))])[0]
        assert not isinstance(outcome, Exception), outcome

    simulate(50, 40, seed=3, send=send, start=start)
    runner = ProjectionRunner(store, folder / "views.duckdb")
    runner.catch_up()
    yield runner.con
    runner.close()
    store.close()


def test_the_class_overview_today_is_what_the_views_say(views: Any) -> None:
    overview = queries.class_overview(views, CLASS)
    risk = dict(views.execute("SELECT learner, at_risk FROM engagement_with_risk WHERE class_id = ?",
                              [CLASS]).fetchall())
    pace = dict(views.execute("SELECT learner, mastered_per_week FROM learner_pace WHERE class_id = ?",
                              [CLASS]).fetchall())
    mastery = {(learner, competency): level for learner, competency, level in views.execute(
        "SELECT m.learner, competency, level FROM mastery m JOIN learner_class c USING (learner)"
        " WHERE c.class_id = ?", [CLASS]).fetchall()}
    rows = overview["learners"]
    assert len(rows) == len(risk) > 10
    assert {r["learner"]: bool(r["risk_reasons"]) for r in rows} == risk
    assert {r["learner"]: r["per_week"] for r in rows} == pytest.approx(pace, abs=1e-3)
    assert {(r["learner"], c): m[1] for r in rows for c, m in r["mastery"].items()} == mastery


def test_the_class_overview_counts_active_this_week_as_the_views_do(views: Any) -> None:
    overview = queries.class_overview(views, CLASS)
    active = views.execute("SELECT active_this_week FROM class_engagement WHERE class_id = ?",
                           [CLASS]).fetchone()[0]
    assert overview["active_this_week"] == active


def test_the_learner_page_today_has_the_views_streaks_and_levels(views: Any) -> None:
    learner = views.execute("SELECT learner FROM learner_class WHERE class_id = ? ORDER BY learner"
                            " LIMIT 1", [CLASS]).fetchone()[0]
    page = queries.learner_page(views, learner)
    current, longest = views.execute("SELECT current_streak, longest_streak FROM engagement_with_risk"
                                     " WHERE learner = ?", [learner]).fetchone()
    assert (page["current_streak"], page["longest_streak"]) == (current, longest)
    levels = dict(views.execute("SELECT competency, level FROM mastery WHERE learner = ?",
                                [learner]).fetchall())
    assert {c["competency"]: c["level"] for c in page["competencies"]} == levels
    for competency in page["competencies"]:
        assert competency["evidence"], competency["competency"]
        assert competency["evidence"][0]["n"] == competency["evidence_count"]  # newest first


def test_as_of_an_earlier_day_shows_only_what_the_log_held_then(views: Any) -> None:
    learner = views.execute("SELECT learner FROM learner_profile ORDER BY statements DESC, learner"
                            " LIMIT 1").fetchone()[0]
    today = queries.learner_page(views, learner)
    day = date.fromisoformat(today["as_of"]) - timedelta(days=20)
    then = queries.learner_page(views, learner, day.isoformat())
    cutoff = datetime.combine(day + timedelta(days=1), datetime.min.time())
    assert then["as_of"] == day.isoformat()
    assert all(e["ts"] < cutoff for c in then["competencies"] for e in c["evidence"])
    assert all(g["set_at"] < cutoff.isoformat() for g in then["goals"])
    assert sum(c["evidence_count"] for c in then["competencies"]) \
        < sum(c["evidence_count"] for c in today["competencies"])
    assert all(d["day"] <= day.isoformat() for d in then["days"])


def test_a_class_before_its_first_statement_has_no_learners_yet(views: Any) -> None:
    overview = queries.class_overview(views, CLASS, "2000-01-01")
    assert overview["learners"] == [] and overview["competencies"] == []


def test_an_unknown_class_or_learner_is_not_found(views: Any) -> None:
    with pytest.raises(NotFound):
        queries.class_overview(views, "team:nobody")
    with pytest.raises(NotFound):
        queries.learner_page(views, "mbox:mailto:nobody@example.org")


@pytest.mark.parametrize(("days", "on", "current", "longest"), [
    ([], 5, 0, 0),
    ([1, 2, 3], 3, 3, 3),            # ends on the day
    ([1, 2, 3], 4, 3, 3),            # ends the day before (the day is not over): still current
    ([1, 2, 3], 5, 0, 3),            # ended two days before: broken
    ([1, 2, 5, 6, 7], 7, 3, 3),
    ([1, 2, 3, 4, 8], 8, 1, 4),
])
def test_streaks_count_days_in_a_row_as_the_views_do(days: list[int], on: int, current: int,
                                                     longest: int) -> None:
    base = date(2026, 1, 1)
    found = queries.streaks([base + timedelta(days=d) for d in days], base + timedelta(days=on))
    assert found == (current, longest)


def test_risk_reasons_are_in_words() -> None:
    today = date(2026, 3, 20)
    assert queries.risk_reasons(today, date(2026, 3, 11), [60, 60, 60, 0]) == [
        "no activity for 9 days",
        "0 minutes this week, under half of the three weeks before (60 a week)"]
    assert queries.risk_reasons(today, date(2026, 3, 19), [30, 30, 30, 20]) == []
