"""Credentials and scopes (Communication 4.0)."""

from __future__ import annotations

from typing import Any

import pytest

from lrs.config import Settings
from tests.conftest import XAPIClient
from tests.statements import statement


@pytest.fixture
def issue(store_of: Any) -> Any:
    def _issue(*scopes: str) -> tuple[str, str]:
        return store_of.issue_credential("tool", list(scopes))  # type: ignore[no-any-return]

    return _issue


def test_request_without_credentials_is_401(xapi: XAPIClient) -> None:
    response = xapi.get(headers={"Authorization": None})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_secret_is_401(xapi: XAPIClient) -> None:
    assert xapi.as_credential("admin", "wrong").get().status_code == 401


def test_unknown_key_is_401(xapi: XAPIClient) -> None:
    assert xapi.as_credential("nobody", "x").get().status_code == 401


def test_a_non_basic_scheme_is_401(xapi: XAPIClient) -> None:
    assert xapi.get(headers={"Authorization": "Bearer abc"}).status_code == 401


def test_raw_non_ascii_bytes_in_authorization_are_401_naming_the_rule(xapi: XAPIClient) -> None:
    response = xapi.http.get("/xAPI/statements", headers=[
        (b"authorization", b"Basic \xff\xfe\xc3\xa9"), (b"x-experience-api-version", b"1.0.3")])
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "the Basic credentials must be ASCII: the base64 of 'key:secret'")


def test_write_scope_cannot_read(xapi: XAPIClient, issue: Any) -> None:
    writer = xapi.as_credential(*issue("statements/write"))
    assert writer.post(statement()).status_code == 200
    assert writer.get().status_code == 403


def test_read_scope_cannot_write(xapi: XAPIClient, issue: Any) -> None:
    reader = xapi.as_credential(*issue("statements/read"))
    response = reader.post(statement())
    assert response.status_code == 403
    assert "statements/write" in response.json()["error"]["message"]


def test_all_read_reads_everything(xapi: XAPIClient, issue: Any) -> None:
    (sid,) = xapi.post(statement()).json()
    assert xapi.as_credential(*issue("all/read")).get(statementId=sid).status_code == 200


def test_read_mine_sees_only_what_that_credential_wrote(xapi: XAPIClient, issue: Any) -> None:
    tool = xapi.as_credential(*issue("statements/write", "statements/read/mine"))
    (own,) = tool.post(statement()).json()
    (other,) = xapi.post(statement()).json()
    assert [s["id"] for s in tool.get().json()["statements"]] == [own]
    assert tool.get(statementId=other).status_code == 404
    assert tool.get(statementId=own).status_code == 200


def test_read_mine_more_links_stay_within_the_credential(xapi: XAPIClient, issue: Any) -> None:
    tool = xapi.as_credential(*issue("statements/write", "statements/read/mine"))
    own = [tool.post(statement()).json()[0] for _ in range(3)]
    xapi.post(statement())
    page = tool.get(limit=2).json()
    rest = tool.request("GET", page["more"]).json()
    assert [s["id"] for s in page["statements"] + rest["statements"]] == list(reversed(own))


def test_a_revoked_credential_is_401(xapi: XAPIClient, issue: Any, store_of: Any) -> None:
    key, secret = issue("all")
    store_of.revoke_credential(key)
    assert xapi.as_credential(key, secret).get().status_code == 401


def test_authority_names_the_writing_credential(xapi: XAPIClient, issue: Any) -> None:
    key, secret = issue("all")
    (sid,) = xapi.as_credential(key, secret).post(statement()).json()
    assert xapi.get(statementId=sid).json()["authority"]["account"]["name"] == key


def test_secrets_are_stored_hashed(store_of: Any, issue: Any) -> None:
    key, secret = issue("all")
    stored = store_of.credential(key)
    assert secret not in stored.secret_hash
    assert stored.secret_hash.startswith("scrypt$")


def test_an_unknown_key_costs_the_same_secret_check_as_a_known_one(
        xapi: XAPIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answered without scrypt, an unknown key was 30 times faster: key existence by timing."""
    import lrs.auth

    checked: list[str] = []
    verify = lrs.auth.verify_secret
    monkeypatch.setattr(lrs.auth, "verify_secret", lambda s, h: checked.append(h) or verify(s, h))
    unknown = xapi.as_credential("no-such-key", "whatever")
    assert unknown.get().status_code == 401
    assert len(checked) == 1


def test_a_credential_revoked_in_one_worker_stops_working_in_every_worker_at_once(
        settings: Settings) -> None:
    """Two workers' authenticators, as `lrs serve --workers 2` builds them: one shared count of
    credential changes, each its own 30 s memory of verified secrets."""
    from lrs.application import LearningRecordStore
    from lrs.auth import Authenticator, CredentialChanges
    from lrs.errors import Unauthorized

    store = LearningRecordStore(env=settings.event_store_env())
    try:
        key, secret = store.issue_credential("tool", ["all"])
        shared = CredentialChanges()
        first, second = (Authenticator(store, "urn:lrs:credentials",
                                       changes=CredentialChanges(shared.shared)) for _ in range(2))
        assert first.verify(key, secret).key == key
        assert second.verify(key, secret).key == key  # remembered for 30 s from here
        store.revoke_credential(key)
        first.forget()  # what the admin page does in the worker that revoked it
        with pytest.raises(Unauthorized):
            second.verify(key, secret)
    finally:
        store.close()


@pytest.fixture
def counted_scrypt(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scrypt check the authenticator runs, by the hash it checked against."""
    import lrs.auth

    checked: list[str] = []
    verify = lrs.auth.verify_secret

    def counted(secret: str, stored: str) -> bool:
        checked.append(stored)
        return verify(secret, stored)

    monkeypatch.setattr(lrs.auth, "verify_secret", counted)
    return checked


def test_a_pair_checked_again_after_its_ttl_skips_scrypt_while_the_credential_keeps_its_hash(
        settings: Settings, counted_scrypt: list[str]) -> None:
    """scrypt would answer the same; re-run by every request in flight when the TTL ran out, it
    stalled each worker for 100-200 ms every 30 s."""
    from lrs.application import LearningRecordStore
    from lrs.auth import Authenticator
    from lrs.errors import Unauthorized

    store = LearningRecordStore(env=settings.event_store_env())
    try:
        key, secret = store.issue_credential("tool", ["statements/read"])
        auth = Authenticator(store, "urn:lrs:credentials", ttl_seconds=0)  # always expired
        assert auth.verify(key, secret).scopes == {"statements/read"}
        store.issue_credential("tool", ["all"], key=key, secret=secret)  # new scopes, new salt
        assert auth.verify(key, secret).scopes == {"all"}  # the new hash: checked by scrypt
        assert auth.verify(key, secret).scopes == {"all"}
        assert len(counted_scrypt) == 2
        _, new_secret = store.issue_credential("tool", ["all"], key=key)
        with pytest.raises(Unauthorized):
            auth.verify(key, secret)
        assert auth.verify(key, new_secret).key == key
    finally:
        store.close()


def test_a_credential_revoked_by_another_process_is_refused_once_the_ttl_runs_out(
        settings: Settings) -> None:
    from lrs.application import LearningRecordStore
    from lrs.auth import Authenticator
    from lrs.errors import Unauthorized

    store = LearningRecordStore(env=settings.event_store_env())
    other = LearningRecordStore(env=settings.event_store_env())  # the CLI, say
    try:
        key, secret = store.issue_credential("tool", ["all"])
        auth = Authenticator(store, "urn:lrs:credentials", ttl_seconds=0)
        assert auth.verify(key, secret).key == key
        other.revoke_credential(key)
        with pytest.raises(Unauthorized):
            auth.verify(key, secret)
    finally:
        other.close()
        store.close()


def test_concurrent_first_requests_of_one_pair_run_scrypt_once_and_each_wrong_secret_is_refused(
        settings: Settings, counted_scrypt: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from lrs.application import LearningRecordStore
    from lrs.auth import Authenticator
    from lrs.errors import Unauthorized

    store = LearningRecordStore(env=settings.event_store_env())
    try:
        key, secret = store.issue_credential("tool", ["all"])
        auth = Authenticator(store, "urn:lrs:credentials")

        def attempt(pair: tuple[str, str]) -> str:
            try:
                return auth.verify(*pair).key
            except Unauthorized:
                return "refused"

        with ThreadPoolExecutor(8) as pool:
            right = list(pool.map(attempt, [(key, secret)] * 8))
        assert right == [key] * 8
        assert len(counted_scrypt) == 1
        with ThreadPoolExecutor(8) as pool:
            wrong = list(pool.map(attempt, [(key, "guess")] * 4 + [(key, secret)] * 4))
        assert wrong == ["refused"] * 4 + [key] * 4
        assert len(counted_scrypt) == 1 + 4  # every guess paid for its own check
    finally:
        store.close()
