"""Attacks on store isolation, on SQLite and PostgreSQL: each test tries one way for a credential
to reach past its store (or past its store's archiving) and names the rule it must not break."""

from __future__ import annotations

from tests.conftest import XAPIClient
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
