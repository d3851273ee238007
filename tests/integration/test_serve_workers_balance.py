"""`lrs serve` with several workers: connections a client keeps open are spread over the workers.

A connection stays with the worker that accepted it, and LMSs, load generators and reverse proxies
keep a few connections open for a long time; a worker that holds most of them runs out of core
while another idles (lrs/api/balance.py). Real processes and sockets; the worker that holds a
connection is read off the operating system's socket table. On SQLite: the rule is the server's.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack, closing
from pathlib import Path

import psutil

from tests.integration.test_serve_shutdown import free_port
from tests.integration.test_serve_workers import serving, with_group_killed

WORKERS = 2


def held_by_worker(server: int, port: int) -> Counter[int]:
    """How many of the server's established connections on ``port`` each child process holds."""
    held: Counter[int] = Counter()
    for child in psutil.Process(server).children(recursive=True):
        for conn in child.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_ESTABLISHED and conn.laddr and conn.laddr.port == port:
                held[child.pid] += 1
    return held


def answered_connection(port: int, stack: ExitStack) -> None:
    """A keep-alive connection that has had one answer, left open."""
    conn = stack.enter_context(closing(http.client.HTTPConnection("127.0.0.1", port, timeout=60)))
    conn.request("GET", "/xAPI/about", headers={"X-Experience-API-Version": "1.0.3"})
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 200


def spread(server: int, port: int, expected: int) -> list[int]:
    """Connections per worker, once the server's side of all of them is in its socket table."""
    deadline = time.monotonic() + 10
    while True:
        held = held_by_worker(server, port)
        if sum(held.values()) >= expected or time.monotonic() > deadline:
            return sorted(held.values())
        time.sleep(0.05)


def test_connections_opened_one_after_another_and_kept_open_are_spread_evenly(
        tmp_path: Path) -> None:
    """Sixteen keep-alive connections, each answered before the next opens: eight per worker.
    (Left to the kernel's hash of the client's port, an even split came one time in five.)"""
    with serving(tmp_path / "data", None, workers=WORKERS) as (process, url), ExitStack() as stack:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(16):
            answered_connection(port, stack)
        per_worker = spread(process.pid, port, 16)
    assert sum(per_worker) == 16 and len(per_worker) == WORKERS, per_worker
    assert per_worker[-1] - per_worker[0] <= 1, f"connections per worker: {per_worker}"


def test_connections_that_arrive_while_the_server_starts_are_spread_over_every_worker(
        tmp_path: Path) -> None:
    """Clients that connect as soon as the port is open (their connections wait in its backlog
    while the workers start) are not all taken by the worker that started first."""
    port = free_port()
    environ = {**os.environ, "LRS_DATA_DIR": str(tmp_path / "data"), "LRS_PORT": str(port),
               "LRS_WORKERS": str(WORKERS), "LRS_PROJECTIONS": "off"}
    process = subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        with ExitStack() as stack:
            sockets = []
            deadline = time.monotonic() + 60
            while len(sockets) < 8:  # connected into the backlog, before any worker accepts
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                try:
                    conn.connect()
                except ConnectionRefusedError:
                    assert process.poll() is None and time.monotonic() < deadline, "not listening"
                    time.sleep(0.01)
                    continue
                sockets.append(stack.enter_context(closing(conn)))
            for conn in sockets:
                conn.request("GET", "/xAPI/about", headers={"X-Experience-API-Version": "1.0.3"})
            for conn in sockets:
                answer = conn.getresponse()
                answer.read()
                assert answer.status == 200
            per_worker = spread(process.pid, port, 8)
    finally:
        with_group_killed(process)
    assert len(per_worker) == WORKERS, f"connections per worker: {per_worker}"
    assert per_worker[-1] - per_worker[0] <= 2, f"connections per worker: {per_worker}"
