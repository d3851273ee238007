"""Stores: a credential of one store reaches nothing of another's, by any route, on SQLite and
PostgreSQL. Each route is asked by store north's credential (scope all: the most it may do) about
store south's data, and asked the same about something that never existed: the two answers must
be the same, so a refusal tells nothing either."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.attachments import declared, multipart, sha256
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient, _empty_postgres
from tests.school import CLASS_A, key_of, school_statements
from tests.statements import VOIDED, statement, with_id

SOUTH_ESSAY = b"South High: Ada's private essay.\n" * 10
NEVER_ESSAY = b"an essay nobody ever sent\n" * 10
SOUTH_ACTIVITY = "https://south.example.org/activities/only-south"
NEVER_ACTIVITY = "https://never.example.org/activities/never"
ADA = json.dumps({"mbox": "mailto:ada@example.org"})
NOBODY = json.dumps({"mbox": "mailto:nobody-ever@example.org"})
TOKEN = re.compile(r'name="csrf" value="([^"]+)"')
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NORMA = {"mbox": "mailto:norma@north.example.org"}


def north_statement(**overrides: Any) -> dict[str, Any]:
    """North's own learner: nothing north writes may name south's."""
    return statement(actor=NORMA, **overrides)


@dataclass
class Deployment:
    client: TestClient
    admin: XAPIClient
    north: XAPIClient  # scope all, in store north
    north_writer: XAPIClient  # statements/write only, in store north
    south: XAPIClient  # scope all, in store south
    keys: dict[str, tuple[str, str]]
    south_id: str  # a statement of south's
    south_voided: str  # a statement south voided
    south_more: str  # a `more` link south was given


def issue(admin: XAPIClient, store: str, name: str, scopes: list[str]) -> tuple[str, str]:
    response = admin.request("POST", f"/admin/stores/{store}/credentials",
                             json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["key"], body["secret"]


def wait_for_store_views(client: TestClient, store: str) -> None:
    services = client.app.state.services.named(store)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while True:
        lag = services.views.health(services.store)
        if lag.get("events_behind") == 0 and lag.get("learners_to_refresh") == 0:
            return
        assert time.monotonic() < deadline, f"store {store}'s views did not catch up"
        time.sleep(0.05)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    event_store = None
    if request.param == "postgresql":
        event_store = request.getfixturevalue("postgres_database")
        _empty_postgres(event_store)
    settings = Settings(data_dir=tmp_path_factory.mktemp("stores"), event_store=event_store,
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}", projections="embedded",
                        max_page_statements=20)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        admin = XAPIClient(client)
        for name in ("north", "south"):
            assert admin.request("POST", "/admin/stores", json={"name": name}).status_code == 201
        keys = {"north": issue(admin, "north", "North", ["all"]),
                "north-writer": issue(admin, "north", "North tool", ["statements/write"]),
                "south": issue(admin, "south", "South", ["all"])}
        north, south = admin.as_credential(*keys["north"]), admin.as_credential(*keys["south"])
        # South: a school's statements, one voided, an attachment, documents, a definition.
        assert south.post(school_statements()).status_code == 200
        (south_id,) = south.post(statement(object={"id": SOUTH_ACTIVITY, "definition": {
            "name": {"en-US": "South's secret unit"}}})).json()
        (voided,) = south.post(statement()).json()
        assert south.post(statement(verb={"id": VOIDED}, object={
            "objectType": "StatementRef", "id": voided})).status_code == 200
        doc = with_id(statement(attachments=[declared(SOUTH_ESSAY)]))
        body, content_type = multipart(doc, (SOUTH_ESSAY, "text/plain"))
        assert south.request("POST", "/xAPI/statements", content=body,
                             headers={"Content-Type": content_type}).status_code == 200
        for path, params in documents(ADA, SOUTH_ACTIVITY):
            assert south.request("PUT", path, params=params, content=b'{"south": "secret"}',
                                 headers={"Content-Type": "application/json",
                                          "If-None-Match": "*"}).status_code == 204
        more = south.get(limit=1).json()["more"]
        # North: one statement of its own, so its views exist.
        assert north.post(north_statement()).status_code == 200
        wait_for_store_views(client, "south")
        wait_for_store_views(client, "north")
        yield Deployment(client, admin, north, admin.as_credential(*keys["north-writer"]), south,
                         keys, south_id, voided, more)


def documents(agent: str, activity: str) -> list[tuple[str, dict[str, str]]]:
    return [("/xAPI/activities/state", {"activityId": activity, "agent": agent, "stateId": "s"}),
            ("/xAPI/activities/profile", {"activityId": activity, "profileId": "p"}),
            ("/xAPI/agents/profile", {"agent": agent, "profileId": "p"})]


# --- every route: south's data answered exactly as what never existed -------------------------

Ask = Callable[[Deployment, dict[str, str]], Any]
NEVER_ID = "9b7d0a1e-0000-4000-8000-000000000000"
NEVER_VOIDED = "9b7d0a1e-0000-4000-8000-000000000001"


def south_values(d: Deployment) -> dict[str, str]:
    return {"id": d.south_id, "voided": d.south_voided, "agent": ADA, "activity": SOUTH_ACTIVITY,
            "learner": key_of("ada"), "class": CLASS_A, "name": "Ada", "hash": sha256(SOUTH_ESSAY),
            "essay": SOUTH_ESSAY.decode(), "mbox": "mailto:ada@example.org"}


def never_values() -> dict[str, str]:
    return {"id": NEVER_ID, "voided": NEVER_VOIDED, "agent": NOBODY, "activity": NEVER_ACTIVITY,
            "learner": "mbox:mailto:nobody-ever@example.org", "class": "team:Never",
            "name": "Nobody", "hash": sha256(NEVER_ESSAY), "essay": NEVER_ESSAY.decode(),
            "mbox": "mailto:nobody-ever@example.org"}


def _doc_get(index: int, listing: bool = False) -> Ask:
    def ask(d: Deployment, v: dict[str, str]) -> Any:
        path, params = documents(v["agent"], v["activity"])[index]
        if listing:
            params = {k: val for k, val in params.items() if k not in ("stateId", "profileId")}
        return d.north.request("GET", path, params=params)
    return ask


def _sql(d: Deployment, v: dict[str, str]) -> Any:
    sql = ("SELECT count(*) AS n FROM statement_facts WHERE statement_id = '" + v["id"] + "'"
           " OR learner = '" + v["learner"] + "'")
    return d.north.request("POST", "/api/sql", json={"sql": sql})


def _attachment_by_hash(d: Deployment, v: dict[str, str]) -> Any:
    """Declare the hash with a fileUrl (no part sent) and ask for statements with attachments:
    only bodies this store holds and this statement sent may come back."""
    content = v["essay"].encode()
    doc = with_id(north_statement(
        attachments=[{**declared(content), "fileUrl": "https://x.example/f"}]))
    assert d.north.post(doc).status_code == 200
    response = d.north.get(statementId=doc["id"], attachments="true")
    return response.status_code, content in response.content


def _attachment_part_missing(d: Deployment, v: dict[str, str]) -> Any:
    """Declare the hash without a fileUrl and send no part: a store that held the body elsewhere
    must still want the part."""
    doc = north_statement(attachments=[declared(v["essay"].encode())])
    response = d.north.post(doc)
    return response.status_code, response.json()["error"]["message"].replace(v["hash"], "HASH")


def _void(d: Deployment, v: dict[str, str]) -> Any:
    response = d.north_writer.post(north_statement(verb={"id": VOIDED}, object={
        "objectType": "StatementRef", "id": v["id"]}))
    # The voiding statement's own id is new each time.
    return response.status_code, UUID.sub("<new>", response.text.replace(v["id"], "<id>"))


ROUTES: dict[str, Ask] = {
    "GET statement by id": lambda d, v: d.north.get(statementId=v["id"]),
    "GET voided statement by id": lambda d, v: d.north.get(voidedStatementId=v["voided"]),
    "GET statements by agent": lambda d, v: d.north.get(agent=v["agent"]),
    "GET statements by activity": lambda d, v: d.north.get(activity=v["activity"]),
    "HEAD statement by id": lambda d, v: d.north.request("HEAD", "/xAPI/statements",
                                                         params={"statementId": v["id"]}),
    "void another store's statement": _void,
    "GET state": _doc_get(0),
    "GET state ids": _doc_get(0, listing=True),
    "GET activity profile": _doc_get(1),
    "GET activity profile ids": _doc_get(1, listing=True),
    "GET agent profile": _doc_get(2),
    "GET agent profile ids": _doc_get(2, listing=True),
    "GET /xAPI/activities": lambda d, v: d.north.request("GET", "/xAPI/activities",
                                                         params={"activityId": v["activity"]}),
    "GET /xAPI/agents": lambda d, v: d.north.request("GET", "/xAPI/agents",
                                                     params={"agent": v["agent"]}),
    "attachment by hash with a fileUrl": _attachment_by_hash,
    "attachment by hash without its part": _attachment_part_missing,
    "GET /api learner profile": lambda d, v: d.north.request(
        "GET", f"/api/learners/{quote(v['learner'], safe='')}/profile"),
    "GET /api learner mastery": lambda d, v: d.north.request(
        "GET", f"/api/learners/{quote(v['learner'], safe='')}/mastery"),
    "GET /api learner engagement": lambda d, v: d.north.request(
        "GET", f"/api/learners/{quote(v['learner'], safe='')}/engagement"),
    "GET /api class engagement": lambda d, v: d.north.request(
        "GET", f"/api/classes/{quote(v['class'], safe='')}/engagement"),
    "GET /api class mastery": lambda d, v: d.north.request(
        "GET", f"/api/classes/{quote(v['class'], safe='')}/mastery"),
    "GET /api class learners": lambda d, v: d.north.request(
        "GET", f"/api/classes/{quote(v['class'], safe='')}/learners"),
    "GET /api learner search": lambda d, v: d.north.request("GET", "/api/learners",
                                                            params={"q": v["name"]}),
    "POST /api/sql": _sql,
}


def _comparable(answer: Any, values: dict[str, str]) -> Any:
    """An answer with the asked-for values taken out, so south's and never's compare."""
    if isinstance(answer, tuple):
        return answer
    text = answer.text
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(value, f"<{name}>").replace(quote(value, safe=""), f"<{name}>")
    return answer.status_code, text


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_another_stores_data_is_answered_as_never_existing(deployment: Deployment,
                                                           route: str) -> None:
    south, never = south_values(deployment), never_values()
    asked = _comparable(ROUTES[route](deployment, south), south)
    control = _comparable(ROUTES[route](deployment, never), never)
    assert asked == control
    if not isinstance(asked, tuple):  # nothing of south's in the answer, under any name
        for secret in ("Ada", "ada@example.org", deployment.south_id, "South's secret unit",
                       "south", "7A"):
            assert secret not in asked[1] or secret in json.dumps(never), (route, secret)


def test_a_statement_list_holds_only_the_stores_own(deployment: Deployment) -> None:
    ids = {s["id"] for s in deployment.north.get(limit=0).json()["statements"]}
    south_ids = {s["id"] for s in deployment.south.get(limit=0).json()["statements"]}
    assert ids and south_ids and not ids & south_ids


def test_the_sql_views_hold_only_the_stores_own(deployment: Deployment) -> None:
    rows = deployment.north.request("POST", "/api/sql", json={
        "sql": "SELECT DISTINCT learner FROM statement_facts"}).json()["rows"]
    assert [r[0] for r in rows] == ["mbox:mailto:norma@north.example.org"]


def test_the_class_list_holds_only_the_stores_own(deployment: Deployment) -> None:
    assert deployment.north.request("GET", "/api/classes").json() == {"classes": []}
    assert deployment.south.request("GET", "/api/classes").json()["classes"]


def test_another_stores_more_link_is_refused(deployment: Deployment) -> None:
    response = deployment.north.request("GET", deployment.south_more)
    assert response.status_code == 400
    assert "statements" not in response.json()


def test_a_more_link_sealed_with_another_stores_key_is_refused(deployment: Deployment) -> None:
    """Even made out for north's own credential, a link sealed under south's key fails in north:
    each store's links have a key of their own."""
    services = deployment.client.app.state.services  # type: ignore[attr-defined]
    south_links = services.named("south").more_links
    north_key = deployment.keys["north"][0]
    # Two statements of north's own, so a page of one has a `more` link whichever tests of
    # this module ran before (with several test processes, maybe none).
    assert deployment.north.post([north_statement(), north_statement()]).status_code == 200
    own_page = deployment.north.get(limit=1).json()["more"]
    wanted = services.named("north").more_links.read(own_page.split("more=")[1], north_key)
    forged = south_links.issue(wanted, 10**9, 10**9, north_key)
    response = deployment.north.get(more=forged)
    assert response.status_code == 400


def test_the_same_statement_id_is_accepted_in_two_stores(deployment: Deployment) -> None:
    sid = str(uuid.uuid4())
    assert deployment.north.put(north_statement(), sid).status_code == 204
    other = statement(actor={"mbox": "mailto:someone-else@example.org"})
    assert deployment.south.put(other, sid).status_code == 204
    assert deployment.north.get(statementId=sid).json()["actor"]["mbox"] == NORMA["mbox"]
    assert deployment.south.get(statementId=sid).json()["actor"]["mbox"] == (
        "mailto:someone-else@example.org")


def test_a_document_written_in_one_store_is_not_overwritten_by_another(
        deployment: Deployment) -> None:
    path, params = documents(ADA, SOUTH_ACTIVITY)[0]
    assert deployment.north.request("PUT", path, params=params, content=b'{"north": 1}',
                                    headers={"Content-Type": "application/json"}).status_code == 204
    assert deployment.south.request("GET", path, params=params).json() == {"south": "secret"}
    assert deployment.north.request("GET", path, params=params).json() == {"north": 1}
    deployment.north.request("DELETE", path, params=params)


def test_a_store_credential_cannot_use_the_admin_routes(deployment: Deployment) -> None:
    for method, path, body in (("GET", "/admin/stores", None),
                               ("POST", "/admin/stores", {"name": "mine"}),
                               ("POST", "/admin/stores/south/archive", None),
                               ("POST", "/admin/stores/south/credentials",
                                {"name": "x", "scopes": ["all"]})):
        response = deployment.north.request(method, path, json=body)
        assert response.status_code == 403, (method, path)
        assert "scope admin" in response.json()["error"]["message"]


# --- the dashboard ----------------------------------------------------------------------------


def _sign_in(client: TestClient, key: str, secret: str) -> None:
    client.cookies.clear()
    token = TOKEN.search(client.get("/").text)
    assert token is not None
    response = client.post("/sign-in", data={"key": key, "secret": secret,
                                             "csrf": token.group(1), "next": ""},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


@pytest.mark.parametrize("kind", ["learners", "classes"])
def test_the_dashboard_answers_another_stores_pages_as_never_existing(
        deployment: Deployment, kind: str) -> None:
    client = deployment.client
    _sign_in(client, *deployment.keys["north"])
    field = "learner" if kind == "learners" else "class"
    try:
        answers = []
        for values in (south_values(deployment), never_values()):
            response = client.get(f"/dashboard/{kind}/{quote(values[field], safe='')}")
            answers.append((response.status_code,
                            response.text.replace(values[field], "<x>").replace(
                                quote(values[field], safe=""), "<x>")))
        assert answers[0] == answers[1]
    finally:
        client.cookies.clear()


def test_the_dashboards_admin_page_lists_and_revokes_only_its_stores_credentials(
        deployment: Deployment) -> None:
    client = deployment.client
    _sign_in(client, *deployment.keys["north"])
    try:
        page = client.get("/dashboard/admin").text
        assert deployment.keys["north"][0] in page
        assert deployment.keys["south"][0] not in page
        assert f"<code>{ADMIN_KEY}</code>" not in page
        token = TOKEN.search(page)
        assert token is not None
        response = client.post("/dashboard/admin/credentials/revoke",
                               data={"key": deployment.keys["south"][0], "csrf": token.group(1)},
                               headers={"Origin": "https://testserver"})
        assert f"no credential with key &#39;{deployment.keys['south'][0]}&#39;" in response.text
        assert deployment.south.get(limit=1).status_code == 200
    finally:
        client.cookies.clear()
