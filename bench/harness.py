"""Start a real `lrs serve` on a free loopback port for benchmarks, and stop it afterwards."""

from __future__ import annotations

import base64
import os
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


@dataclass
class Server:
    url: str
    headers: dict[str, str]
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(event_store: str | None = None, data_dir: str | None = None) -> Iterator[Server]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lrs-bench-") as scratch:
        data_dir = data_dir or scratch
        env = {**os.environ, "LRS_DATA_DIR": data_dir, "LRS_PORT": str(port),
               "LRS_BOOTSTRAP_CREDENTIAL": CREDENTIAL, "LRS_MAX_BATCH_STATEMENTS": "1000"}
        if event_store:
            env["LRS_EVENT_STORE"] = event_store
        process = subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
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
            headers = {"Authorization": "Basic " + base64.b64encode(CREDENTIAL.encode()).decode(),
                       "X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
            yield Server(url, headers, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
