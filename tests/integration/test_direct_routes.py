"""Statements and documents are answered by their endpoints called directly (lrs/api/direct.py):
the same functions, dependencies, errors and documentation as through FastAPI's router."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.responses import Response

from lrs.api.direct import DirectRoutes, direct_arguments, direct_routes
from lrs.api.errors import install_error_handlers
from lrs.api.main import XAPI_PREFIX, create_app
from lrs.api.routers import documents, statements
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient

STATE = {"activityId": "https://courses.example.org/a/1", "stateId": "bookmark",
         "agent": '{"mbox": "mailto:pupil@example.org"}'}


def _statement() -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"mbox": "mailto:pupil@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": "https://courses.example.org/a/1"}}


@pytest.fixture
def xapi(tmp_path: Path) -> Iterator[XAPIClient]:
    settings = Settings(data_dir=tmp_path, bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}",
                        projections="off")
    with TestClient(create_app(settings)) as client:
        yield XAPIClient(client)


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI's router handed to a route."""
    seen: list[str] = []
    handle = APIRoute.handle

    async def counted(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await handle(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", counted)
    return seen


def test_statements_and_documents_are_answered_without_fastapis_router(
        xapi: XAPIClient, routed: list[str]) -> None:
    statement = _statement()
    assert xapi.post([statement]).status_code == 200
    assert xapi.request("GET", "/xAPI/statements",
                        params={"statementId": statement["id"]}).json()["id"] == statement["id"]
    assert xapi.request("PUT", "/xAPI/activities/state", params=STATE,
                        json={"page": 3}).status_code == 204
    assert xapi.request("GET", "/xAPI/activities/state", params=STATE).json() == {"page": 3}
    assert routed == []
    assert xapi.request("GET", "/xAPI/about").status_code == 200  # any other route: the router
    assert routed == ["/xAPI/about"]


def test_a_path_not_exactly_one_of_them_is_left_to_the_router(xapi: XAPIClient) -> None:
    """A trailing slash gets the router's redirect to the resource, as it did before."""
    for method, path, kwargs in (("POST", "/xAPI/statements/", {"json": [_statement()]}),
                                 ("GET", "/xAPI/activities/state/", {"params": STATE})):
        answer = xapi.request(method, path, follow_redirects=False, **kwargs)
        assert answer.status_code == 307
        assert answer.headers["location"].split("?")[0].endswith(path.rstrip("/"))


def test_every_directly_answered_route_is_still_in_the_openapi_document(xapi: XAPIClient) -> None:
    paths = xapi.http.get("/openapi.json").json()["paths"]
    table = direct_routes([(XAPI_PREFIX, statements.router), (XAPI_PREFIX, documents.router)])
    assert ("POST", "/xAPI/statements") in table and ("PUT", "/xAPI/activities/state") in table
    for method, path in table:
        assert method.lower() in paths[path], (method, path)


def test_a_request_without_credentials_is_refused_with_401_as_on_any_route(
        xapi: XAPIClient) -> None:
    answer = xapi.request("POST", "/xAPI/statements", json=[_statement()],
                          headers={"Authorization": None})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="xAPI"'
    assert answer.headers["X-Experience-API-Version"] == "1.0.3"
    assert "Basic" in answer.json()["error"]["message"]


def test_an_invalid_statement_is_refused_with_400_naming_the_field(xapi: XAPIClient) -> None:
    broken = {**_statement(), "verb": {"id": "not an IRI"}}
    answer = xapi.post([broken])
    assert answer.status_code == 400
    assert "verb" in answer.json()["error"]["message"]
    assert "X-Experience-API-Consistent-Through" in answer.headers


def test_an_unknown_parameter_is_refused_with_400_naming_it(xapi: XAPIClient) -> None:
    answer = xapi.request("PUT", "/xAPI/activities/state", params={**STATE, "colour": "red"},
                          json={"page": 3})
    assert answer.status_code == 400
    assert "colour" in answer.json()["error"]["message"]


async def _needs_request(request: Request) -> str:
    return request.method


async def _needs_more(value: Annotated[str, Depends(_needs_request)]) -> str:
    return value


def test_an_endpoint_taking_more_than_the_request_and_its_dependencies_is_left_to_fastapi(
) -> None:
    async def plain(request: Request, method: Annotated[str, Depends(_needs_request)]) -> Any:
        return None

    async def with_query(request: Request, limit: int = 10) -> Any:
        return None

    async def nested(value: Annotated[str, Depends(_needs_more)]) -> Any:
        return None

    assert [name for name, _ in direct_arguments(plain) or []] == ["request", "method"]
    assert direct_arguments(with_query) is None
    assert direct_arguments(nested) is None


def test_an_endpoint_that_returns_no_response_fails_as_a_500_json_error() -> None:
    router = APIRouter()

    @router.get("/odd")
    async def odd(request: Request) -> Any:
        return {"not": "a response"}

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(DirectRoutes, routes=direct_routes([("", router)]),
                       exception_handlers=app.exception_handlers)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/odd")
    assert answer.status_code == 500
    assert "failed to handle this request" in answer.json()["error"]["message"]


async def _admins_only(request: Request) -> None:
    if request.headers.get("x-admin") != "yes":
        raise HTTPException(403, "admins only")


async def _who(request: Request) -> str:
    return "real"


def _answered(router: APIRouter, path: str, overrides: dict[Any, Any] | None = None) -> Any:
    """``router`` in an app with DirectRoutes, as create_app assembles one."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.dependency_overrides.update(overrides or {})
    app.add_middleware(DirectRoutes, routes=direct_routes([("", router)]),
                       exception_handlers=app.exception_handlers,
                       dependency_overrides=app.dependency_overrides)
    with TestClient(app, raise_server_exceptions=False) as client:
        return client.get(path)


def test_a_guard_declared_on_the_route_is_never_skipped() -> None:
    router = APIRouter()

    @router.get("/guarded", dependencies=[Depends(_admins_only)])
    async def guarded(request: Request) -> Response:
        return Response("secret")

    assert direct_routes([("", router)]) == {}
    assert _answered(router, "/guarded").status_code == 403


def test_a_guard_declared_on_the_router_is_never_skipped() -> None:
    router = APIRouter(dependencies=[Depends(_admins_only)])

    @router.get("/guarded")
    async def guarded(request: Request) -> Response:
        return Response("secret")

    assert direct_routes([("", router)]) == {}
    assert _answered(router, "/guarded").status_code == 403


def test_a_dependency_override_is_honoured() -> None:
    router = APIRouter()

    @router.get("/who")
    async def whoami(name: Annotated[str, Depends(_who)]) -> Response:
        return Response(name)

    async def fake(request: Request) -> str:
        return "override"

    assert ("GET", "/who") in direct_routes([("", router)])
    assert _answered(router, "/who").text == "real"
    assert _answered(router, "/who", {_who: fake}).text == "override"


def _in_a_thread(request: Request) -> str:
    return "from a thread"


def test_a_plain_function_endpoint_or_dependency_is_left_to_fastapis_thread_pool() -> None:
    async def uses_it(value: Annotated[str, Depends(_in_a_thread)]) -> Response:
        return Response(value)

    def plain(request: Request) -> Response:
        return Response("plain")

    assert direct_arguments(uses_it) is None
    assert direct_arguments(plain) is None
