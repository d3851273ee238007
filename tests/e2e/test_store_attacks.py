"""Attacks on store isolation, on SQLite and PostgreSQL: each test tries one way for a credential
to reach past its store (or past its store's archiving) and names the rule it must not break."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient
from tests.e2e.test_admin_stores import create, issue
from tests.statements import statement


def test_a_district_credential_of_an_archived_store_reads_no_granted_store(
        xapi: XAPIClient) -> None:
    """Archived: its credentials are refused on every route, the granted stores' reads too."""
    for name in ("north", "south"):
        assert create(xapi, name).status_code == 201
    issue(xapi, "south", ["all"]).post(statement())
    district = issue(xapi, "north", ["statements/read"], reads_stores=["south"])
    assert district.get(headers={"X-LRS-Store": "south"}).status_code == 200
    assert xapi.request("POST", "/admin/stores/north/archive").status_code == 200
    assert district.get().status_code == 403  # its own store: refused
    response = district.get(headers={"X-LRS-Store": "south"})
    assert response.status_code == 403, response.text
    assert "archived" in response.json()["error"]["message"]


def test_two_stores_never_share_a_sqlite_database_named_by_a_file_uri(tmp_path: Path) -> None:
    """LRS_EVENT_STORE may name the SQLite database as a URI (sqlite://file:PATH); each store
    must still get a log of its own, or refuse to start (PostgreSQL: a schema each, always)."""
    settings = Settings(data_dir=tmp_path / "data", event_store=f"sqlite://file:{tmp_path}/ev.db",
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}", projections="off")
    try:
        app = create_app(settings)
    except ValueError:
        return  # refused: nothing shared
    with TestClient(app) as client:
        admin = XAPIClient(client)
        assert create(admin, "north").status_code == 201
        north = issue(admin, "north", ["all"])
        (sid,) = admin.post(statement()).json()
        assert north.get(statementId=sid).status_code == 404
        assert north.get().json()["statements"] == []
