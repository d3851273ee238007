"""The accept loop of `lrs serve --workers N` (lrs/api/balance.py), one worker's server in-process
on a real loopback socket, its peers' connection counts written by the test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from lrs.api.balance import ABSENT, DEFER_MAX, BalancedServer, WorkerLoads
from lrs.api.server import ClientTimeouts, DeadlineProtocol, ServerConfig
from tests.loops import run as run_coroutine


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def worker(sock: socket.socket, slots: list[int], number: int = 0,
           app: ASGIApp = hello) -> BalancedServer:
    config = ServerConfig(app, ClientTimeouts(), http=DeadlineProtocol, lifespan="off",
                          log_level="warning")
    return BalancedServer(config, sock, WorkerLoads(slots, number), first_start=False)


async def get(port: int) -> tuple[bytes, asyncio.StreamWriter]:
    """One request on a new connection, left open; the answer's first line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await writer.drain()
    return await asyncio.wait_for(reader.readline(), 10), writer


def serving(server: BalancedServer, body: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        task = asyncio.create_task(server._serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            await body()
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)

    run_coroutine(run())


def test_a_worker_counts_its_open_connections_where_the_others_read_them() -> None:
    sock, slots = listening(), [0, 0]
    server = worker(sock, slots)

    async def body() -> None:
        first, a = await get(sock.getsockname()[1])
        second, b = await get(sock.getsockname()[1])
        assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
        assert slots[0] == 2
        a.close()
        await a.wait_closed()
        for _ in range(100):
            if slots[0] == 1:
                break
            await asyncio.sleep(0.01)
        assert slots[0] == 1
        b.close()

    serving(server, body)
    sock.close()


def test_a_busier_worker_still_takes_connections_no_other_worker_takes() -> None:
    """Its peer holds fewer connections but does not accept (its loop is busy, or it hangs):
    the connections are served after DEFER_MAX, together, not one per DEFER_MAX."""
    sock, slots = listening(), [0, 0]  # the peer (slot 1) stays at 0 and never accepts
    server = worker(sock, slots)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        first, _ = await get(sock.getsockname()[1])
        assert first.startswith(b"HTTP/1.1 200") and slots == [1, 0]
        started = loop.time()
        answers = await asyncio.gather(*(get(sock.getsockname()[1]) for _ in range(20)))
        assert all(line.startswith(b"HTTP/1.1 200") for line, _ in answers)
        assert loop.time() - started < DEFER_MAX * 10

    serving(server, body)
    sock.close()


class RecordedSlots(list[int]):
    """The shared counts, with every write to them kept in order."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(values)
        self.writes: list[tuple[int, int]] = []

    def __setitem__(self, index: int, value: int) -> None:  # type: ignore[override]
        self.writes.append((index, value))
        super().__setitem__(index, value)


def test_a_stopping_worker_is_absent_to_the_others_while_its_connections_close() -> None:
    """Otherwise, as its connections closed, it would advertise itself as the least busy and
    every other worker would wait on it before each accept."""
    sock, slots = listening(), RecordedSlots([0, 3])
    server = worker(sock, slots)
    # Open until the server has stopped: uvicorn closes them as it stops.
    held: list[tuple[bytes, asyncio.StreamWriter]] = []

    async def body() -> None:
        held.extend([await get(sock.getsockname()[1]) for _ in range(3)])
        assert slots[0] == 3

    serving(server, body)
    mine = [value for index, value in slots.writes if index == 0]
    assert ABSENT in mine
    assert all(value == ABSENT for value in mine[mine.index(ABSENT):]), mine
    sock.close()


def test_a_worker_whose_accept_loop_fails_stops() -> None:
    """A worker that no longer accepts would look idle to the others for ever; it stops, and
    the parent starts another."""
    sock, slots = listening(), [0, 0]
    server = worker(sock, slots)

    def broken() -> asyncio.Protocol:
        raise RuntimeError("no protocol")

    server._protocol_factory = lambda: broken  # type: ignore[method-assign]

    async def run() -> None:
        task = asyncio.create_task(server._serve())
        while not server.started:
            await asyncio.sleep(0.01)
        with socket.create_connection(sock.getsockname(), timeout=5):
            await asyncio.wait_for(task, 10)  # ends by itself

    run_coroutine(run())
    assert slots[0] == ABSENT
    sock.close()


def test_a_connection_accepted_as_the_worker_stops_is_answered_and_never_written_after_close() -> None:
    """A stop cancels the accept loop; when it did so while the loop waited for a connection it
    had just accepted (whose request was already read), uvloop closed that connection under its
    request, with no word to the protocol, and the request's answer raised on the closed
    transport: a traceback in the log of `lrs serve` stopped under load. On the loop the
    server runs (uvloop), the request is answered as any other is while its worker stops."""
    import uvloop

    sock, slots = listening(), [0, 0]
    arrived, release = asyncio.Event(), asyncio.Event()
    failures: list[BaseException] = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        arrived.set()
        await release.wait()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"late"})
        except Exception as exc:  # what the test looks at
            failures.append(exc)

    server = worker(sock, slots, app=slow)
    made = server._protocol_factory()

    def stopping_as_it_connects() -> asyncio.Protocol:
        protocol = made()
        connected = protocol.connection_made

        def connection_made(transport: asyncio.BaseTransport) -> None:
            connected(transport)  # type: ignore[arg-type]
            assert server._accepting is not None
            server._accepting.cancel()  # as a stop does, while the accept awaits this connection

        protocol.connection_made = connection_made  # type: ignore[method-assign]
        return protocol

    server._protocol_factory = lambda: stopping_as_it_connects  # type: ignore[method-assign]

    # Sent before the worker accepts, so its request is read in the turn that connects it.
    client = socket.create_connection(sock.getsockname(), timeout=10)
    client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    client.setblocking(False)

    async def run() -> tuple[bytes, bool]:
        task = asyncio.create_task(server._serve())
        await asyncio.wait_for(arrived.wait(), 10)
        server.should_exit = True
        await asyncio.sleep(0.2)  # the stop under way, the request still in hand
        release.set()
        answer = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 64), 10)
        client.close()
        try:
            await asyncio.wait_for(task, 10)
        except TimeoutError:
            return answer, False
        return answer, True

    answer, stopped = run_coroutine(run(), loop_factory=uvloop.new_event_loop)
    sock.close()
    assert failures == []
    assert answer.startswith(b"HTTP/1.1 200")
    assert stopped, "the worker's stop waited for a connection that was closed under it"
