"""The workers of `lrs serve` share one listening socket; the least busy one accepts.

A connection stays with the worker that accepted it for as long as the client keeps it open,
and LMSs, load generators and reverse proxies keep few connections open for a long time. Left
to the kernel (a socket per worker with SO_REUSEPORT, spread by a hash of the client's address
and port), 8 such connections landed 4/4 on two workers in about a quarter of the runs and 6/2
or worse in another quarter; the busier worker then ran out of core while the other idled.
Here every worker counts its open connections in memory the workers share, and one that has
more than another waits a moment before accepting, so that the other takes the connection;
if the other has not within DEFER_MAX (it may be in the middle of a long request), it takes
the connection itself, and whatever else waits. A new server's workers begin to accept together,
once all have started; a worker that died or is stopping is left out until its replacement
starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Sequence
from functools import partial
from typing import Any

import uvicorn

from lrs.api.server import ServerConfig

log = logging.getLogger("lrs.workers")

ABSENT = -1  # a worker that does not accept: not started yet, stopping or dead
STARTUP_WAIT = 30.0  # for the other workers to start, before the first accept
DEFER_STEP = 0.001
# How long a busier worker leaves a connection to a less busy one. 20 ms was too short on a
# loaded 2-core machine: a peer not scheduled in time lost a starting burst 6/2.
DEFER_MAX = 0.1
ACCEPT_BURST = 64  # connections accepted per wake-up at most, so requests under way still run
ACCEPT_FAILED_PAUSE = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


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

    def __init__(self, config: ServerConfig, sock: socket.socket, loads: WorkerLoads,
                 first_start: bool) -> None:
        super().__init__(config)
        config.connections_changed = self.connections_changed
        self.sock = sock
        self.loads = loads
        self.first_start = first_start
        self._stopping = False
        self._accepting: asyncio.Task[None] | None = None

    def connections_changed(self) -> None:
        if not self._stopping:  # a stopping worker's closing connections must not advertise it
            self.loads.set(len(self.server_state.connections))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app and its lifespan, with no listener of uvicorn's
        if self.should_exit:
            return
        self.sock.setblocking(False)
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())
        self._accepting.add_done_callback(self._accepting_ended)

    def _accepting_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # A worker that no longer accepts would look idle to the others for ever: it stops,
            # and the parent starts another.
            log.error("the accept loop failed; the worker stops", exc_info=task.exception())
            self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stopping = True
        self.loads.set(ABSENT)
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
        await super().shutdown(sockets=None)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        factory = self._protocol_factory()
        self.connections_changed()  # started: no longer ABSENT to the others
        if self.first_start:
            # The first connections of a new server would be taken by whichever worker started
            # first, and kept: so they wait until all workers have started (or STARTUP_WAIT).
            deadline = loop.time() + STARTUP_WAIT
            while not self.loads.all_started() and loop.time() < deadline:
                await asyncio.sleep(DEFER_STEP * 10)
            if not self.loads.all_started():
                log.warning("not every worker started within %.0f s; accepting without them",
                            STARTUP_WAIT)
        while True:
            await _readable(loop, self.sock)
            await self._accept_waiting(loop, factory)

    async def _accept_waiting(self, loop: asyncio.AbstractEventLoop, factory: Any) -> None:
        """Accept the connections waiting, one at a time while no other worker is less busy.

        Once a less busy worker has left one waiting for DEFER_MAX (its loop may be busy with a
        long request), this worker takes what waits, up to ACCEPT_BURST."""
        deadline = loop.time() + DEFER_MAX
        accepted = 0
        while accepted < ACCEPT_BURST:
            if self.loads.busier_than_another() and loop.time() < deadline:
                await asyncio.sleep(DEFER_STEP)
                continue
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # none waits (another worker took it)
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:  # wait for connections to close, as asyncio does
                    log.warning("accepting connections paused for %.0f s: %s",
                                ACCEPT_FAILED_PAUSE, exc)
                    await asyncio.sleep(ACCEPT_FAILED_PAUSE)
                return  # else the client gave up before its connection was accepted
            accepted += 1
            # Shielded from a stop, which cancels this loop: cancelled while it waited for the
            # connection it had just accepted, uvloop closed that connection under the request
            # already read from it, telling the protocol nothing; the request's answer raised
            # on the closed transport and the stop waited for ever for it to close. Left to
            # finish, the connection is one more the stop lets answer and close.
            connecting = asyncio.ensure_future(loop.connect_accepted_socket(factory, conn))
            connecting.add_done_callback(partial(_served_or_closed, conn))
            with contextlib.suppress(OSError):  # logged, and the socket closed, by the callback
                await asyncio.shield(connecting)

    def _protocol_factory(self) -> Any:
        config = self.config

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state)

        return create_protocol


def _served_or_closed(conn: socket.socket, connecting: asyncio.Future[Any]) -> None:
    if not connecting.cancelled() and isinstance(connecting.exception(), OSError):
        log.info("an accepted connection closed before it was served: %s", connecting.exception())
        conn.close()


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
