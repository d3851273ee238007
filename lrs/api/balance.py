"""The workers of `lrs serve` share one listening socket; the least busy one accepts.

A connection stays with the worker that accepted it for as long as the client keeps it open,
and LMSs, load generators and reverse proxies keep few connections open for a long time. Left
to the kernel (a socket per worker with SO_REUSEPORT, spread by a hash of the client's address
and port), 8 such connections landed 4/4 on two workers in about a quarter of the runs and 6/2
or worse in another quarter; the busier worker then ran out of core while the other idled.
Here every worker counts its open connections in memory the workers share, and one that has
more than another waits a moment before accepting, so that the other takes the connection;
if the other has not within DEFER_MAX (it may be in the middle of a long request), it takes
the connection itself. A new server's workers begin to accept together, once all have started;
a worker that died is left out until its replacement starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from typing import Any

import uvicorn

from lrs.api.server import ServerConfig

log = logging.getLogger("lrs.workers")

ABSENT = -1  # a worker that does not accept: not started yet, stopping or dead
STARTUP_WAIT = 30.0  # for the other workers to start, before the first accept
DEFER_STEP = 0.001
DEFER_MAX = 0.02
ACCEPT_FAILED_PAUSE = 0.1


class WorkerLoads:
    """Each worker's open connections, one slot per worker, in memory all of them share
    (a multiprocessing RawArray). A slot is written by its own worker only, and by the parent
    when the worker has died; a stale read costs no more than one connection placed worse."""

    def __init__(self, slots: Any, number: int) -> None:
        self.slots: Sequence[int] = slots
        self.number = number

    def set(self, connections: int) -> None:
        self.slots[self.number] = connections  # type: ignore[index]

    def all_started(self) -> bool:
        return all(theirs != ABSENT for theirs in self.slots)

    def busier_than_another(self) -> bool:
        mine = self.slots[self.number]
        return any(0 <= theirs < mine for n, theirs in enumerate(self.slots) if n != self.number)


class BalancedServer(uvicorn.Server):
    """uvicorn's server, accepting from the shared socket only when it is the least busy."""

    def __init__(self, config: ServerConfig, sock: socket.socket, loads: WorkerLoads) -> None:
        super().__init__(config)
        config.connections_changed = self.connections_changed
        self.sock = sock
        self.loads = loads
        self._accepting: asyncio.Task[None] | None = None

    def connections_changed(self) -> None:
        self.loads.set(len(self.server_state.connections))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app and its lifespan, with no listener of uvicorn's
        if self.should_exit:
            return
        self.sock.setblocking(False)
        self.connections_changed()
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        self.loads.set(ABSENT)
        await super().shutdown(sockets=None)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        factory = self._protocol_factory()
        # The first connections of a new server are taken by whichever worker started first,
        # and kept: so no worker accepts until all have started.
        waited = 0.0
        while not self.loads.all_started() and waited < STARTUP_WAIT:
            await asyncio.sleep(DEFER_STEP * 10)
            waited += DEFER_STEP * 10
        while True:
            await _readable(loop, self.sock)
            waited = 0.0
            while self.loads.busier_than_another() and waited < DEFER_MAX:
                await asyncio.sleep(DEFER_STEP)
                waited += DEFER_STEP
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another worker took it
            except OSError as exc:  # out of file descriptors: wait for connections to close
                log.warning("accepting a connection failed: %s", exc)
                await asyncio.sleep(ACCEPT_FAILED_PAUSE)
                continue
            try:
                await loop.connect_accepted_socket(factory, conn)
            except OSError as exc:  # the client left between its connect and our accept
                log.info("an accepted connection closed before it was served: %s", exc)
                conn.close()

    def _protocol_factory(self) -> Any:
        config = self.config

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state)

        return create_protocol


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
