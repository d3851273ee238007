"""When the event store cannot be reached, a request is answered 503 with Retry-After: the client
may send it again. A 500 said the LRS had failed on that request, and clients do not retry it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, basic

HEADERS = {"Authorization": basic(ADMIN_KEY, ADMIN_SECRET), "X-Experience-API-Version": "1.0.3"}
STATE = {"activityId": "http://example.org/activity/1", "stateId": "bookmark",
         "agent": json.dumps({"mbox": "mailto:ada@example.org"})}


@contextmanager
def unreachable(url: str) -> Iterator[None]:
    """The database refuses new connections and drops every open one, as a server restarting."""
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = %s AND pid <> pg_backend_pid()", [name])
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_a_request_the_event_store_cannot_answer_is_503_with_retry_after(
        postgres_database: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", event_store=postgres_database,
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}", projections="off")
    with TestClient(create_app(settings)) as http:
        assert http.put("/xAPI/activities/state", params=STATE, headers=HEADERS,
                        json={"page": 1}).status_code == 204
        # The suite's database may hold other tests' statements: those must be all it holds after.
        listed = http.get("/xAPI/statements", headers=HEADERS)  # the credential is remembered
        assert listed.status_code == 200
        with unreachable(postgres_database):
            for method, body in (("GET", None), ("PUT", {"page": 2})):
                answer = http.request(method, "/xAPI/activities/state", params=STATE,
                                      headers=HEADERS, json=body)
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"] == "1"
                assert "event store is unavailable" in answer.json()["error"]["message"]
            posted = http.post("/xAPI/statements", headers=HEADERS, json={
                "actor": {"mbox": "mailto:ada@example.org"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                "object": {"id": "http://example.org/activity/1"}})
            assert posted.status_code == 503, posted.text
        # The store is back: the refused write was not stored, and the same request succeeds.
        assert http.get("/xAPI/activities/state", params=STATE,
                        headers=HEADERS).json() == {"page": 1}
        assert http.put("/xAPI/activities/state", params=STATE, headers=HEADERS,
                        json={"page": 2}).status_code == 204
        after = http.get("/xAPI/statements", headers=HEADERS).json()["statements"]
        assert after == listed.json()["statements"]


def test_a_write_that_cannot_take_the_sqlite_writers_turn_is_503_with_retry_after(
        tmp_path: Path) -> None:
    """Another process (a Kafka ingester, a CLI) holds the store's write lock past the lock
    timeout: SQLite's "database is locked", which the same request sent later gets past."""
    import fcntl

    settings = Settings(data_dir=tmp_path / "data", projections="off",
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}")
    with TestClient(create_app(settings)) as http:
        store = http.app.state.services.store  # type: ignore[attr-defined]
        store.recorder._turn.timeout = 0.3  # the lock timeout is 30 s; the rule is the same
        assert http.put("/xAPI/activities/state", params=STATE, headers=HEADERS,
                        json={"page": 1}).status_code == 204
        lock_file = Path(f"{store.recorder.datastore.pool.db_name}.write-lock")
        with lock_file.open("a+b") as other_process:
            fcntl.flock(other_process.fileno(), fcntl.LOCK_EX)
            answer = http.put("/xAPI/activities/state", params=STATE, headers=HEADERS,
                              json={"page": 2})
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "1"
            posted = http.post("/xAPI/statements", headers=HEADERS, json={
                "actor": {"mbox": "mailto:ada@example.org"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                "object": {"id": "http://example.org/activity/1"}})
            assert posted.status_code == 503, posted.text
            fcntl.flock(other_process.fileno(), fcntl.LOCK_UN)
        assert http.get("/xAPI/activities/state", params=STATE,
                        headers=HEADERS).json() == {"page": 1}
        assert http.get("/xAPI/statements", headers=HEADERS).json()["statements"] == []
        assert http.put("/xAPI/activities/state", params=STATE, headers=HEADERS,
                        json={"page": 2}).status_code == 204
