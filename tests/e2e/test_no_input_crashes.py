"""No input crashes the server: generated bodies and parameters get a 4xx, never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient
from tests.statements import statement

ALLOWED = {200, 204, 400, 404, 409, 412, 413, 415}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
# Valid statements with one part replaced: the shapes a buggy client really sends.
mutated_statements = st.builds(
    lambda key, value: {**statement(), key: value},
    st.sampled_from(["actor", "verb", "object", "result", "context", "timestamp", "id",
                     "attachments", "authority", "version", "stored"]),
    json_values,
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=data_dir, bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield XAPIClient(test_client)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | mutated_statements)
def test_posting_any_json_never_fails_the_server(client: XAPIClient, body: Any) -> None:
    response = client.request("POST", "/xAPI/statements", content=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})
    assert response.status_code in ALLOWED, response.text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_posting_any_bytes_never_fails_the_server(client: XAPIClient, raw: bytes) -> None:
    response = client.request("POST", "/xAPI/statements", content=raw,
                              headers={"Content-Type": "application/json"})
    assert response.status_code in ALLOWED, response.text


query_names = st.sampled_from(["agent", "verb", "activity", "registration", "since", "until",
                               "limit", "format", "ascending", "statementId", "related_agents",
                               "attachments", "more", "voidedStatementId"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(query_names, st.text(max_size=30), max_size=4))
def test_any_query_parameters_never_fail_the_server(client: XAPIClient, params: dict[str, str]) -> None:
    assert client.get(**params).status_code in ALLOWED


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["activityId", "agent", "stateId", "registration",
                                               "since"]), st.text(max_size=30), max_size=5),
       body=st.binary(max_size=64), method=st.sampled_from(["PUT", "POST", "GET", "DELETE"]))
def test_any_state_request_never_fails_the_server(client: XAPIClient, params: dict[str, str],
                                                  body: bytes, method: str) -> None:
    response = client.request(method, "/xAPI/activities/state", params=params, content=body,
                              headers={"Content-Type": "application/json"})
    assert response.status_code in ALLOWED, response.text
