"""`lrs serve` with several worker processes (LRS_WORKERS): the same LRS, on more cores.

Real processes, real sockets, both event stores. The durability rule is the one a client relies
on: a statement acknowledged with 200 survives kill -9 of every process of the server, and a
batch is never half stored, whether one process or several answered it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from lrs.application import LearningRecordStore
from lrs.config import Settings
from tests.integration.test_serve_shutdown import NOISE, free_port, group_ends

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:admin-secret").decode(),
        "X-Experience-API-Version": "1.0.3"}


@pytest.fixture(params=["sqlite", "postgresql"])
def event_store(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_database")
    from tests.conftest import _empty_postgres

    _empty_postgres(url)
    return url


@contextmanager
def serving(data_dir: Path, event_store: str | None, workers: int,
            **env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    environ = {**os.environ, "LRS_DATA_DIR": str(data_dir), "LRS_PORT": str(port),
               "LRS_BOOTSTRAP_CREDENTIAL": "admin:admin-secret", "LRS_WORKERS": str(workers),
               **env}
    if event_store:
        environ["LRS_EVENT_STORE"] = event_store
    process = subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).json()["projections"].get("state"):
                    break
            except (httpx.TransportError, ValueError, KeyError, AttributeError):
                pass
            if process.poll() is not None:
                raise AssertionError(f"lrs serve exited: {process.communicate()[1][-3000:]}")
            time.sleep(0.1)
        else:
            raise AssertionError("lrs serve did not start within 60 s")
        yield process, url
    finally:
        if process.poll() is None:
            with_group_killed(process)


def with_group_killed(process: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    group_ends(process.pid)


def statement(sid: str, n: int = 0) -> dict[str, Any]:
    return {"id": sid, "actor": {"mbox": f"mailto:learner{n % 7}@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": f"http://example.org/activity/{n % 11}"}}


@contextmanager
def opened_store(data_dir: Path, event_store: str | None) -> Iterator[LearningRecordStore]:
    """The server's store, opened afresh as after a restart."""
    store = LearningRecordStore(env=Settings(data_dir=data_dir,
                                             event_store=event_store).event_store_env())
    try:
        yield store
    finally:
        store.close()


def stored_ids(data_dir: Path, event_store: str | None, ids: set[str]) -> set[str]:
    with opened_store(data_dir, event_store) as store:
        return set(store.index.existing_statements(ids).events)


def killed_while_writing(data_dir: Path, event_store: str | None, workers: int,
                         client: Callable[[str, int], None], stop: threading.Event,
                         acknowledged: Sized, enough: int) -> None:
    """Six clients write until ``enough`` writes are acknowledged (or 30 s pass); then every
    process of the server is killed at once, mid-write."""
    with serving(data_dir, event_store, workers) as (process, url):
        threads = [threading.Thread(target=client, args=(url, n)) for n in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < enough and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        process.communicate(timeout=30)
        assert group_ends(process.pid)
    assert len(acknowledged) >= enough


@pytest.mark.parametrize("workers", [1, 2])
def test_an_acknowledged_statement_survives_kill_9_of_every_process_of_the_server(
        tmp_path: Path, event_store: str | None, workers: int) -> None:
    data_dir = tmp_path / "data"
    sent: list[list[str]] = []
    acknowledged: set[str] = set()
    stop = threading.Event()
    lock = threading.Lock()

    def client(url: str, number: int) -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
            while not stop.is_set():
                ids = [str(uuid.uuid4()) for _ in range(10)]
                with lock:
                    sent.append(ids)
                try:
                    response = http.post("/xAPI/statements",
                                         json=[statement(i, number) for i in ids])
                except httpx.TransportError:
                    return  # the server was killed under this request
                if response.status_code == 200:
                    with lock:
                        acknowledged.update(response.json())

    killed_while_writing(data_dir, event_store, workers, client, stop, acknowledged, 500)
    everything = {sid for batch in sent for sid in batch}
    found = stored_ids(data_dir, event_store, everything)
    assert acknowledged <= found, f"{len(acknowledged - found)} acknowledged statements were lost"
    for batch in sent:  # all or nothing, acknowledged or not
        assert len(found & set(batch)) in (0, len(batch)), "a batch was half stored"


STATE = "/xAPI/activities/state"


def state_params(n: int) -> dict[str, str]:
    return {"activityId": f"http://example.org/activity/{n % 11}", "stateId": f"bookmark-{n}",
            "agent": json.dumps({"mbox": f"mailto:learner{n % 7}@example.org"})}


def stored_document(data_dir: Path, event_store: str | None, n: int) -> bytes | None:
    from lrs.documents import STATE as STATE_RESOURCE
    from lrs.documents import DocumentKey
    from lrs.errors import NotFound
    from schemas.actor import Agent, ifi_key

    params = state_params(n)
    key = DocumentKey(STATE_RESOURCE, params["stateId"], params["activityId"],
                      ifi_key(Agent(mbox=f"mailto:learner{n % 7}@example.org")))
    with opened_store(data_dir, event_store) as store:
        try:
            return store.document(key).content
        except NotFound:
            return None


@pytest.mark.parametrize("workers", [1, 2])
def test_an_acknowledged_document_survives_kill_9_of_every_process_of_the_server(
        tmp_path: Path, event_store: str | None, workers: int) -> None:
    """A worker's document writes are appended by the parent's writer: a 204 still means stored."""
    data_dir = tmp_path / "data"
    acknowledged: dict[int, bytes] = {}
    numbers = iter(range(1_000_000))
    stop = threading.Event()
    lock = threading.Lock()

    def client(url: str, _: int) -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
            while not stop.is_set():
                with lock:
                    n = next(numbers)
                body = json.dumps({"page": n}).encode()
                try:
                    response = http.put(STATE, params=state_params(n), content=body,
                                        headers={"Content-Type": "application/json"})
                except httpx.TransportError:
                    return  # the server was killed under this request
                if response.status_code == 204:
                    with lock:
                        acknowledged[n] = body

    killed_while_writing(data_dir, event_store, workers, client, stop, acknowledged, 200)
    lost = [n for n, body in acknowledged.items()
            if stored_document(data_dir, event_store, n) != body]
    assert not lost, f"{len(lost)} acknowledged documents were lost"


def test_conditional_writes_of_one_document_through_several_workers_lose_no_update(
        tmp_path: Path, event_store: str | None) -> None:
    """Read, change, write with If-Match from many connections: each 204 is one increment that
    every later write saw; a write that raced another is refused (412), never applied twice."""
    params = state_params(0)
    written: list[int] = []
    lock = threading.Lock()
    with serving(tmp_path / "data", event_store, workers=2) as (_, url):
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            assert http.put(STATE, params=params, content=b'{"count": 0}',
                            headers={"Content-Type": "application/json"}).status_code == 204

        def client() -> None:
            refused = 0
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
                while True:
                    with lock:
                        if len(written) >= 60:
                            return
                    current = http.get(STATE, params=params)
                    count = current.json()["count"] + 1
                    answer = http.put(STATE, params=params, content=json.dumps(
                        {"count": count}).encode(), headers={
                            "Content-Type": "application/json",
                            "If-Match": current.headers["ETag"]})
                    if answer.status_code == 204:
                        with lock:
                            written.append(count)
                    else:
                        assert answer.status_code == 412, answer.text
                        refused += 1
                        assert refused < 10_000

        threads = [threading.Thread(target=client) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            final = http.get(STATE, params=params).json()["count"]
    assert sorted(written) == list(range(1, len(written) + 1))
    assert final == len(written)


def test_every_statement_posted_through_several_workers_is_stored_once_and_readable(
        tmp_path: Path, event_store: str | None) -> None:
    ids = [str(uuid.uuid4()) for _ in range(200)]
    with serving(tmp_path / "data", event_store, workers=2) as (_, url):

        def post(chunk: list[str]) -> None:
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
                for sid in chunk:
                    assert http.post("/xAPI/statements", json=statement(sid)).status_code == 200

        threads = [threading.Thread(target=post, args=(ids[n::8],)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            # The same id again from another connection: a duplicate, not a second statement.
            assert http.post("/xAPI/statements", json=statement(ids[0])).status_code == 200
            changed = {**statement(ids[1]), "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
            assert http.post("/xAPI/statements", json=changed).status_code == 409
            seen: list[str] = []
            page = http.get("/xAPI/statements", params={"limit": 50}).json()
            while True:
                seen += [s["id"] for s in page["statements"]]
                if not page["more"]:
                    break
                page = http.get(page["more"]).json()
    assert sorted(seen) == sorted(ids)


def _store_credential(url: str, store: str) -> dict[str, str]:
    """The headers of a new credential in ``store`` (a new store, unless `default`)."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        if store == "default":
            return AUTH
        http.post("/admin/stores", json={"name": store}).raise_for_status()
        issued = http.post(f"/admin/stores/{store}/credentials",
                           json={"name": "tool", "scopes": ["all"]})
        issued.raise_for_status()
    pair = f"{issued.json()['key']}:{issued.json()['secret']}".encode()
    return {**AUTH, "Authorization": "Basic " + base64.b64encode(pair).decode()}


@pytest.mark.parametrize("store", ["default", "north"])
def test_consistent_through_never_passes_a_statement_that_is_not_yet_visible(
        tmp_path: Path, store: str) -> None:
    """Communication 2.1.3: every statement stored before the instant a response gives is in
    that response's view of the store, whichever worker answers and whichever is writing; for
    a store opened after the workers started too (its write under way in a board's slot)."""
    stop = threading.Event()
    answers: list[tuple[str, set[str]]] = []
    with serving(tmp_path / "data", None, workers=2, LRS_MAX_PAGE_STATEMENTS="100000") as (_, url):
        headers = _store_credential(url, store)

        def writer(number: int, into: dict[str, str]) -> None:
            with httpx.Client(base_url=url, headers=into, timeout=30) as http:
                while not stop.is_set():
                    http.post("/xAPI/statements",
                              json=[statement(str(uuid.uuid4()), number) for _ in range(5)])

        # Writes to `default` go on meanwhile: a named store sharing its slot would be caught.
        threads = [threading.Thread(target=writer, args=(n, headers)) for n in range(4)]
        if store != "default":
            threads += [threading.Thread(target=writer, args=(9, AUTH)) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            # Reads go on until the writers have stored plenty, however slowly they start on
            # a loaded machine (60 reads once ended before 30 statements were written), and
            # until they have seen the store at more than ten sizes (group commits of all four
            # writers at once once gave exactly ten by 200 statements).
            deadline = time.monotonic() + 120
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                while (len(answers) < 60 or len(answers[-1][1]) < 200
                       or len({len(ids) for _, ids in answers}) <= 10):
                    assert time.monotonic() < deadline, "the writers stored too little to test"
                    page = http.get("/xAPI/statements", params={"limit": 0})
                    answers.append((page.headers["X-Experience-API-Consistent-Through"],
                                    {s["id"] for s in page.json()["statements"]}))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            everything = http.get("/xAPI/statements", params={"limit": 0}).json()["statements"]
    assert len(everything) > 100 and len({len(ids) for _, ids in answers}) > 10
    for through, seen in answers:
        missing = {s["id"] for s in everything if s["stored"] < through} - seen
        assert not missing, f"{len(missing)} statements stored before {through} were not visible"


def test_a_killed_worker_is_replaced_and_the_server_keeps_answering(tmp_path: Path) -> None:
    import psutil

    with serving(tmp_path / "data", None, workers=2) as (process, url):
        workers = [p for p in psutil.Process(process.pid).children()
                   if "spawn_main" in " ".join(p.cmdline()) and p.name().startswith("python")]
        assert workers, "no worker processes found"
        victim = workers[-1]
        victim.kill()
        victim.wait(timeout=10)
        deadline = time.monotonic() + 30
        answered = 0
        while time.monotonic() < deadline and answered < 20:
            try:
                with httpx.Client(base_url=url, headers=AUTH, timeout=5) as http:
                    if http.post("/xAPI/statements",
                                 json=statement(str(uuid.uuid4()))).status_code == 200:
                        answered += 1
            except httpx.TransportError:
                time.sleep(0.2)
        assert answered == 20
        alive = [p for p in psutil.Process(process.pid).children() if p.is_running()]
        assert victim.pid not in {p.pid for p in alive}
        assert len(alive) >= len(workers)  # its replacement, beside the others


def test_views_answer_through_a_worker(tmp_path: Path) -> None:
    with (serving(tmp_path / "data", None, workers=2) as (_, url),
          httpx.Client(base_url=url, headers=AUTH, timeout=30) as http):
        http.post("/xAPI/statements", json=statement(str(uuid.uuid4())))
        health = http.get("/api/health").json()["projections"]
        assert health["state"] == "running" and health["view_queries"]["slots"] > 0
        answer = http.post("/api/sql", json={"sql": "SELECT 41 + 1 AS answer"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == [[42]]
        refused = http.post("/api/sql", json={"sql": "SELECT * FROM read_text('/etc/passwd')"})
        assert refused.status_code == 400


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_server_of_several_workers_stops_promptly_and_quietly(tmp_path: Path, how: str) -> None:
    with serving(tmp_path / "data", None, workers=2) as (process, _):
        if how == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr[-3000:]
        for word in NOISE:
            assert word not in stderr, stderr[-3000:]
        assert group_ends(process.pid), "a process of lrs serve's group outlived it"


def test_a_port_in_use_is_one_line_saying_so(tmp_path: Path) -> None:
    with serving(tmp_path / "first", None, workers=2) as (_, url):
        port = url.rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "lrs.cli.main", "serve"], capture_output=True, text=True,
            timeout=60, env={**os.environ, "LRS_DATA_DIR": str(tmp_path / "second"),
                             "LRS_PORT": port, "LRS_WORKERS": "2"})
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stdout + second.stderr
        assert "Traceback" not in second.stderr
