"""Attacks on store isolation through `lrs serve --workers N`, on SQLite and PostgreSQL: one
store's load or opening must not deny another store's requests."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx

from lrs.api.services import Services, StoreServices
from lrs.config import Settings
from tests.integration.test_serve_workers import AUTH, event_store, serving, statement
from tests.integration.test_stores_workers import auth

__all__ = ["event_store"]  # the fixture, parametrised over both event stores

# A query the sandbox allows that runs until LRS_SQL_TIMEOUT_SECONDS stops it.
SLOW_SQL = "SELECT sum(hash(a.range + b.range)) FROM range(100000) a, range(100000) b"


def _store_credential(http: httpx.Client, name: str) -> dict[str, str]:
    assert http.post("/admin/stores", headers=AUTH, json={"name": name}).status_code == 201
    issued = http.post(f"/admin/stores/{name}/credentials", headers=AUTH,
                       json={"name": name, "scopes": ["all"]}).json()
    return auth(issued["key"], issued["secret"])


def test_one_stores_sql_does_not_take_another_stores_sql_slots(
        tmp_path: Path, event_store: str | None) -> None:
    with serving(tmp_path / "data", event_store, workers=2, LRS_SQL_SLOTS="1",
                 LRS_SQL_TIMEOUT_SECONDS="6") as (_, url), \
            httpx.Client(base_url=url, timeout=60) as http:
        north, south = _store_credential(http, "north"), _store_credential(http, "south")
        for headers in (north, south):  # both stores' projections are open before the race
            assert http.post("/api/sql", headers=headers,
                             json={"sql": "SELECT 1"}).status_code == 200
        slow: dict[str, Any] = {}

        def north_analyst() -> None:
            with httpx.Client(base_url=url, timeout=60) as own:
                slow["response"] = own.post("/api/sql", headers=north, json={"sql": SLOW_SQL})

        thread = threading.Thread(target=north_analyst)
        thread.start()
        try:
            threading.Event().wait(1.5)  # north's query holds the slot
            assert "response" not in slow, "the slow query ended too soon to hold the slot"
            answer = http.post("/api/sql", headers=south, json={"sql": "SELECT 1"})
        finally:
            thread.join()
        assert answer.status_code == 200, answer.text


def test_a_store_being_opened_does_not_hold_another_stores_requests(
        tmp_path: Path, event_store: str | None) -> None:
    """Opening a store (its log, committer and projections process) takes seconds; meanwhile
    other stores' requests, and in `lrs serve --workers N` the parent's pipe (`is_open`), go on.
    The real opener is kept, held at a gate so the opening lasts as long as the test needs."""
    settings = Settings(data_dir=tmp_path / "data", event_store=event_store, projections="off")
    services = Services.start(settings)
    gate, entered = threading.Event(), threading.Event()
    opening = threading.Thread(target=services.named, args=("north",))
    try:
        for name in ("north", "south"):
            services.store.create_store(name)
        south = services.named("south")
        real_opener = services.opener
        assert real_opener is not None

        def held_opener(store_settings: Settings) -> StoreServices:
            entered.set()
            gate.wait(30)
            return real_opener(store_settings)

        services.opener = held_opener
        opening.start()
        assert entered.wait(10)
        answered: list[object] = []
        other = threading.Thread(target=lambda: answered.extend(
            [services.named("south"), services.is_open("default")]))
        other.start()
        other.join(timeout=5)
        assert answered == [south, True], "another store waited for north's opening"
    finally:
        gate.set()
        if opening.is_alive():
            opening.join()
        services.close()


def test_concurrent_requests_of_two_stores_on_two_workers_each_get_their_own_store(
        tmp_path: Path, event_store: str | None) -> None:
    """A race between two stores' requests in one worker must never answer one with the
    other's services: each sees its own statements only, writing and reading at once."""
    with serving(tmp_path / "data", event_store, workers=2) as (_, url), \
            httpx.Client(base_url=url, timeout=60) as http:
        headers = {name: _store_credential(http, name) for name in ("north", "south")}
        wrong: list[str] = []

        def client(name: str, rounds: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as own:
                for n in range(rounds):
                    sent = {**statement(str(uuid.uuid4()), n),
                            "actor": {"mbox": f"mailto:learner@{name}.example.org"}}
                    response = own.post("/xAPI/statements", headers=headers[name], json=sent)
                    assert response.status_code == 200, response.text
                    page = own.get("/xAPI/statements", headers=headers[name],
                                   params={"limit": 0})
                    wrong.extend(f"{name} saw {s['actor']['mbox']}"
                                 for s in page.json()["statements"]
                                 if s["actor"]["mbox"] != sent["actor"]["mbox"])

        threads = [threading.Thread(target=client, args=(name, 15))
                   for name in ("north", "south") * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wrong == []
        for name in ("north", "south"):
            count = len(http.get("/xAPI/statements", headers=headers[name],
                                 params={"limit": 0}).json()["statements"])
            assert count == 45
