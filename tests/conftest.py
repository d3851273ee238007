"""Fixtures: every HTTP test runs against the real app on SQLite and on PostgreSQL.

PostgreSQL is chosen in this order: LRS_TEST_POSTGRES (a URL), the local server on
127.0.0.1:5432, then testcontainers. Under CI=true a missing server fails the run.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.application import LearningRecordStore
from lrs.config import Settings

ADMIN_KEY, ADMIN_SECRET = "admin", "admin-secret"


def _local_postgres() -> str | None:
    url = os.environ.get("LRS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url
    except psycopg.OperationalError:
        return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    url = _local_postgres()
    if url is not None:
        yield url
        return
    try:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as container:
            yield container.get_connection_url()
            return
    except Exception as exc:  # no Docker either
        message = f"no PostgreSQL server available: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of the suite's own, dropped at the end."""
    name = f"lrs_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # Stores other than `default` are schemas of their own (lrs/config.py).
        for (schema,) in conn.execute("SELECT nspname FROM pg_namespace"
                                      " WHERE nspname LIKE 'lrs\\_store\\_%'").fetchall():
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY")


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return store_settings(request, tmp_path)


def store_settings(request: pytest.FixtureRequest, folder: Path) -> Settings:
    """The suite's settings on the event store ``request.param`` names, PostgreSQL's emptied."""
    event_store = None
    if request.param == "postgresql":
        event_store = request.getfixturevalue("postgres_database")
        _empty_postgres(event_store)
    return Settings(data_dir=folder / "data", event_store=event_store,
                    bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}",
                    max_body_bytes=200_000, max_batch_statements=50, max_page_statements=20,
                    max_attachment_bytes=100_000, max_request_bytes=300_000,
                    projections="off")


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


class XAPIClient:
    """A TestClient that sends the xAPI headers unless a test overrides them."""

    def __init__(self, client: TestClient, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET,
                 version: str = "1.0.3") -> None:
        self.http = client
        self.headers = {"Authorization": basic(key, secret), "X-Experience-API-Version": version}

    def as_credential(self, key: str, secret: str) -> XAPIClient:
        return XAPIClient(self.http, key, secret, self.headers["X-Experience-API-Version"])

    def speaking(self, version: str) -> XAPIClient:
        clone = XAPIClient(self.http)
        clone.headers = {**self.headers, "X-Experience-API-Version": version}
        return clone

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        headers = {k: v for k, v in headers.items() if v is not None}
        return self.http.request(method, path, headers=headers, **kwargs)

    def post(self, statements: Any, **kwargs: Any) -> Any:
        return self.request("POST", "/xAPI/statements", json=statements, **kwargs)

    def put(self, statement: Any, statement_id: str, **kwargs: Any) -> Any:
        return self.request("PUT", "/xAPI/statements", json=statement,
                            params={"statementId": statement_id}, **kwargs)

    def get(self, **params: Any) -> Any:
        headers = params.pop("headers", {})
        return self.request("GET", "/xAPI/statements", params=params, headers=headers)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[LearningRecordStore]:
    """An application on an embedded store, for tests whose subject is not the event store."""
    app = LearningRecordStore(env=Settings(data_dir=tmp_path).event_store_env())
    yield app
    app.close()


@pytest.fixture
def store(settings: Settings) -> Iterator[LearningRecordStore]:
    """An application on the store ``settings`` names: SQLite, then PostgreSQL."""
    app = LearningRecordStore(env=settings.event_store_env())
    yield app
    app.close()


@pytest.fixture
def server(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def xapi(server: TestClient) -> XAPIClient:
    return XAPIClient(server)


@pytest.fixture
def store_of(server: TestClient) -> Any:
    return server.app.state.services.store  # type: ignore[attr-defined]
