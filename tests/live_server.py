"""A real `lrs serve` server (uvicorn, lrs.api.server) in a thread on a free loopback port, for
tests that need real sockets and real HTTP clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from lrs.api.main import create_app
from lrs.api.server import build_server
from lrs.config import Settings

WAIT = 20.0  # the longest a test waits on the server before failing
Address = tuple[str, int]


@contextmanager
def running(settings: Settings) -> Iterator[Address]:
    server = build_server(create_app(settings), settings)
    listener = server.config.bind_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(int(WAIT / 0.05)):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.05)
        assert server.started, "the server did not start"
        yield listener.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(WAIT)
        listener.close()
