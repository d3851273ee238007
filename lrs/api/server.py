"""The uvicorn server `lrs serve` runs, with deadlines that stop slow clients holding it.

uvicorn closes idle keep-alive connections and can cap open connections, but waits for ever on
a client that sends half a request line, or headers and then a body that never comes. The
protocol here gives each request's headers and body a deadline; on expiry the client gets 408
(when no response has started) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from lrs.api.middleware import VERSION_HEADER
from lrs.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientTimeouts:
    """Seconds a client may take over a request's headers, between body chunks, over the body."""

    headers: float = 10.0
    body_idle: float = 30.0
    body: float = 600.0
    body_min_rate: float = 500.0  # bytes a second, on average, once the body is under way

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientTimeouts:
        return cls(settings.header_timeout_seconds, settings.body_idle_timeout_seconds,
                   settings.body_timeout_seconds, settings.body_min_bytes_per_second)


class ServerConfig(Config):
    """uvicorn's Config, carrying the timeouts to each connection's protocol."""

    def __init__(self, app: ASGIApp, timeouts: ClientTimeouts, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.client_timeouts = timeouts
        # Told when a connection opens or closes (lrs/api/balance.py counts them).
        self.connections_changed: Callable[[], None] | None = None


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for each request's headers and body."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.timeouts = (config.client_timeouts if isinstance(config, ServerConfig)
                         else ClientTimeouts())
        self._headers_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._message_begun = False
        self._body_began = self._body_last = self._rate_since = 0.0
        self._body_bytes = 0
        self._connections_changed = (config.connections_changed if isinstance(config, ServerConfig)
                                     else None)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # Every write of the connection, the protocol's own (400, 408) as each response's, goes
        # through one PairedWrites, so they reach the socket in the order they were made.
        super().connection_made(PairedWrites(transport, self.loop))  # type: ignore[arg-type]
        self._start_headers_clock()
        if self._connections_changed is not None:
            self._connections_changed()

    def data_received(self, data: bytes) -> None:
        # Bytes between requests begin the next one (uvicorn drops its keep-alive timer here).
        if self.cycle is None or self.cycle.response_complete:
            self._start_headers_clock()
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._message_begun = True
        self._start_headers_clock()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._message_begun = False
        self._stop_clocks()
        super().on_headers_complete()
        self._body_began = self._body_last = self._rate_since = self.loop.time()
        self._body_bytes = 0
        self._body_timer = self.loop.call_later(
            min(self.timeouts.body_idle, self.timeouts.body), self._check_body)

    def on_body(self, body: bytes) -> None:
        # Only noted here: a timer per chunk would cost more than the check it makes.
        self._body_last = self.loop.time()
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._stop_clocks()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clocks()
        super().connection_lost(exc)
        if self._connections_changed is not None:
            self._connections_changed()

    def _stop_clocks(self) -> None:
        for timer in (self._headers_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._headers_timer = self._body_timer = None

    def _start_headers_clock(self) -> None:
        if self._headers_timer is None:
            self._headers_timer = self.loop.call_later(self.timeouts.headers, self._check_headers)

    def _check_headers(self) -> None:
        self._headers_timer = None
        if self._waiting_on_us():
            self._start_headers_clock()
            return
        answer = self._message_begun and (self.cycle is None or self.cycle.response_complete)
        self._time_out(f"the request headers were not complete within {self.timeouts.headers:g} s"
                       " (LRS_HEADER_TIMEOUT_SECONDS)", answer)

    def _check_body(self) -> None:
        self._body_timer = None
        now = self.loop.time()
        if self._waiting_on_us():  # the rate is measured from here again
            self._body_last = now
            self._rate_since, self._body_bytes = now, 0
        elapsed = now - self._rate_since
        # A byte every few seconds never stalls long enough to be idle: held a thousand
        # connections for ten minutes each from one address.
        too_slow = (self.timeouts.body_min_rate > 0 and elapsed >= self.timeouts.body_idle
                    and self._body_bytes < self.timeouts.body_min_rate * elapsed)
        if now - self._body_began >= self.timeouts.body:
            message = (f"the request body was not complete within {self.timeouts.body:g} s"
                       " (LRS_BODY_TIMEOUT_SECONDS)")
        elif now - self._body_last >= self.timeouts.body_idle:
            message = (f"the request body stalled for {self.timeouts.body_idle:g} s"
                       " (LRS_BODY_IDLE_TIMEOUT_SECONDS)")
        elif too_slow:
            message = (f"the request body arrived at {self._body_bytes / elapsed:.0f} bytes/s, under"
                       f" {self.timeouts.body_min_rate:g} (LRS_BODY_MIN_BYTES_PER_SECOND)")
        else:
            deadline = min(self._body_began + self.timeouts.body,
                           self._body_last + self.timeouts.body_idle)
            self._body_timer = self.loop.call_later(deadline - now, self._check_body)
            return
        self._time_out(message, answer=not self.cycle.response_started and not self.pipeline)

    def _waiting_on_us(self) -> bool:
        """The client is not the slow one: we paused reading, or it awaits our 100 Continue."""
        return bool(self.flow.read_paused or (self.cycle is not None and not self.cycle.response_complete
                                              and self.cycle.waiting_for_100_continue))

    def _time_out(self, message: str, answer: bool) -> None:
        if self.transport.is_closing():
            return
        log.info("closing the connection from %s: %s", self.client, message)
        if answer:
            self.transport.write(_response_408(message, self.server_state.default_headers))
        if self.cycle is not None and not self.cycle.response_complete:
            # The app's receive answers http.disconnect and its sends are dropped.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


class PairedWrites:
    """A connection's transport as its protocol sees it: a write waits for the next one, and
    both leave in one system call. uvicorn writes a response's head and body apart, and each
    write of a batch-1 answer of 278 bytes was a system call that woke the client (twice, for a
    client that reads as bytes arrive). A write that nothing follows in the same turn of the loop
    (a head whose streamed body is not ready yet, a 100 Continue) leaves at the turn's end, and
    before anything written after it; everything else is the transport's own."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.writelines((held, data))
        else:
            # Kept past the caller's return: a buffer it may fill again is copied.
            self._held = data if type(data) is bytes else bytes(data)
            self._loop.call_soon(self.flush)

    def writelines(self, lines: Iterable[bytes]) -> None:
        self.flush()
        self._transport.writelines(lines)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _response_408(message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    body = orjson.dumps({"error": {"status": 408, "message": message}})
    headers = [*default_headers, (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
               (VERSION_HEADER.lower().encode(), b"1.0.3")]
    return STATUS_LINE[408] + b"".join(name + b": " + value + b"\r\n"
                                       for name, value in headers) + b"\r\n" + body


class ClientGoneMiddleware:
    """A client that goes away mid-request (or is cut off by a deadline) ends it quietly.

    Without this, the app's catch-all handler and uvicorn would each log a traceback for every
    such client, and a slow client would be a way to flood the logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.info("the client went away before its request was read: %s %s",
                     scope.get("method"), scope.get("path"))


def server_config(app: ASGIApp, settings: Settings) -> ServerConfig:
    """The server's configuration for `app`, on LRS_HOST:LRS_PORT, within the client limits."""
    return ServerConfig(
        app, ClientTimeouts.from_settings(settings), host=settings.host, port=settings.port,
        http=DeadlineProtocol, log_level="info", access_log=False,
        # uvicorn answers 503 once open connections, counting the asking one, reach the limit.
        limit_concurrency=settings.max_connections + 1,
        # X-Forwarded-For is believed only from LRS_TRUSTED_PROXIES (lrs/api/ratelimit.py);
        # uvicorn would otherwise believe it from 127.0.0.1.
        proxy_headers=False,
    )


def build_server(app: ASGIApp, settings: Settings) -> uvicorn.Server:
    return uvicorn.Server(server_config(app, settings))
