"""Slow clients cannot hold the server: real sockets against `lrs serve`'s uvicorn server.

The server runs in a thread on a free loopback port. Socket timeouts only bound how long a test
waits for the server to act; no assertion is about time.
"""

from __future__ import annotations

import base64
import http.client
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from lrs.config import Settings
from tests.live_server import WAIT, Address, running

AUTHORIZATION = "Basic " + base64.b64encode(b"admin:admin-secret").decode()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Address]]:
    """Start the LRS with these settings; its clients' sockets close before it stops."""
    with ExitStack() as stack:
        def start(**overrides: Any) -> Address:
            settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0,
                                bootstrap_credential="admin:admin-secret", projections="off",
                                **overrides)
            return stack.enter_context(running(settings))

        yield start


@pytest.fixture
def connect() -> Iterator[Callable[[Address], socket.socket]]:
    with ExitStack() as stack:
        def open_connection(address: Address) -> socket.socket:
            return stack.enter_context(socket.create_connection(address, timeout=WAIT))

        yield open_connection


def read_until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails)."""
    received = b""
    for _ in range(1000):
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError("the server kept sending")


def read_response(conn: socket.socket) -> bytes:
    """One response with a Content-Length, leaving the connection open."""
    received = b""
    for _ in range(1000):
        head, sep, body = received.partition(b"\r\n\r\n")
        if sep:
            length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                          if line.startswith(b"content-length:"))
            if len(body) >= length:
                return received
        received += conn.recv(65536)
    raise AssertionError("no complete response")


def request_head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: {AUTHORIZATION}",
             "X-Experience-API-Version: 1.0.3", *(f"{k.replace('_', '-')}: {v}"
                                                  for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def get_about(address: Address) -> int:
    conn = http.client.HTTPConnection(*address, timeout=WAIT)
    try:
        conn.request("GET", "/xAPI/about")
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_request_line_that_stalls_gets_408_and_is_closed(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    conn = connect(serve(header_timeout_seconds=1))
    conn.sendall(b"GET /xAPI/ab")
    answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"LRS_HEADER_TIMEOUT_SECONDS" in answer


def test_a_connection_that_sends_nothing_is_closed(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    conn = connect(serve(header_timeout_seconds=1))
    assert read_until_closed(conn) == b""


def test_a_second_request_that_stalls_on_a_kept_alive_connection_is_closed(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    conn = connect(serve(header_timeout_seconds=1))
    conn.sendall(request_head("GET", "/xAPI/about"))
    first = read_response(conn)
    assert first.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in first.lower()
    conn.sendall(b"GET /xAPI/about HTTP/1.1\r\nHost: 127")
    answer = read_until_closed(conn)
    assert b"HTTP/1.1 408 " in answer


def test_a_body_that_stalls_gets_408_and_is_closed(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    conn = connect(serve(body_idle_timeout_seconds=1))
    conn.sendall(request_head("POST", "/xAPI/statements", Content_Type="application/json",
                              Content_Length="1000") + b'{"actor": ')
    answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"LRS_BODY_IDLE_TIMEOUT_SECONDS" in answer


def trickle(conn: socket.socket, every: float) -> bytes:
    """Send one body byte every ``every`` seconds (at most 100) until the server answers."""
    conn.settimeout(every)
    for _ in range(100):
        try:
            conn.sendall(b" ")
            return conn.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return b""
    return b""


def test_a_body_that_trickles_past_the_body_timeout_gets_408(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    conn = connect(serve(body_idle_timeout_seconds=5, body_timeout_seconds=1.5))
    conn.sendall(request_head("POST", "/xAPI/statements", Content_Type="application/json",
                              Content_Length="1000"))
    answer = trickle(conn, every=0.2)  # never idle long, but never finishing
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"LRS_BODY_TIMEOUT_SECONDS" in answer


def test_a_body_that_trickles_under_the_minimum_rate_gets_408(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    """A byte every few seconds is never idle long enough, yet held a connection ten minutes."""
    conn = connect(serve(body_idle_timeout_seconds=1, body_timeout_seconds=600,
                         body_min_bytes_per_second=100))
    conn.sendall(request_head("POST", "/xAPI/statements", Content_Type="application/json",
                              Content_Length="1000"))
    answer = trickle(conn, every=0.3)  # never idle for 1 s, 3 bytes/s on average
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"LRS_BODY_MIN_BYTES_PER_SECOND" in answer


def test_a_request_over_the_connection_cap_gets_503(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    address = serve(max_connections=2, header_timeout_seconds=60)
    for _ in range(2):
        connect(address).sendall(b"GET /xAPI/about HTTP/1.1\r\n")
    conn = connect(address)
    conn.sendall(request_head("GET", "/xAPI/about"))
    assert read_until_closed(conn).startswith(b"HTTP/1.1 503 ")


def test_every_connection_up_to_the_cap_is_served_while_slow_ones_are_held(
        serve: Callable[..., Address], connect: Callable[[Address], socket.socket]) -> None:
    address = serve(max_connections=3, header_timeout_seconds=60, body_idle_timeout_seconds=60)
    connect(address).sendall(b"GET /xAPI/about HTTP/1.1\r\n")
    connect(address).sendall(request_head("POST", "/xAPI/statements", Content_Length="1000",
                                          Content_Type="application/json"))
    assert get_about(address) == 200
