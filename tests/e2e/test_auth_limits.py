"""Limits on failed authentication and on each credential's request rate (429 with Retry-After).

The limits' clock is the test's: windows pass by moving it, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.api.ratelimit import AccessLimitMiddleware, AccessLimits
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient

ATTACKER, CLIENT, OTHER = "198.51.100.66", "192.0.2.10", "192.0.2.20"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LRS:
    """One running app, reached from any client address."""

    def __init__(self, app: FastAPI, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    def at(self, host: str, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET) -> XAPIClient:
        # Not entered as a context: the app is already started by the fixture's client.
        return XAPIClient(TestClient(self.app, client=(host, 50000)), key, secret)

    @property
    def store(self) -> Any:
        return self.app.state.services.store


def limits_of(app: FastAPI) -> AccessLimits:
    (limits,) = [m.kwargs["limits"] for m in app.user_middleware if m.cls is AccessLimitMiddleware]
    return limits  # type: ignore[no-any-return]


@pytest.fixture
def start(settings: Settings) -> Iterator[Callable[..., LRS]]:
    """Start the LRS on the parametrised store with these limits."""
    with ExitStack() as stack:
        def _start(**limits: Any) -> LRS:
            app = create_app(settings.model_copy(update=limits))
            clock = Clock()
            limits_of(app).clock = clock
            stack.enter_context(TestClient(app))
            return LRS(app, clock)

        yield _start


def fail(client: XAPIClient, times: int, **headers: str) -> None:
    assert [client.get(headers=headers).status_code for _ in range(times)] == [401] * times


def test_wrong_secrets_over_the_address_limit_get_429_with_retry_after(
        start: Callable[..., LRS]) -> None:
    attacker = start(auth_failures_per_address=3).at(ATTACKER, secret="wrong")
    fail(attacker, 3)
    response = attacker.get()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert response.headers["X-Experience-API-Version"] == "1.0.3"
    message = response.json()["error"]["message"]
    assert "LRS_AUTH_FAILURES_PER_ADDRESS" in message and ATTACKER in message


def test_the_right_secret_from_a_limited_address_is_refused_too(start: Callable[..., LRS]) -> None:
    lrs = start(auth_failures_per_address=3)
    fail(lrs.at(ATTACKER, secret="wrong"), 3)
    assert lrs.at(ATTACKER).get().status_code == 429


def test_a_limited_attempt_never_reaches_the_secret_check(
        start: Callable[..., LRS], monkeypatch: pytest.MonkeyPatch) -> None:
    lrs = start(auth_failures_per_address=3)
    fail(lrs.at(ATTACKER, secret="wrong"), 3)
    checked: list[str] = []
    authenticator = lrs.app.state.services.authenticator
    verify = authenticator.verify
    monkeypatch.setattr(authenticator, "verify", lambda *a: checked.append(a[0]) or verify(*a))
    assert lrs.at(ATTACKER, secret="another guess").get().status_code == 429
    assert checked == []


def test_the_right_secret_from_another_address_works_while_one_is_limited(
        start: Callable[..., LRS]) -> None:
    lrs = start(auth_failures_per_address=3)
    fail(lrs.at(ATTACKER, secret="wrong"), 3)
    assert lrs.at(ATTACKER).get().status_code == 429
    assert lrs.at(CLIENT).get().status_code == 200


def test_the_address_limit_lifts_when_its_window_has_passed(start: Callable[..., LRS]) -> None:
    lrs = start(auth_failures_per_address=3, auth_failure_window_seconds=60)
    fail(lrs.at(ATTACKER, secret="wrong"), 3)
    lrs.clock.now += 59
    assert lrs.at(ATTACKER).get().headers["Retry-After"] == "1"
    lrs.clock.now += 1
    assert lrs.at(ATTACKER).get().status_code == 200


def test_a_hammered_key_refuses_a_new_secret_from_any_address(start: Callable[..., LRS]) -> None:
    lrs = start(auth_failures_per_address=100, auth_failures_per_key=4)
    for n in range(4):
        fail(lrs.at(f"198.51.100.{n}", secret="wrong"), 1)
    response = lrs.at(CLIENT).get()
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) == 60
    assert "LRS_AUTH_FAILURES_PER_KEY" in response.json()["error"]["message"]


def test_a_secret_already_accepted_still_works_while_its_key_is_hammered(
        start: Callable[..., LRS]) -> None:
    lrs = start(auth_failures_per_address=100, auth_failures_per_key=4)
    assert lrs.at(CLIENT).get().status_code == 200
    for n in range(4):
        fail(lrs.at(f"198.51.100.{n}", secret="wrong"), 1)
    assert lrs.at(OTHER, secret="a new guess").get().status_code == 429
    assert lrs.at(CLIENT).get().status_code == 200
    assert lrs.at(OTHER).get().status_code == 200


def test_a_secret_already_accepted_still_works_from_an_address_a_pupil_is_guessing_from(
        start: Callable[..., LRS]) -> None:
    """A school behind one NAT: one pupil's wrong guesses must not lock out the school's tools."""
    lrs = start(auth_failures_per_address=3)
    assert lrs.at(ATTACKER).get().status_code == 200  # the school's tool, same address
    fail(lrs.at(ATTACKER, secret="wrong"), 3)
    assert lrs.at(ATTACKER, secret="another guess").get().status_code == 429
    assert lrs.at(ATTACKER).get().status_code == 200


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(start: Callable[..., LRS]) -> None:
    attacker = start(auth_failures_per_address=3).at(ATTACKER, secret="wrong")
    for n in range(3):
        fail(attacker, 1, **{"X-Forwarded-For": f"203.0.113.{n}"})
    assert attacker.get(headers={"X-Forwarded-For": "203.0.113.99"}).status_code == 429


def test_behind_a_trusted_proxy_failures_count_against_the_forwarded_address(
        start: Callable[..., LRS]) -> None:
    lrs = start(auth_failures_per_address=3, trusted_proxies=["10.0.0.0/8"])
    fail(lrs.at("10.0.0.5", secret="wrong"), 3, **{"X-Forwarded-For": "203.0.113.7"})
    refused = lrs.at("10.0.0.5").get(headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.9"})
    assert refused.status_code == 429 and "203.0.113.7" in refused.json()["error"]["message"]
    assert lrs.at("10.0.0.5").get(headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200


def test_requests_over_the_credential_rate_get_429_with_retry_after(
        start: Callable[..., LRS]) -> None:
    lrs = start(credential_requests_per_second=0.5, credential_burst=2)
    client = lrs.at(CLIENT)
    assert [client.get().status_code for _ in range(3)] == [200, 200, 429]
    response = client.get()
    assert response.headers["Retry-After"] == "2"
    assert "LRS_CREDENTIAL_REQUESTS_PER_SECOND" in response.json()["error"]["message"]
    lrs.clock.now += 2
    assert client.get().status_code == 200


def test_one_credentials_rate_does_not_limit_another(start: Callable[..., LRS]) -> None:
    lrs = start(credential_requests_per_second=0.5, credential_burst=1)
    key, secret = lrs.store.issue_credential("quiz-app", ["all"])
    assert [lrs.at(CLIENT).get().status_code for _ in range(2)] == [200, 429]
    assert lrs.at(CLIENT, key, secret).get().status_code == 200
