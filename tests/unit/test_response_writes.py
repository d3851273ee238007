"""How a response leaves `lrs serve`'s protocol (lrs/api/server.py): uvicorn writes a response's
head and its body apart, and each write is a system call that wakes the client. On the loop the
server runs (uvloop), over a real loopback socket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send

from lrs.api.server import ClientTimeouts, DeadlineProtocol, PairedWrites, ServerConfig
from tests.loops import run


class RecordingTransport:
    """The connection's transport, with each write kept in order."""

    def __init__(self, transport: asyncio.Transport, writes: list[list[bytes]]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append([bytes(data)])
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        lines = [bytes(line) for line in lines]
        self._writes.append(lines)
        self._transport.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def serve(app: Any, body: Any) -> list[list[bytes]]:
    """Run ``body(port)`` against a server of ``app``; the writes its connections made."""
    writes: list[list[bytes]] = []

    class Recording(DeadlineProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(RecordingTransport(transport, writes))  # type: ignore[arg-type]

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    config = ServerConfig(app, ClientTimeouts(), http=Recording, lifespan="off",
                          log_level="warning")
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            await body(sock.getsockname()[1])
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)

    run(main(), loop_factory=uvloop.new_event_loop)
    sock.close()
    return writes


async def answer(port: int, request: bytes, *, until: bytes = b"hello") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    got = b""
    while until not in got:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        assert chunk, got
        got += chunk
    writer.close()
    return got


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


def test_a_responses_head_and_body_leave_in_one_write() -> None:
    async def body(port: int) -> None:
        for _ in range(3):
            got = await answer(port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\nhello")

    writes = serve(hello, body)
    assert len(writes) == 3, writes
    for lines in writes:
        assert len(lines) == 2 and lines[0].startswith(b"HTTP/1.1 200") and lines[1] == b"hello"


def test_a_head_whose_body_is_not_ready_leaves_at_once() -> None:
    """A streamed body that waits (an export's next rows) does not hold its head back."""
    gate: dict[str, asyncio.Event] = {}

    async def streamed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        gate["release"] = asyncio.Event()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await gate["release"].wait()
        await send({"type": "http.response.body", "body": b"hello"})

    async def body(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)  # before the body exists
        assert head.startswith(b"HTTP/1.1 200")
        gate["release"].set()
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
        assert b"hello" in rest
        writer.close()

    writes = serve(streamed, body)
    assert writes[0] == [writes[0][0]] and writes[0][0].startswith(b"HTTP/1.1 200")


def test_a_client_that_expects_100_continue_gets_it_before_it_sends_the_body() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(message["body"])).encode())]})
        await send({"type": "http.response.body", "body": message["body"]})

    async def body(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100")
        writer.write(b"hello")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        assert await asyncio.wait_for(reader.readexactly(5), 10) == b"hello"
        writer.close()

    writes = serve(echo, body)
    assert [len(lines) for lines in writes] == [1, 2], writes


class Wire:
    """What reaches the socket, in order: a stand-in transport for the ordering rule alone."""

    def __init__(self) -> None:
        self.bytes = b""
        self.calls = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.bytes += data
        self.calls += 1

    def writelines(self, lines: Any) -> None:
        self.bytes += b"".join(lines)
        self.calls += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_writes_reach_the_socket_in_the_order_they_were_made_whoever_makes_them() -> None:
    """The protocol's own writes (a 400, a 408) go through the same path as a response's, so a
    held write never arrives after one made later."""
    async def main() -> Wire:
        wire = Wire()
        writes = PairedWrites(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"1")  # held
        writes.write(b"2")  # leaves with 1
        writes.write(b"3")  # held
        writes.writelines([b"4", b"5"])  # 3 first
        writes.write(b"6")  # held, then left at the turn's end
        await asyncio.sleep(0)
        writes.write(b"7")  # held
        writes.close()  # 7 first
        return wire

    wire = run(main())
    assert wire.bytes == b"1234567" and wire.closed
    assert wire.calls == 5


def test_a_held_write_keeps_the_bytes_it_was_given_when_the_caller_reuses_its_buffer() -> None:
    async def main() -> Wire:
        wire = Wire()
        writes = PairedWrites(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
        buffer = bytearray(b"AAAA")
        writes.write(memoryview(buffer))  # held
        buffer[:] = b"BBBB"
        writes.write(memoryview(buffer))  # leaves with the first
        buffer[:] = b"CCCC"
        writes.write(memoryview(buffer))  # held
        buffer[:] = b"DDDD"
        await asyncio.sleep(0)
        return wire

    assert run(main()).bytes == b"AAAABBBBCCCC"
