"""Version header, CORS and the alternate request syntax (Communication 1.3, 3.3)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient, basic
from tests.statements import statement


def test_request_without_version_header_is_rejected(xapi: XAPIClient) -> None:
    response = xapi.get(headers={"X-Experience-API-Version": None})
    assert response.status_code == 400
    assert "X-Experience-API-Version header is required" in response.json()["error"]["message"]


def test_unsupported_version_is_rejected(xapi: XAPIClient) -> None:
    assert xapi.get(headers={"X-Experience-API-Version": "0.95"}).status_code == 400


def test_every_1_0_x_version_is_accepted(xapi: XAPIClient) -> None:
    for version in ("1.0", "1.0.0", "1.0.1", "1.0.2", "1.0.3"):
        response = xapi.get(headers={"X-Experience-API-Version": version})
        assert response.status_code == 200, version
        assert response.headers["X-Experience-API-Version"] == "1.0.3"


def test_version_2_is_answered_with_2_0_0(xapi: XAPIClient) -> None:
    response = xapi.speaking("2.0.0").get()
    assert response.headers["X-Experience-API-Version"] == "2.0.0"


def test_error_responses_carry_the_version_header(xapi: XAPIClient) -> None:
    response = xapi.get(statementId="nope")
    assert response.status_code == 400
    assert response.headers["X-Experience-API-Version"] == "1.0.3"


def test_about_needs_no_version_header_or_credential(xapi: XAPIClient) -> None:
    response = xapi.http.get("/xAPI/about")
    assert response.status_code == 200
    assert response.json()["version"] == ["1.0.3", "2.0.0"]
    assert response.headers["X-Experience-API-Version"] == "2.0.0"  # the default


@pytest.mark.parametrize("header", ["1.0.3", "1.0.1"])
def test_about_tells_a_1_0_x_client_of_1_0_x_versions_only(xapi: XAPIClient, header: str) -> None:
    """The 1.0.3 suite allows only 0.9, 0.95 and 1.0.x in About's version (XAPI-00316)."""
    response = xapi.http.get("/xAPI/about", headers={"X-Experience-API-Version": header})
    assert response.json()["version"] == ["1.0.3"]


def test_about_tells_a_2_0_0_client_of_every_version(xapi: XAPIClient) -> None:
    response = xapi.http.get("/xAPI/about", headers={"X-Experience-API-Version": "2.0.0"})
    assert response.json()["version"] == ["1.0.3", "2.0.0"]


def test_cors_preflight_allows_xapi_headers(xapi: XAPIClient) -> None:
    response = xapi.http.options("/xAPI/statements", headers={
        "Origin": "https://course.example.org",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, x-experience-api-version, content-type",
    })
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-experience-api-version" in allowed and "authorization" in allowed


def test_cors_exposes_the_consistent_through_header(xapi: XAPIClient) -> None:
    response = xapi.get(headers={"Origin": "https://course.example.org"})
    assert "x-experience-api-consistent-through" in (
        response.headers["access-control-expose-headers"].lower())


def _form(method: str, **fields: str) -> tuple[str, bytes]:
    return f"/xAPI/statements?method={method}", urlencode(fields).encode()


def test_alternate_syntax_put_stores_a_statement(xapi: XAPIClient) -> None:
    sid = str(uuid.uuid4())
    path, body = _form("PUT", statementId=sid, content=orjson.dumps(statement()).decode(),
                       Authorization=basic(ADMIN_KEY, ADMIN_SECRET),
                       **{"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"})
    response = xapi.http.post(path, content=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 204, response.text
    assert xapi.get(statementId=sid).status_code == 200


def test_alternate_syntax_get_reads_statements(xapi: XAPIClient) -> None:
    (sid,) = xapi.post(statement()).json()
    path, body = _form("GET", statementId=sid, Authorization=basic(ADMIN_KEY, ADMIN_SECRET),
                       **{"X-Experience-API-Version": "1.0.3"})
    response = xapi.http.post(path, content=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert response.json()["id"] == sid


def test_alternate_syntax_allows_no_other_query_parameters(xapi: XAPIClient) -> None:
    response = xapi.http.post(
        "/xAPI/statements?method=GET&limit=1", content=b"",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "'method' must be the only query parameter" in response.json()["error"]["message"]


def test_alternate_syntax_needs_a_form_body(xapi: XAPIClient) -> None:
    response = xapi.http.post("/xAPI/statements?method=GET", content=b"{}",
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 415


def test_every_statements_response_carries_consistent_through_errors_included(
        xapi: XAPIClient) -> None:
    for response in (xapi.get(statementId="not-a-uuid"),                      # 400
                     xapi.get(statementId=str(uuid.uuid4())),                 # 404
                     xapi.get(headers={"X-Experience-API-Version": None}),    # 400, version
                     xapi.post(statement(verb={"id": "no"})),                  # 400, invalid
                     xapi.get()):                                              # 200
        assert response.headers.get("X-Experience-API-Consistent-Through"), response.status_code


def test_a_request_naming_no_version_is_answered_with_the_default_version(
        xapi: XAPIClient) -> None:
    response = xapi.get(headers={"X-Experience-API-Version": None})
    assert response.headers["X-Experience-API-Version"] == "2.0.0"


def test_the_default_version_is_a_setting(settings: Any) -> None:
    from fastapi.testclient import TestClient

    from lrs.api.main import create_app

    with TestClient(create_app(settings.model_copy(
            update={"xapi_default_version": "1.0.3"}))) as client:
        response = client.get("/xAPI/statements")
        assert response.headers["X-Experience-API-Version"] == "1.0.3"


def test_alternate_syntax_keeps_the_real_headers(xapi: XAPIClient) -> None:
    (sid,) = xapi.post(statement()).json()
    path, body = _form("GET", statementId=sid)
    response = xapi.http.post(path, content=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": basic(ADMIN_KEY, ADMIN_SECRET), "X-Experience-API-Version": "1.0.3"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == sid


def test_alternate_syntax_without_a_body_is_400(xapi: XAPIClient) -> None:
    response = xapi.http.post("/xAPI/statements?method=GET", headers={
        "Authorization": basic(ADMIN_KEY, ADMIN_SECRET), "X-Experience-API-Version": "1.0.3"})
    assert response.status_code == 400


def test_alternate_syntax_is_refused_in_2_0_0(xapi: XAPIClient) -> None:
    path, body = _form("GET", Authorization=basic(ADMIN_KEY, ADMIN_SECRET),
                       **{"X-Experience-API-Version": "2.0.0"})
    response = xapi.http.post(path, content=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "2.0.0" in response.json()["error"]["message"]


def test_statements_sent_as_multipart_form_data_are_400(xapi: XAPIClient) -> None:
    response = xapi.request("POST", "/xAPI/statements", content=b"--x\r\n\r\n{}\r\n--x--\r\n",
                            headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 400
    assert "multipart/mixed" in response.json()["error"]["message"]


def test_an_alternate_syntax_body_over_the_limit_is_413_even_chunked(xapi: XAPIClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(30):
            yield b"y" * 10_000  # no Content-Length: read until over the 200,000-byte limit

    response = xapi.http.post("/xAPI/activities/state?method=PUT", content=chunks(), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Experience-API-Version": "1.0.3"})
    assert response.status_code == 413
