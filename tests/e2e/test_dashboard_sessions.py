"""Signing in to the dashboard, its cookie, CSRF on every form, and who sees which page, on
SQLite and PostgreSQL (the browser tests in tests/browser show the same as a person sees it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from lrs.dashboard.sessions import SessionSeal
from tests.conftest import ADMIN_KEY, ADMIN_SECRET
from tests.school import CLASS_A, CLASS_B, School, key_of, school_on

SESSION = "__Host-lrs-session"
TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def school(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[School]:
    with school_on(request, tmp_path_factory.mktemp("school"), auth_failures_per_address=5) as opened:
        yield opened


@pytest.fixture
def browser(school: School) -> TestClient:
    """The school's client with no cookies: a fresh browser."""
    client = school.admin.http
    client.cookies.clear()
    client.app.state.services.store.issue_credential(  # type: ignore[attr-defined]
        "tool", ["statements/write"], key="tool", secret="tool-secret")
    return client


def sign_in(client: TestClient, key: str, secret: str, **extra: Any) -> Any:
    token = TOKEN.search(client.get("/").text)
    assert token is not None
    form = {"key": key, "secret": secret, "csrf": token.group(1), "next": "", **extra}
    return client.post("/sign-in", data=form, follow_redirects=False)


def csrf_of(client: TestClient, path: str = "/dashboard") -> str:
    found = TOKEN.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def page(value: str, kind: str = "classes") -> str:
    return f"/dashboard/{kind}/{quote(value, safe='')}"


def test_the_root_page_is_the_sign_in_form(browser: TestClient) -> None:
    response = browser.get("/")
    assert response.status_code == 200
    assert 'action="/sign-in"' in response.text and 'type="password"' in response.text


def test_signing_in_sets_a_secure_http_only_strict_session_cookie(browser: TestClient,
                                                                  school: School) -> None:
    response = sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard")
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes
    assert not any(part.startswith("domain") for part in attributes)


def test_the_session_cookie_holds_nothing_readable(browser: TestClient, school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    value = browser.cookies[SESSION]
    assert "teacher" not in value and school.secrets["teacher_a"][1] not in value


def test_signing_in_without_the_forms_token_is_refused(browser: TestClient, school: School) -> None:
    browser.get("/")
    response = browser.post("/sign-in", data={"key": "teacher-a", "secret": school.secrets["teacher_a"][1],
                                              "csrf": "guessed"}, follow_redirects=False)
    assert response.status_code == 403
    assert SESSION not in browser.cookies


def test_signing_in_from_another_sites_page_is_refused(browser: TestClient, school: School) -> None:
    token = TOKEN.search(browser.get("/").text).group(1)  # type: ignore[union-attr]
    response = browser.post("/sign-in", data={"key": "teacher-a", "secret": school.secrets["teacher_a"][1],
                                              "csrf": token}, headers={"Origin": "https://evil.example"},
                            follow_redirects=False)
    assert response.status_code == 403
    assert SESSION not in browser.cookies


def test_a_wrong_secret_signs_nobody_in(browser: TestClient) -> None:
    response = sign_in(browser, "teacher-a", "wrong")
    assert response.status_code == 401
    assert "do not match" in response.text
    assert SESSION not in browser.cookies


def test_a_tools_credential_has_no_dashboard(browser: TestClient) -> None:
    response = sign_in(browser, "tool", "tool-secret")
    assert response.status_code == 403
    assert SESSION not in browser.cookies


def test_a_page_without_a_session_goes_to_sign_in(browser: TestClient) -> None:
    response = browser.get(page(CLASS_A), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/?next=%2Fdashboard%2Fclasses")


def test_a_tampered_cookie_is_no_session(browser: TestClient, school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    value = browser.cookies[SESSION]
    browser.cookies.clear()
    browser.cookies.set(SESSION, value)
    assert browser.get("/dashboard", follow_redirects=False).status_code == 200
    browser.cookies.clear()
    browser.cookies.set(SESSION, value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"))
    assert browser.get("/dashboard", follow_redirects=False).status_code == 303


def test_an_expired_session_is_no_session() -> None:
    seal = SessionSeal(b"k" * 32, lifetime_seconds=60)
    from lrs.credentials import CredentialInfo

    value, _ = seal.issue(CredentialInfo("k", "n", ("teacher",), False, "scrypt$1$1$1$00$00"), now=1000.0)
    assert seal.open(value, now=1059.0) is not None
    assert seal.open(value, now=1061.0) is None


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(browser: TestClient,
                                                                    school: School) -> None:
    secret = school.secrets["teacher_a"][1]
    assert sign_in(browser, "teacher-a", secret, next=page(CLASS_A)).headers["location"] == page(CLASS_A)
    for elsewhere in ("//evil.example/x", "https://evil.example", "/dashboard//evil.example",
                      "/dashboard\\..\\x", "/sign-out"):
        browser.cookies.clear()
        assert sign_in(browser, "teacher-a", secret, next=elsewhere).headers["location"] == "/dashboard"


def test_revoking_a_credential_ends_its_sessions_at_once(browser: TestClient, school: School) -> None:
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    key, secret = store.issue_credential("Brief", ["teacher"], classes=[CLASS_A])
    sign_in(browser, key, secret)
    assert browser.get("/dashboard", follow_redirects=False).status_code == 200
    store.revoke_credential(key)
    assert browser.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_new_secret_ends_the_sessions_of_the_old(browser: TestClient, school: School) -> None:
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    key, secret = store.issue_credential("Rotated", ["teacher"], classes=[CLASS_A])
    sign_in(browser, key, secret)
    store.issue_credential("Rotated", ["teacher"], key=key, classes=[CLASS_A])
    assert browser.get("/dashboard", follow_redirects=False).status_code == 303


def test_signing_out_needs_the_pages_token_and_ends_the_session(browser: TestClient, school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    assert browser.post("/sign-out", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    assert browser.get("/dashboard", follow_redirects=False).status_code == 200
    token = csrf_of(browser)
    response = browser.post("/sign-out", data={"csrf": token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert browser.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_teachers_pages_show_their_class_and_learners(browser: TestClient, school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    overview = browser.get(page(CLASS_A))
    assert overview.status_code == 200
    assert "Ada" in overview.text and "Bob" in overview.text and "Cat" not in overview.text
    assert browser.get(page(key_of("bob"), "learners")).status_code == 200


def test_a_teacher_is_refused_another_classs_pages(browser: TestClient, school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    for url in (page(CLASS_B), page(CLASS_B) + "?as_of=2020-01-01", page(key_of("cat"), "learners"),
                page(key_of("nobody"), "learners"), page(key_of("cat"), "learners") + "?as_of=2030-01-01"):
        response = browser.get(url)
        assert response.status_code == 403, url
        assert "Cat" not in response.text and "Dan" not in response.text
    assert "Cat" not in browser.get("/dashboard", params={"q": "cat"}).text


def test_a_learner_lands_on_their_own_page_and_sees_nobody_else(browser: TestClient, school: School) -> None:
    sign_in(browser, "ada", school.secrets["ada"][1])
    response = browser.get("/dashboard", follow_redirects=False)
    assert response.headers["location"] == page(key_of("ada"), "learners")
    own = browser.get(page(key_of("ada"), "learners"))
    assert own.status_code == 200 and "Fractions by Friday" in own.text
    for url in (page(key_of("bob"), "learners"), page(CLASS_A), "/dashboard/admin"):
        assert browser.get(url).status_code == 403, url


def test_a_learner_in_a_small_class_sees_no_class_average(browser: TestClient, school: School) -> None:
    sign_in(browser, "ada", school.secrets["ada"][1])
    text = browser.get(page(key_of("ada"), "learners")).text
    assert "Class average" not in text
    assert "too small (2 learners)" in text


def test_only_an_administrator_reaches_the_admin_page(browser: TestClient, school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    assert browser.get("/dashboard/admin").status_code == 403
    token = csrf_of(browser)
    added = browser.post("/dashboard/admin/credentials", data={"csrf": token, "name": "x",
                                                               "scopes": ["all"]})
    assert added.status_code == 403
    revoked = browser.post("/dashboard/admin/credentials/revoke", data={"csrf": token, "key": "teacher-b"})
    assert revoked.status_code == 403
    assert school.admin.http.app.state.services.store.credential("teacher-b").revoked is False  # type: ignore[attr-defined]


def test_admin_forms_need_the_pages_token(browser: TestClient, school: School) -> None:
    sign_in(browser, ADMIN_KEY, ADMIN_SECRET)
    forged = browser.post("/dashboard/admin/credentials", data={"csrf": "forged", "name": "Evil",
                                                                "scopes": ["all"]})
    assert forged.status_code == 403
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    assert not [c for c in store.credentials() if c.name == "Evil"]


def test_the_admin_adds_a_teacher_bound_to_a_class(browser: TestClient, school: School) -> None:
    sign_in(browser, ADMIN_KEY, ADMIN_SECRET)
    token = csrf_of(browser, "/dashboard/admin")
    response = browser.post("/dashboard/admin/credentials", data={
        "csrf": token, "name": "Mr Okafor", "scopes": ["teacher"], "classes": f"{CLASS_B}\n"})
    found = re.search(r"Credential <code>(\w+)</code> added.*?<code>([^<]+)</code>", response.text)
    assert found is not None, response.text
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    assert store.credential(found.group(1)).classes == (CLASS_B,)


def test_the_admin_form_says_what_is_wrong_with_a_binding(browser: TestClient) -> None:
    sign_in(browser, ADMIN_KEY, ADMIN_SECRET)
    token = csrf_of(browser, "/dashboard/admin")
    response = browser.post("/dashboard/admin/credentials", data={
        "csrf": token, "name": "No class", "scopes": ["teacher"]})
    assert "scope teacher needs the classes" in response.text


def test_pages_are_never_cached_framed_or_scripted_from_elsewhere(browser: TestClient,
                                                                  school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    response = browser.get(page(CLASS_A))
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert not re.search(r"""(?:src|href)=["']https?://""", response.text)


def test_a_bad_as_of_date_is_a_clear_error(browser: TestClient, school: School) -> None:
    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    response = browser.get(page(CLASS_A), params={"as_of": "yesterday"})
    assert response.status_code == 400
    assert "as_of: give a date as YYYY-MM-DD" in response.text


def test_the_class_as_of_a_date_shows_mastery_as_it_stood(browser: TestClient, school: School) -> None:
    from datetime import timedelta

    from tests.school import DAY_0

    sign_in(browser, "teacher-a", school.secrets["teacher_a"][1])
    before = browser.get(page(CLASS_A), params={"as_of": str(DAY_0)})
    assert "No learner of this class had started" in before.text
    early = browser.get(page(CLASS_A), params={"as_of": str(DAY_0 + timedelta(days=2))})
    now = browser.get(page(CLASS_A))
    assert f"at the end of {DAY_0 + timedelta(days=2)}" in early.text
    # Two days in, each learner has two pieces of evidence per competency: nobody mastered yet.
    assert "lvl-mastered" in now.text.split("<tbody>", 1)[1]
    assert "lvl-mastered" not in early.text.split("<tbody>", 1)[1]


# Last: the address it blocks is every test's (new sign-ins from it wait a minute).
def test_guessing_secrets_is_limited(browser: TestClient, school: School) -> None:
    statuses = [sign_in(browser, "teacher-b", f"guess-{n}").status_code for n in range(8)]
    assert statuses[-1] == 429, statuses


def test_a_revoked_credentials_key_is_shown_as_text_not_markup(browser: TestClient,
                                                               school: School) -> None:
    """The admin page's notice is markup; a key with HTML in it (keys come from `lrs credentials
    add --key`) must not become part of the page."""
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    key = '<img src=x onerror="alert(1)">'
    store.issue_credential("odd", ["all"], key=key)
    sign_in(browser, ADMIN_KEY, ADMIN_SECRET)
    token = csrf_of(browser, "/dashboard/admin")
    revoked = browser.post("/dashboard/admin/credentials/revoke", data={"csrf": token, "key": key})
    assert revoked.status_code == 200
    assert "Credential &lt;img src=x onerror=" in revoked.text
    assert '<img src=x onerror="alert(1)">' not in revoked.text
    assert store.credential(key).revoked
