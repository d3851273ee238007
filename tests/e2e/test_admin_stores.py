"""The administrator's HTTP routes for stores, archived stores, and a district's credential that
reads across the stores it was granted, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import XAPIClient
from tests.e2e.test_dashboard_sessions import sign_in
from tests.statements import statement


def create(admin: XAPIClient, name: str) -> Any:
    return admin.request("POST", "/admin/stores", json={"name": name})


def issue(admin: XAPIClient, store: str, scopes: list[str], **extra: Any) -> XAPIClient:
    response = admin.request("POST", f"/admin/stores/{store}/credentials",
                             json={"name": f"{store} tool", "scopes": scopes, **extra})
    assert response.status_code == 201, response.text
    return admin.as_credential(response.json()["key"], response.json()["secret"])


def test_the_bootstrap_credential_creates_and_lists_stores(xapi: XAPIClient) -> None:
    response = create(xapi, "north-high")
    assert response.status_code == 201
    assert response.json() == {"name": "north-high", "archived": False}
    listed = xapi.request("GET", "/admin/stores").json()["stores"]
    assert listed == [{"name": "default", "archived": False},
                      {"name": "north-high", "archived": False}]


@pytest.mark.parametrize("name", ["North", "a_b", "9lives", "x" * 41, "-a"])
def test_a_store_name_outside_the_rule_is_400_naming_it(xapi: XAPIClient, name: str) -> None:
    response = create(xapi, name)
    assert response.status_code == 400
    assert "1 to 40 characters: a lowercase letter, then lowercase letters, digits and '-'" in (
        response.json()["error"]["message"])


def test_a_store_name_is_given_once(xapi: XAPIClient) -> None:
    assert create(xapi, "north").status_code == 201
    assert create(xapi, "north").status_code == 409


def test_a_credential_issued_in_a_store_writes_and_reads_there(xapi: XAPIClient) -> None:
    create(xapi, "north")
    tool = issue(xapi, "north", ["all"])
    (sid,) = tool.post(statement()).json()
    assert tool.get(statementId=sid).status_code == 200
    assert xapi.get(statementId=sid).status_code == 404  # not in default


def test_credentials_in_a_store_that_does_not_exist_are_404(xapi: XAPIClient) -> None:
    response = xapi.request("POST", "/admin/stores/nowhere/credentials",
                            json={"name": "x", "scopes": ["all"]})
    assert response.status_code == 404


def test_a_credential_without_scope_admin_gets_403_on_every_admin_route(
        xapi: XAPIClient, store_of: Any) -> None:
    everything = xapi.as_credential(*store_of.issue_credential("all", ["all"]))
    for method, path in (("GET", "/admin/stores"), ("POST", "/admin/stores"),
                         ("POST", "/admin/stores/x/archive"), ("POST", "/admin/stores/x/credentials")):
        response = everything.request(method, path, json={"name": "x", "scopes": ["all"]})
        assert response.status_code == 403
        assert "needs scope admin" in response.json()["error"]["message"]


def test_an_archived_stores_credentials_get_403_naming_the_rule(xapi: XAPIClient) -> None:
    create(xapi, "old")
    tool = issue(xapi, "old", ["all"])
    assert tool.post(statement()).status_code == 200
    assert xapi.request("POST", "/admin/stores/old/archive").json() == {
        "name": "old", "archived": True}
    for response in (tool.get(), tool.post(statement())):
        assert response.status_code == 403
        assert "store 'old' is archived" in response.json()["error"]["message"]


def test_an_archived_store_keeps_its_data(xapi: XAPIClient) -> None:
    create(xapi, "old")
    tool = issue(xapi, "old", ["all"])
    (sid,) = tool.post(statement()).json()
    xapi.request("POST", "/admin/stores/old/archive")
    services = xapi.http.app.state.services  # type: ignore[attr-defined]
    kept = services.named("old", archived=True).store
    assert kept.statement(sid)[0]["id"] == sid


def test_an_archived_stores_credential_cannot_sign_in_to_the_dashboard(xapi: XAPIClient) -> None:
    create(xapi, "old")
    response = xapi.request("POST", "/admin/stores/old/credentials",
                            json={"name": "reader", "scopes": ["all/read"]})
    key, secret = response.json()["key"], response.json()["secret"]
    xapi.request("POST", "/admin/stores/old/archive")
    client = xapi.http
    client.base_url = "https://testserver"  # type: ignore[assignment]  # Secure cookies
    signed = sign_in(client, key, secret)
    assert signed.status_code == 403
    assert "store &#39;old&#39; is archived" in signed.text


def test_the_default_store_cannot_be_archived(xapi: XAPIClient) -> None:
    assert xapi.request("POST", "/admin/stores/default/archive").status_code == 400


def test_only_an_administrator_gives_scope_admin(xapi: XAPIClient) -> None:
    create(xapi, "north")
    response = xapi.request("POST", "/admin/stores/north/credentials",
                            json={"name": "boss", "scopes": ["admin"]})
    assert response.status_code == 400
    assert "only credentials of store 'default'" in response.json()["error"]["message"]


# --- a district's credential ------------------------------------------------------------------


def test_a_district_credential_reads_the_statements_of_the_stores_it_was_granted(
        xapi: XAPIClient) -> None:
    for name in ("north", "south", "east"):
        create(xapi, name)
    ids = {name: issue(xapi, name, ["all"]).post(statement()).json()[0]
           for name in ("north", "south", "east")}
    district = issue(xapi, "default", ["statements/read"], reads_stores=["north", "south"])
    for name in ("north", "south"):
        page = district.get(headers={"X-LRS-Store": name}).json()["statements"]
        assert [s["id"] for s in page] == [ids[name]]
    assert district.get().json()["statements"] == []  # its own store: default, empty


def test_a_district_credential_is_refused_a_store_it_was_not_granted_as_one_that_does_not_exist(
        xapi: XAPIClient) -> None:
    create(xapi, "east")
    district = issue(xapi, "default", ["statements/read"])
    answers = [district.get(headers={"X-LRS-Store": name}) for name in ("east", "nowhere")]
    assert [a.status_code for a in answers] == [403, 403]
    messages = [a.json()["error"]["message"].replace(name, "<store>")
                for a, name in zip(answers, ("east", "nowhere"), strict=True)]
    assert messages[0] == messages[1]


def test_a_district_credential_only_reads_statements_in_another_store(xapi: XAPIClient) -> None:
    create(xapi, "north")
    district = issue(xapi, "default", ["all"], reads_stores=["north"])
    headers = {"X-LRS-Store": "north"}
    assert district.post(statement(), headers=headers).status_code == 403
    response = district.request("GET", "/xAPI/activities/state", headers=headers, params={
        "activityId": "https://example.org/a", "agent": '{"mbox": "mailto:a@example.org"}'})
    assert response.status_code == 403
    assert district.request("POST", "/api/sql", headers=headers,
                            json={"sql": "SELECT 1"}).status_code == 403


def test_a_store_credential_cannot_name_another_store(xapi: XAPIClient) -> None:
    create(xapi, "north")
    create(xapi, "south")
    (sid,) = issue(xapi, "south", ["all"]).post(statement()).json()
    north = issue(xapi, "north", ["all"])
    response = north.get(statementId=sid, headers={"X-LRS-Store": "south"})
    assert response.status_code == 403
    assert sid not in response.text


def test_a_stores_services_open_on_its_first_request(xapi: XAPIClient) -> None:
    """`make run` starts the `default` store's alone; another store's log, committer and views
    wait for a request of one of its credentials."""
    services = xapi.http.app.state.services  # type: ignore[attr-defined]
    create(xapi, "north")
    tool = issue(xapi, "north", ["all"])
    assert not services.is_open("north")
    assert tool.get().status_code == 200
    assert services.is_open("north")
    assert [s.name for s in services.opened()] == ["default", "north"]


def test_an_open_active_stores_requests_resolve_it_without_a_read_or_a_thread(
        xapi: XAPIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Known active (within the catalogue's TTL) and open: the request's loop hands out the
    store's services itself; only the first request reads the catalogue and opens them."""
    services = xapi.http.app.state.services  # type: ignore[attr-defined]
    for name in ("north", "south"):
        create(xapi, name)
    tool = issue(xapi, "north", ["all"])
    (sid,) = issue(xapi, "south", ["all"]).post(statement()).json()
    district = issue(xapi, "north", ["statements/read"], reads_stores=["south"])
    assert tool.post(statement()).status_code == 200
    assert district.get(headers={"X-LRS-Store": "south"}).status_code == 200

    def no_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the catalogue was read, or the services looked up in a thread")

    for name in ("of", "named", "require_active"):
        monkeypatch.setattr(services, name, no_read)
    monkeypatch.setattr(services.store, "store_info", no_read)
    assert tool.post(statement()).status_code == 200
    page = district.get(headers={"X-LRS-Store": "south"}).json()["statements"]
    assert [s["id"] for s in page] == [sid]


def test_a_district_credential_is_refused_a_granted_store_once_it_is_archived(
        xapi: XAPIClient) -> None:
    create(xapi, "south")
    issue(xapi, "south", ["all"]).post(statement())
    district = issue(xapi, "default", ["statements/read"], reads_stores=["south"])
    assert district.get(headers={"X-LRS-Store": "south"}).status_code == 200
    xapi.request("POST", "/admin/stores/south/archive")
    response = district.get(headers={"X-LRS-Store": "south"})
    assert response.status_code == 403
    assert "store 'south' is archived" in response.json()["error"]["message"]
