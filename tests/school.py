"""A small school for tests of who sees what: two classes, a few learners, credentials for a
teacher of each class and for one learner, on an LRS whose views run embedded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from projections.vocabulary import REFLECTED, SET_GOAL
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient, _empty_postgres

FRACTIONS = "https://example.org/c/fractions"
DECIMALS = "https://example.org/c/decimals"
CLASS_A, CLASS_B = "team:7A", "team:7B"
# learner -> class; ada and bob are in 7A, cat and dan in 7B.
LEARNERS = {"ada": "7A", "bob": "7A", "cat": "7B", "dan": "7B"}
DAY_0 = datetime.now(UTC).date() - timedelta(days=10)


def key_of(name: str) -> str:
    return f"mbox:mailto:{name}@example.org"


def at(day: int, clock: str = "10:00:00") -> str:
    return f"{DAY_0 + timedelta(days=day)}T{clock}Z"


def answered(name: str, day: int, success: bool, competency: str = FRACTIONS) -> dict[str, Any]:
    team = {"objectType": "Group", "name": LEARNERS[name],
            "member": [{"mbox": "mailto:teacher@example.org"}]}
    return {"actor": {"objectType": "Agent", "name": name.capitalize(),
                      "mbox": f"mailto:{name}@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": f"https://example.org/q/{name}/{day}/{competency[-4:]}"},
            "result": {"success": success, "duration": "PT10M"},
            "context": {"team": team, "contextActivities": {"category": [
                {"id": competency,
                 "definition": {"type": "http://adlnet.gov/expapi/activities/objective"}}]}},
            "timestamp": at(day)}


def school_statements() -> list[dict[str, Any]]:
    statements = []
    for n, name in enumerate(LEARNERS):
        for day in range(1, 10):
            statements.append(answered(name, day, success=(day + n) % 3 != 0))
            statements.append(answered(name, day, success=day > 4, competency=DECIMALS))
    statements.append({"actor": {"mbox": "mailto:ada@example.org"}, "verb": {"id": SET_GOAL},
                       "object": {"id": FRACTIONS}, "result": {"response": "Fractions by Friday"},
                       "timestamp": at(1, "09:00:00")})
    statements.append({"actor": {"mbox": "mailto:ada@example.org"}, "verb": {"id": REFLECTED},
                       "object": {"id": "https://example.org/q/ada/2/ions"},
                       "result": {"response": "I mixed up numerators"},
                       "timestamp": at(2, "11:00:00")})
    return statements


@dataclass
class School:
    admin: XAPIClient
    teacher_a: XAPIClient
    teacher_b: XAPIClient
    ada: XAPIClient
    secrets: dict[str, tuple[str, str]]


def wait_for_views(xapi: XAPIClient, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        lag = xapi.request("GET", "/api/health").json()["projections"]
        if lag.get("events_behind") == 0 and lag.get("learners_to_refresh") == 0:
            return
        assert time.monotonic() < deadline, "projections did not catch up"
        time.sleep(0.05)


def open_school(admin: XAPIClient) -> School:
    store = admin.http.app.state.services.store  # type: ignore[attr-defined]
    assert admin.post(school_statements()).status_code == 200
    creds = {
        "teacher_a": store.issue_credential("Ms A", ["teacher"], key="teacher-a",
                                            classes=[CLASS_A]),
        "teacher_b": store.issue_credential("Mr B", ["teacher"], key="teacher-b",
                                            classes=[CLASS_B]),
        "ada": store.issue_credential("Ada", ["learner"], key="ada", learner=key_of("ada")),
    }
    wait_for_views(admin)
    return School(admin, admin.as_credential(*creds["teacher_a"]),
                  admin.as_credential(*creds["teacher_b"]), admin.as_credential(*creds["ada"]),
                  creds)


@contextmanager
def school_on(request: pytest.FixtureRequest, data_dir: Path, **overrides: Any) -> Iterator[School]:
    """The school on the store the request's parameter names ("sqlite" or "postgresql")."""
    event_store = None
    if request.param == "postgresql":
        event_store = request.getfixturevalue("postgres_database")
        _empty_postgres(event_store)
    settings = Settings(data_dir=data_dir, event_store=event_store,
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}", projections="embedded",
                        **overrides)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield open_school(XAPIClient(client))
