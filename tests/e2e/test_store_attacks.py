"""Attacks on store isolation, on SQLite and PostgreSQL: each test tries one way for a credential
to reach past its store (or past its store's archiving) and names the rule it must not break."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient
from tests.e2e.test_admin_stores import create, issue
from tests.e2e.test_dashboard_sessions import sign_in
from tests.statements import VOIDED, statement


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


@pytest.mark.parametrize("name", ["public", "pg-catalog", "information-schema", "lrs-store-north",
                                  "stores", "attachments", "n" * 40])
def test_a_store_named_like_a_schema_or_folder_of_the_deployment_keeps_its_own_data(
        xapi: XAPIClient, name: str) -> None:
    """Schema and folder names are derived from store names: none may land on `default`'s or
    another store's (PostgreSQL: public, the catalogue; SQLite: DATA_DIR/stores, attachments)."""
    for store in (name, "north"):
        assert create(xapi, store).status_code == 201
    named, north = issue(xapi, name, ["all"]), issue(xapi, "north", ["all"])
    ids = {who: client.post(statement()).json()[0]
           for who, client in (("default", xapi), ("named", named), ("north", north))}
    for who, client in (("default", xapi), ("named", named), ("north", north)):
        assert [s["id"] for s in client.get().json()["statements"]] == [ids[who]]


def test_voiding_another_stores_statement_id_leaves_that_store_unvoided(xapi: XAPIClient) -> None:
    for store in ("north", "south"):
        create(xapi, store)
    north, south = issue(xapi, "north", ["all"]), issue(xapi, "south", ["all"])
    (sid,) = south.post(statement()).json()
    assert north.post(statement(verb={"id": VOIDED}, object={
        "objectType": "StatementRef", "id": sid})).status_code == 200
    assert south.get(statementId=sid).status_code == 200
    assert south.get(voidedStatementId=sid).status_code == 404


ROUTES = [("GET", "/xAPI/statements"), ("POST", "/xAPI/statements"),
          ("PUT", "/xAPI/statements"), ("GET", "/xAPI/activities/state"),
          ("PUT", "/xAPI/activities/state"), ("DELETE", "/xAPI/activities/state"),
          ("POST", "/xAPI/activities/profile"), ("GET", "/xAPI/agents/profile"),
          ("GET", "/xAPI/activities"), ("GET", "/xAPI/agents"), ("POST", "/api/sql"),
          ("GET", "/api/classes"), ("HEAD", "/xAPI/statements")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_naming_another_store_in_the_header_is_refused_alike_whether_it_exists_or_not(
        xapi: XAPIClient, method: str, path: str) -> None:
    """X-LRS-Store names another store for a district's statement reads only: a store's own
    credential naming `default`, a real store or a made-up one gets the same 403."""
    for store in ("north", "south"):
        create(xapi, store)
    north = issue(xapi, "north", ["all"])
    answers = []
    for other in ("default", "south", "nowhere"):
        response = north.request(method, path, headers={"X-LRS-Store": other},
                                 json={"sql": "SELECT 1"} if path == "/api/sql" else None)
        answers.append((response.status_code, response.text.replace(other, "<store>")))
    assert answers[0][0] == 403
    assert answers[0] == answers[1] == answers[2]


def test_a_dashboard_session_of_a_store_archived_since_is_signed_out(xapi: XAPIClient) -> None:
    create(xapi, "old")
    response = xapi.request("POST", "/admin/stores/old/credentials",
                            json={"name": "reader", "scopes": ["all"]})
    key, secret = response.json()["key"], response.json()["secret"]
    client = xapi.http
    client.base_url = "https://testserver"  # type: ignore[assignment]  # Secure cookies
    signed = sign_in(client, key, secret)
    assert signed.status_code == 303
    assert client.get("/dashboard/status").status_code != 401
    xapi.request("POST", "/admin/stores/old/archive")
    for path in ("/dashboard/admin", "/dashboard"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/?"), path
    assert client.get("/dashboard/status").status_code == 401
