"""What answers without a credential, and what it shows.

The decision pinned here: /xAPI/about (the spec says so), /api/health, /openapi.json and /docs
answer anyone. The API description is public, as the source is, and names no credential and
no path. Health shows the status and the projections' lag and slots: numbers, never a file, a
dependency's version or a credential. /redoc is not served (one viewer is enough). Everything
else needs a credential.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET


def test_the_openapi_document_is_public_and_declares_basic_auth(server: TestClient) -> None:
    response = server.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["components"]["securitySchemes"]["basic"]["scheme"] == "basic"


def test_the_openapi_document_names_no_credential_and_no_path(server: TestClient,
                                                             settings: Settings) -> None:
    text = server.get("/openapi.json").text
    assert ADMIN_SECRET not in text
    assert f'"{ADMIN_KEY}' not in text
    assert str(settings.data_dir) not in text


def test_the_docs_page_is_public(server: TestClient) -> None:
    response = server.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_redoc_is_not_served(server: TestClient) -> None:
    assert server.get("/redoc").status_code == 404


def test_health_without_projections_shows_the_status_alone(server: TestClient) -> None:
    assert server.get("/api/health").json() == {"status": "ok", "projections": {"mode": "off"}}


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", projections="embedded",
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}")
    with TestClient(create_app(settings)) as client:
        yield client


def test_health_with_projections_shows_numbers_and_states_only(embedded: TestClient,
                                                              tmp_path: Path) -> None:
    health = embedded.get("/api/health").json()
    assert set(health) == {"status", "projections"}
    for name, value in health["projections"].items():
        if isinstance(value, str):  # the mode and the state: one word each
            assert name in {"mode", "state"} and value.isalpha(), (name, value)
            continue
        numbers = value.values() if isinstance(value, dict) else [value]
        assert all(n is None or isinstance(n, int | float) for n in numbers), (name, value)
    text = json.dumps(health)
    assert str(tmp_path) not in text and ADMIN_KEY not in text and "version" not in text


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/xAPI/statements"),
    ("GET", "/xAPI/activities?activityId=https://example.org/a"),
    ("GET", '/xAPI/agents?agent={"mbox":"mailto:ada@example.org"}'),
    ("GET", '/xAPI/activities/state?activityId=https://example.org/a'
            '&agent={"mbox":"mailto:ada@example.org"}&stateId=s'),
    ("GET", "/api/learners/mbox:mailto:ada@example.org/profile"),
    ("POST", "/api/sql"),
])
def test_everything_else_needs_a_credential(server: TestClient, method: str, path: str) -> None:
    response = server.request(method, path, headers={"X-Experience-API-Version": "1.0.3"})
    assert response.status_code == 401
