"""`lrs serve` with several workers keeps the promises the README makes for the whole server.

Real processes, real sockets. Each client below opens a new connection per request, so its
requests land on whichever worker accepts first (lrs/api/balance.py: with no connection open,
the workers race for each), as an attacker's or a school's would. The rules are about the
server, not the event store, so they run on SQLite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx

from tests.integration.test_serve_shutdown import free_port, group_ends
from tests.integration.test_serve_workers import AUTH, serving

VERSION = {"X-Experience-API-Version": "1.0.3"}


def fresh_get(url: str, key: str, secret: str) -> int:
    """One request on a connection of its own (so it may land on any worker)."""
    with httpx.Client(base_url=url, headers=VERSION, timeout=30) as http:
        return http.get("/xAPI/statements", params={"limit": 1}, auth=(key, secret)).status_code


def test_an_address_gets_no_more_failed_authentications_than_the_limit_across_workers(
        tmp_path: Path) -> None:
    """LRS_AUTH_FAILURES_PER_ADDRESS bounds the secrets an address may try: every guess past it
    gets 429 before the secret is checked, however the guesses are spread over the workers."""
    limit = 3
    with serving(tmp_path / "data", None, workers=2,
                 LRS_AUTH_FAILURES_PER_ADDRESS=str(limit)) as (_, url):
        answers = [fresh_get(url, "admin", f"guess-{n}") for n in range(40)]
    checked = answers.count(401)
    assert answers.count(429) + checked == len(answers)
    assert checked <= limit, (f"{checked} wrong secrets were checked from one address; the limit"
                              f" is {limit}")


def test_a_secret_accepted_once_passes_the_failure_limits_in_every_worker(tmp_path: Path) -> None:
    """README: a secret accepted in the last 24 hours passes both limits, so a pupil hammering
    from a school's shared address does not lock out the tools that already hold a secret,
    whichever worker their next connection reaches."""
    with serving(tmp_path / "data", None, workers=2) as (_, url):
        assert fresh_get(url, "admin", "admin-secret") == 200  # the tool, accepted once
        for n in range(60):  # the pupil, from the same address, until every worker says 429
            fresh_get(url, "admin", f"guess-{n}")
        assert fresh_get(url, "admin", "guess-last") == 429
        answers = [fresh_get(url, "admin", "admin-secret") for _ in range(20)]
    assert answers == [200] * 20, f"the accepted secret was refused: {answers}"


def test_analysts_sql_runs_in_no_more_queries_at_once_than_the_sql_slots_across_workers(
        tmp_path: Path) -> None:
    """README: SQL has its own LRS_SQL_SLOTS (2): a request that finds them full for a second
    gets 503, so analysts' queries never take more of the views process than that."""
    slow = "SELECT count(*) FROM range(3000000000) t(i) WHERE i % 7 = 3"  # longer than the limit
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    with serving(tmp_path / "data", None, workers=2, LRS_SQL_TIMEOUT_SECONDS="2") as (_, url):

        def ask() -> None:
            with httpx.Client(base_url=url, headers=AUTH, timeout=60) as http:
                response = http.post("/api/sql", json={"sql": slow})
            with lock:
                answers.append((response.status_code, response.text))

        threads = [threading.Thread(target=ask) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ran = [text for status, text in answers if status == 400 and "LRS_SQL_TIMEOUT_SECONDS" in text]
    refused = [text for status, text in answers if status == 503]
    assert len(ran) + len(refused) == len(answers), answers
    assert len(ran) <= 2, f"{len(ran)} SQL queries ran at once; LRS_SQL_SLOTS is 2"


def test_a_second_server_started_beside_the_first_on_its_port_is_refused(tmp_path: Path) -> None:
    """A port taken by another server is an error, never a port shared with it: two servers on
    one port split the clients' statements between two stores. The second server is started
    while the first is still starting (a restart overlapping the old process, two operators)."""
    port = free_port()

    def start(name: str) -> subprocess.Popen[str]:
        environ = {**os.environ, "LRS_DATA_DIR": str(tmp_path / name), "LRS_PORT": str(port),
                   "LRS_BOOTSTRAP_CREDENTIAL": "admin:admin-secret", "LRS_WORKERS": "2"}
        return subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=environ,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    first = start("first")
    time.sleep(0.5)
    second = start("second")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (first.poll() is None and second.poll() is None):
            time.sleep(0.2)
        time.sleep(5)  # whichever lost the port has had time to say so
        running = [p for p in (first, second) if p.poll() is None]
        assert len(running) == 1, "both servers answer on the same port"
    finally:
        for process in (first, second):
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)
            group_ends(process.pid)
