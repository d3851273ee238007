"""Two stores through `lrs serve --workers 2`: each worker's writes and view queries reach the
parent's committer and projections of the caller's own store, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from lrs.application import LearningRecordStore
from lrs.config import Settings
from tests.integration.test_serve_workers import AUTH, event_store, serving, statement

__all__ = ["event_store"]  # the fixture, parametrised over both event stores


def auth(key: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"}


def stored_ids(data_dir: Path, event_store: str | None, store: str, ids: set[str]) -> set[str]:
    """Which of these ids the store's own log holds, read from disk after the server stopped."""
    settings = Settings(data_dir=data_dir, event_store=event_store).for_store(store)
    app = LearningRecordStore(env=settings.event_store_env())
    try:
        return set(app.index.existing_statements(ids).events)
    finally:
        app.close()


def sql_count(http: httpx.Client, headers: dict[str, str], expected: int) -> Any:
    deadline = time.monotonic() + 60
    while True:
        response = http.post("/api/sql", headers=headers,
                             json={"sql": "SELECT count(*) FROM statement_facts"})
        if response.status_code == 200 and response.json()["rows"] == [[expected]]:
            return response.json()["rows"]
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)


def test_two_stores_through_two_workers_keep_their_own_statements_and_views(
        tmp_path: Path, event_store: str | None) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir, event_store, workers=2) as (_, url), \
            httpx.Client(base_url=url, timeout=30) as http:
        headers = {}
        for name in ("north", "south"):
            assert http.post("/admin/stores", headers=AUTH, json={"name": name}).status_code == 201
            issued = http.post(f"/admin/stores/{name}/credentials", headers=AUTH,
                               json={"name": name, "scopes": ["all"]}).json()
            headers[name] = auth(issued["key"], issued["secret"])
        shared = str(uuid.uuid4())  # the same id in both stores: each takes it
        sent: dict[str, set[str]] = {"north": {shared}, "south": {shared}}
        learner3: dict[str, set[str]] = {"north": set(), "south": set()}
        for name, count in (("north", 30), ("south", 20)):
            for n in range(count):  # one request each: new connections land on either worker
                sid = str(uuid.uuid4())
                with httpx.Client(base_url=url, timeout=30) as fresh:
                    response = fresh.post("/xAPI/statements", headers=headers[name],
                                          json=statement(sid, n))
                assert response.status_code == 200, response.text
                sent[name].add(sid)
                if n % 7 == 3:
                    learner3[name].add(sid)
            response = http.put("/xAPI/statements", headers=headers[name],
                                params={"statementId": shared}, json=statement(shared, count))
            assert response.status_code == 204, response.text
        for name in ("north", "south"):
            page = http.get("/xAPI/statements", headers=headers[name], params={"limit": 0})
            assert page.status_code == 200
            assert "X-Experience-API-Consistent-Through" in page.headers
            got = {s["id"] for s in page.json()["statements"]}
            while page.json().get("more"):
                page = http.get(page.json()["more"], headers=headers[name])
                got |= {s["id"] for s in page.json()["statements"]}
            assert got == sent[name]
            # A filter finds them by keys the worker hashed, in the store's own secret.
            page = http.get("/xAPI/statements", headers=headers[name], params={
                "agent": '{"mbox": "mailto:learner3@example.org"}', "limit": 0})
            assert {s["id"] for s in page.json()["statements"]} == learner3[name]
            sql_count(http, headers[name], len(sent[name]))
    every = sent["north"] | sent["south"]
    for name in ("north", "south"):
        assert stored_ids(data_dir, event_store, name, every) == sent[name]
    assert stored_ids(data_dir, event_store, "default", every) == set()
