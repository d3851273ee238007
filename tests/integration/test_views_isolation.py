"""xAPI traffic never waits on analytics: slow SQL holds its own slots, not the server's threads.

Real processes throughout: the app (TestClient, with anyio's shared thread pool of 40), the
views child, DuckDB, and the event store on SQLite and PostgreSQL. The slow queries are cross
joins that run until the child interrupts them (here: when the views process is stopped).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import XAPIClient
from tests.statements import agent
from tests.waiting import wait_until

SQL_SLOTS = 2
SLOW = "SELECT sum(a.range * b.range) FROM range(1000000000) a, range(1000000000) b"
ADA = quote("mbox:mailto:ada@example.org", safe="")


def answered(day: int) -> dict[str, Any]:
    return {"actor": agent("ada"), "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": f"https://example.org/q/{day}"}, "result": {"success": True},
            "timestamp": f"2026-11-{day:02d}T10:00:00Z"}


def health(lrs: XAPIClient) -> dict[str, Any]:
    projections: dict[str, Any] = lrs.request("GET", "/api/health").json()["projections"]
    return projections


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Clients' threads; set up before the app, so the app closes (ending the slow queries)
    before the pool waits for them."""
    with ThreadPoolExecutor(max_workers=80) as executor:
        yield executor


@pytest.fixture
def lrs(pool: ThreadPoolExecutor, settings: Settings) -> Iterator[XAPIClient]:
    embedded = settings.model_copy(update={
        "projections": "embedded", "sql_slots": SQL_SLOTS, "view_query_slots": 4,
        "sql_timeout_seconds": 600.0})
    with TestClient(create_app(embedded)) as client:
        xapi = XAPIClient(client)
        assert xapi.post([answered(1), answered(2)]).status_code == 200
        wait_until(lambda: health(xapi)["events_behind"] == 0
                   and health(xapi)["learners_to_refresh"] == 0, "the projections catching up", seconds=60)
        yield xapi


@pytest.fixture
def slow_sql(lrs: XAPIClient, pool: ThreadPoolExecutor) -> Iterator[list[Future[Any]]]:
    """Every SQL slot held by a query that runs until it is interrupted."""
    slow = [pool.submit(lrs.request, "POST", "/api/sql", json={"sql": SLOW})
            for _ in range(SQL_SLOTS)]
    wait_until(lambda: health(lrs).get("sql_queries", {}).get("running") == SQL_SLOTS,
               "the slow queries holding every SQL slot", seconds=60)
    yield slow
    # Stopping the views interrupts them; their answers must be in before the app closes.
    lrs.http.app.state.services.views.close()  # type: ignore[attr-defined]
    for future in slow:
        assert future.result(timeout=120).status_code == 503


def still_running(slow: list[Future[Any]]) -> bool:
    return not any(future.done() for future in slow)


def test_statements_are_served_while_slow_sql_fills_its_slots(
        lrs: XAPIClient, pool: ThreadPoolExecutor, slow_sql: list[Future[Any]]) -> None:
    # The incident: slow SQL, then a crowd of health and view calls, then xAPI traffic.
    crowd = [pool.submit(lrs.request, "GET", "/api/health") for _ in range(40)]
    crowd += [pool.submit(lrs.request, "GET", f"/api/learners/{ADA}/profile") for _ in range(20)]
    posted = pool.submit(lrs.post, answered(3))
    assert posted.result(timeout=120).status_code == 200
    got = pool.submit(lrs.get, agent='{"mbox": "mailto:ada@example.org"}')
    assert got.result(timeout=120).status_code == 200
    assert len(got.result().json()["statements"]) == 3
    assert still_running(slow_sql)
    for call in crowd:
        call.result(timeout=120)


def test_sql_beyond_its_slots_gets_503_with_retry_after(
        lrs: XAPIClient, slow_sql: list[Future[Any]]) -> None:
    response = lrs.request("POST", "/api/sql", json={"sql": "SELECT 1"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert f"all {SQL_SLOTS} slots for SQL queries are busy" in response.json()["error"]["message"]
    assert still_running(slow_sql)


def test_health_answers_while_the_sql_slots_are_full(
        lrs: XAPIClient, pool: ThreadPoolExecutor, slow_sql: list[Future[Any]]) -> None:
    calls = [pool.submit(lrs.http.get, "/api/health") for _ in range(40)]  # no credential
    answers = [call.result(timeout=120) for call in calls]
    assert {answer.status_code for answer in answers} == {200}
    projections = answers[-1].json()["projections"]
    assert (projections["state"], projections["sql_queries"]) == (
        "running", {"running": SQL_SLOTS, "slots": SQL_SLOTS})
    assert projections["events_behind"] == 0
    assert still_running(slow_sql)


def test_learner_views_answer_while_slow_sql_fills_its_slots(
        lrs: XAPIClient, pool: ThreadPoolExecutor, slow_sql: list[Future[Any]]) -> None:
    calls = [pool.submit(lrs.request, "GET", f"/api/learners/{ADA}/profile") for _ in range(8)]
    answers = [call.result(timeout=120) for call in calls]
    assert {answer.status_code for answer in answers} == {200}
    assert answers[0].json()["statements"] == 2
    assert still_running(slow_sql)
