"""The dashboard on `lrs serve` with several worker processes: a session signed in on one worker
is good on every other, and each keeps a teacher to their class. Real processes, both stores."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx

from lrs.application import LearningRecordStore
from lrs.config import Settings
from tests.integration.test_serve_workers import AUTH, event_store, serving
from tests.school import CLASS_A, CLASS_B, school_statements, wait_for_views

__all__ = ["event_store"]  # the fixture, over SQLite and PostgreSQL
ROUNDS = 24  # requests, each on a connection of its own: the kernel spreads them over the workers


class Views:
    """What tests.school.wait_for_views needs: a request method against the live server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str) -> httpx.Response:
        return httpx.request(method, self.url + path, headers=AUTH, timeout=10)


def signed_in(url: str, key: str, secret: str) -> dict[str, str]:
    """The session cookie, as a header: the cookies are Secure, which httpx sends over HTTPS
    only (browsers send them to 127.0.0.1 too)."""
    form = httpx.get(f"{url}/")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = httpx.post(f"{url}/sign-in", data={"key": key, "secret": secret, "csrf": token},
                          headers={"Origin": url, "Cookie": f"lrs-sign-in={form.cookies['lrs-sign-in']}"})
    assert response.status_code == 303, response.text[-500:]
    return {"Cookie": f"__Host-lrs-session={response.cookies['__Host-lrs-session']}"}


def test_a_session_is_good_on_every_worker_and_keeps_the_teacher_to_their_class(
        tmp_path: Path, event_store: str | None) -> None:
    settings = Settings(data_dir=tmp_path, event_store=event_store)
    with serving(tmp_path, event_store, workers=2) as (_, url):
        assert httpx.post(f"{url}/xAPI/statements", json=school_statements(), headers=AUTH,
                          timeout=30).status_code == 200
        store = LearningRecordStore(env=settings.event_store_env())
        try:
            store.issue_credential("Ms A", ["teacher"], key="teacher-a", secret="secret-a",
                                   classes=[CLASS_A])
        finally:
            store.close()
        wait_for_views(Views(url))  # type: ignore[arg-type]
        session = signed_in(url, "teacher-a", "secret-a")
        own, other = (f"{url}/dashboard/classes/{quote(c, safe='')}" for c in (CLASS_A, CLASS_B))
        statuses = set()
        for _ in range(ROUNDS):
            with httpx.Client(headers=session, timeout=10,
                              limits=httpx.Limits(max_keepalive_connections=0)) as client:
                statuses.add(("own", client.get(own).status_code))
                statuses.add(("other", client.get(other).status_code))
                statuses.add(("status", client.get(f"{url}/dashboard/status").status_code))
        assert statuses == {("own", 200), ("other", 403), ("status", 200)}
