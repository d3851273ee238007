"""`lrs serve` on several cores: worker processes answer HTTP, the parent writes.

Validating and preparing statements is Python work, and one interpreter runs it on one core. With
LRS_WORKERS > 1 the parent binds the socket and spawns that many workers, which accept on it (the
least busy first: lrs/api/balance.py) and do everything a request needs except the append: that
goes to the parent's one group committer (so a write still gathers every waiting request, ids
are still checked once, a batch is still all or nothing, acknowledged means durable). The
projections process stays the parent's.

The limits hold for the server as a whole: failed authentications and accepted secrets are
counted by the parent (lrs/api/hub.py), the view and SQL slots are the parent's, and each
worker's server takes its share of the connection cap. A credential's request rate
(LRS_CREDENTIAL_REQUESTS_PER_SECOND) stays per worker: one client's connections may all land on
one worker, so splitting it would refuse an honest client.
"""

from __future__ import annotations

import asyncio
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

from lrs.api.balance import ABSENT
from lrs.config import Settings
from lrs.interrupts import children_start_deaf, ignore_interrupts

log = logging.getLogger("lrs.workers")

RESTART_PAUSE = 1.0
STOP_GRACE = 15.0


def worker_settings(settings: Settings) -> Settings:
    """Each worker's share of the connection cap, which each worker's server enforces alone."""
    share = max(1, math.ceil(settings.max_connections / settings.workers))
    return settings.model_copy(update={"max_connections": share})


def listening_socket(settings: Settings) -> socket.socket:
    """The one socket every worker accepts on, taken before anything else and kept by the parent
    while the server runs: a worker that dies leaves the connections waiting in its backlog to
    the others and to its replacement. Which worker accepts: lrs/api/balance.py."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    return sock


def serve_workers(settings: Settings) -> int:
    """Run the parent: the store, the committer, the projections, and N workers to supervise."""
    from lrs.api.hub import WorkerHub
    from lrs.api.ratelimit import AccessLimits
    from lrs.api.services import Services
    from lrs.cli.common import tune_gc
    from lrs.committer import GroupCommitter

    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        sock = listening_socket(settings)
    except OSError as exc:
        print(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
        return 1
    services = Services.start(settings)
    committer = services.committer
    assert isinstance(committer, GroupCommitter)  # the parent writes itself
    hub = WorkerHub(services, AccessLimits(settings), settings.view_query_slots,
                    settings.sql_slots)
    # The parent unpickles every request's statements: with the interpreter's thresholds its
    # collector took 0.9 s of the parent's 7 s of CPU in a batch-100 run of 10 s, a gen-2 pass
    # (the whole heap) every two seconds.
    tune_gc()
    context = multiprocessing.get_context("spawn")
    shared = (services.in_flight_board.array, services.authenticator.changes.shared)
    share = worker_settings(settings)
    loads = context.RawArray("i", [ABSENT] * settings.workers)
    workers: list[tuple[BaseProcess, Connection]] = []

    def start(number: int, first_start: bool) -> tuple[BaseProcess, Connection]:
        ours, theirs = context.Pipe()
        process = context.Process(target=run_worker, name=f"lrs-worker-{number}", daemon=True,
                                  args=(share, sock, theirs, shared, os.getpid(),
                                        (loads, number, first_start)))
        with children_start_deaf():
            process.start()
        theirs.close()
        hub.serve(ours, f"worker-{number}")
        return process, ours

    try:
        workers = [start(n, first_start=True) for n in range(settings.workers)]
        log.info("%d workers answer on %s:%d", settings.workers, settings.host, settings.port)
        while not stopping.wait(0.5):
            for number, (process, connection) in enumerate(workers):
                if not process.is_alive() and not stopping.is_set():
                    log.error("worker %d exited (code %s); starting it again", number,
                              process.exitcode)
                    connection.close()
                    loads[number] = ABSENT  # the others stop leaving connections to it
                    time.sleep(RESTART_PAUSE)
                    workers[number] = start(number, first_start=False)
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
        sock.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def run_worker(settings: Settings, sock: socket.socket, connection: Connection,
               shared: tuple[Any, Any], parent: int, place: tuple[Any, int, bool]) -> None:
    """A worker: the HTTP application, with the writer and views reached through the parent.
    Ctrl-C is ignored until uvicorn takes it over for its graceful shutdown (lrs/interrupts.py).
    ``place``: the workers' shared connection counts, this worker's slot, and whether it is one
    of the server's first workers or a replacement (lrs/api/balance.py)."""
    ignore_interrupts()
    from lrs.api.balance import BalancedServer, WorkerLoads
    from lrs.api.links import LinkedAccessLimits, ParentLink
    from lrs.api.main import create_app
    from lrs.api.server import server_config
    from lrs.api.services import Services
    from lrs.auth import CredentialChanges
    from lrs.cli.common import tune_gc
    from lrs.committer import InFlightBoard

    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    link = ParentLink(connection)
    writes, changes = shared  # each store's write under way, and the credential changes

    def start() -> Services:
        link.attach(asyncio.get_running_loop())  # the lifespan runs on the server's loop
        return Services.for_worker(settings, link, InFlightBoard(writes),
                                   CredentialChanges(changes))

    app = create_app(settings, start, limits=LinkedAccessLimits(settings, link))
    loads, number, first_start = place
    server = BalancedServer(server_config(app, settings), sock, WorkerLoads(loads, number),
                            first_start)
    tune_gc()
    with contextlib.suppress(KeyboardInterrupt):
        server.run()


def _exit_with(parent: int) -> None:
    """A worker whose parent was killed (kill -9 leaves no time to stop it) stops too."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
