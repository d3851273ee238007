"""`lrs serve` on several cores: worker processes answer HTTP, the parent writes.

Validating and preparing statements is Python work, and one interpreter runs it on one core. With
LRS_WORKERS > 1 the parent binds the socket and spawns that many workers, which accept on it in
turn and do everything a request needs except the append: that goes to the parent's one group
committer (so a write still gathers every waiting request, ids are still checked once, a batch is
still all or nothing, acknowledged means durable). The projections process stays the parent's.

Limits that count per process are split between the workers, so the whole server keeps the
configured numbers: failed-authentication limits and the connection cap. A credential's request
rate (LRS_CREDENTIAL_REQUESTS_PER_SECOND) stays per worker: one client's connections may all land
on one worker, so splitting it would refuse an honest client.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from lrs.config import Settings

log = logging.getLogger("lrs.workers")

RESTART_PAUSE = 1.0
STOP_GRACE = 15.0


def worker_settings(settings: Settings) -> Settings:
    """Each worker's share of the per-process limits."""
    n = settings.workers

    def share(value: int) -> int:
        return 0 if value == 0 else max(1, math.ceil(value / n))

    return settings.model_copy(update={
        "auth_failures_per_address": share(settings.auth_failures_per_address),
        "auth_failures_per_key": share(settings.auth_failures_per_key),
        "max_connections": share(settings.max_connections),
    })


def _socket(settings: Settings, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    return sock


def check_port_free(settings: Settings) -> None:
    """Sockets with SO_REUSEPORT share a port with any other such socket of the same user, so the
    port is first taken without it: another server on it (an LRS too) is an error, not a partner."""
    _socket(settings, reuse_port=False).close()


def listening_socket(settings: Settings) -> socket.socket:
    """One socket per worker on the same port: the kernel spreads new connections between them
    (on one shared socket, the worker that woke first accepted a whole burst of them)."""
    sock = _socket(settings, reuse_port=True)
    sock.listen(2048)
    return sock


def serve_workers(settings: Settings) -> int:
    """Run the parent: the store, the committer, the projections, and N workers to supervise."""
    from lrs.api.hub import WorkerHub
    from lrs.api.services import Services
    from lrs.committer import GroupCommitter

    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        check_port_free(settings)
    except OSError as exc:
        print(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
        return 1
    services = Services.start(settings)
    committer = services.committer
    assert isinstance(committer, GroupCommitter)  # the parent writes itself
    hub = WorkerHub(services.store, committer, services.views,
                    settings.view_query_slots + settings.sql_slots)
    context = multiprocessing.get_context("spawn")
    shared_clock = committer.in_flight.shared
    share = worker_settings(settings)
    workers: list[tuple[BaseProcess, Connection]] = []

    def start(number: int) -> tuple[BaseProcess, Connection]:
        ours, theirs = context.Pipe()
        sock = listening_socket(settings)
        process = context.Process(target=run_worker, name=f"lrs-worker-{number}", daemon=True,
                                  args=(share, sock, theirs, shared_clock, os.getpid()))
        process.start()
        theirs.close()
        sock.close()  # the worker holds it now: when the worker dies, its share of the port goes
        hub.serve(ours, f"worker-{number}")
        return process, ours

    try:
        workers = [start(n) for n in range(settings.workers)]
        log.info("%d workers answer on %s:%d", settings.workers, settings.host, settings.port)
        while not stopping.wait(0.5):
            for number, (process, connection) in enumerate(workers):
                if not process.is_alive() and not stopping.is_set():
                    log.error("worker %d exited (code %s); starting it again", number,
                              process.exitcode)
                    connection.close()
                    time.sleep(RESTART_PAUSE)
                    workers[number] = start(number)
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()  # uvicorn's graceful shutdown: requests in progress finish
        deadline = time.monotonic() + STOP_GRACE
        for process, connection in workers:
            process.join(timeout=max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            connection.close()
        hub.close()
        services.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def run_worker(settings: Settings, sock: socket.socket, connection: Connection, shared_clock: Any,
               parent: int) -> None:
    """A worker: the HTTP application, with the writer and views reached through the parent."""
    from lrs.api.links import ParentLink
    from lrs.api.main import create_app
    from lrs.api.server import build_server
    from lrs.api.services import Services
    from lrs.cli.common import tune_gc
    from lrs.committer import InFlight

    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    link = ParentLink(connection)
    app = create_app(settings, lambda: Services.for_worker(settings, link, InFlight(shared_clock)))
    server = build_server(app, settings)
    tune_gc()
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


def _exit_with(parent: int) -> None:
    """A worker whose parent was killed (kill -9 leaves no time to stop it) stops too."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
