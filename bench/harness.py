"""Start a real `lrs serve` on a free loopback port for benchmarks, and stop it afterwards."""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

CREDENTIAL = "bench:bench-secret"


def event_store_argument(parser: argparse.ArgumentParser) -> None:
    """--event-store: the benchmark's server on PostgreSQL (a fresh database) or SQLite."""
    parser.add_argument("--event-store", default=None,
                        help="a PostgreSQL URL (a fresh database); SQLite when not given")


@dataclass
class Server:
    url: str
    headers: dict[str, str]
    pid: int
    stopped: str = ""  # how it ended, set on leaving running_server when given a stop_timeout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(event_store: str | None = None, data_dir: str | None = None,
                   env: dict[str, str] | None = None,
                   stop_timeout: float | None = None,
                   source: str | None = None) -> Iterator[Server]:
    """``env``: more LRS_* variables for the server. ``stop_timeout``: the server runs in a
    process group of its own; if SIGTERM has not ended it within that many seconds, the group
    is killed, and whatever it left behind (its projections child) is killed too. ``source``:
    the checkout whose code the server runs (bench/ab.py), this one's when not given."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lrs-bench-") as scratch:
        data_dir = data_dir or scratch
        environ = {**os.environ, "LRS_DATA_DIR": data_dir, "LRS_PORT": str(port),
                   "LRS_BOOTSTRAP_CREDENTIAL": CREDENTIAL, "LRS_MAX_BATCH_STATEMENTS": "1000"}
        if event_store:
            environ["LRS_EVENT_STORE"] = event_store
        environ.update(env or {})
        process = subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=environ,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=stop_timeout is not None, cwd=source)
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": "Basic " + base64.b64encode(CREDENTIAL.encode()).decode(),
                   "X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
        server = Server(url, headers, process.pid)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/xAPI/about", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("the LRS did not start") from None
                    time.sleep(0.2)
            yield server
        finally:
            process.terminate()
            if stop_timeout is None:
                process.wait(timeout=30)
            else:
                server.stopped = _stop_group(process, stop_timeout)


def _stop_group(process: subprocess.Popen[bytes], timeout: float) -> str:
    """Wait for a terminated server; kill its process group if it or a child outlives it."""
    started = time.monotonic()
    try:
        code = process.wait(timeout=timeout)
        stopped = f"exited on SIGTERM in {time.monotonic() - started:.1f} s (code {code})"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return f"still running {timeout:g} s after SIGTERM: its process group was killed"
    for _ in range(50):  # its children end with it (they watch their parent)
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return stopped
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    return stopped + "; a process it started outlived it by 5 s and was killed"
