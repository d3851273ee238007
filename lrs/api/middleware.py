"""Transport rules that hold for every xAPI request, as plain ASGI middleware."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lrs.api.services import consistent_through
from lrs.errors import PayloadTooLarge
from schemas.version import UnsupportedVersion, negotiate

VERSION_HEADER = "X-Experience-API-Version"


async def send_error(send: Send, status: int, message: str, version: str = "1.0.3") -> None:
    body = orjson.dumps({"error": {"status": status, "message": message}})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (VERSION_HEADER.lower().encode(), version.encode())]})
    await send({"type": "http.response.body", "body": body})


class XAPIVersionMiddleware:
    """Every xAPI request names its version, and every response answers with ours (Comm. 3.3)."""

    def __init__(self, app: ASGIApp, prefix: str = "/xAPI", default_version: str = "2.0.0") -> None:
        self.app = app
        self.prefix = prefix
        self.default_version = default_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get(VERSION_HEADER)
        answer = _answered_version(header, self.default_version)

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if VERSION_HEADER not in headers:
                    headers.append(VERSION_HEADER, answer)
            await send(message)

        path: str = scope["path"]
        needs_version = (path.startswith(self.prefix + "/") and path != self.prefix + "/about"
                         and scope["method"] != "OPTIONS" and not _is_alternate_syntax(scope))
        if needs_version:
            try:
                scope.setdefault("state", {})["xapi_version"] = negotiate(header)
            except UnsupportedVersion as exc:
                await send_error(send, 400, str(exc), answer)
                return
        await self.app(scope, receive, send_with_version)


def _answered_version(header: str | None, default: str) -> str:
    """The version a response names: the request's, or the deployment's when it names none."""
    if header is None or not header.strip():
        return default
    return "2.0.0" if header.strip().startswith("2") else "1.0.3"


class ConsistentThroughMiddleware:
    """Every response of the Statements resource says how current it is, errors included
    (Communication 2.1.3): clients wait on this header before reading what they wrote."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-experience-api-consistent-through" not in headers:
                    # The caller's store's, once the route resolved it; else `default`'s.
                    services = (scope.get("state") or {}).get("store_services") \
                        or scope["app"].state.services
                    headers.append("X-Experience-API-Consistent-Through",
                                   await consistent_through(services.committer))
            await send(message)

        await self.app(scope, receive, send_with_header)


class BodyLimitMiddleware:
    """Refuse bodies larger than the configured limit with 413, before reading them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_multipart_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_bytes
        self.max_multipart_bytes = max_multipart_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # Only statements carry attachments; a document labelled multipart is still a document.
        attachments = (scope["path"].rstrip("/").endswith("/statements")
                       and headers.get("content-type", "").lower().startswith("multipart/mixed"))
        limit = self.max_multipart_bytes if attachments else self.max_body_bytes
        setting = "LRS_MAX_REQUEST_BYTES" if attachments else "LRS_MAX_BODY_BYTES"
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(send, 413, f"the request body is {declared} bytes; the limit is"
                             f" {limit} bytes ({setting})")
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"the request body exceeds the limit of {limit}"
                                      f" bytes ({setting})")
            return message

        await self.app(scope, counting_receive, send)


def _nul_in(fields: dict[str, str]) -> str | None:
    for name, value in fields.items():
        if "\x00" in name or "\x00" in value:
            return f"'{name.replace(chr(0), '%00')}': must not contain the NUL character (%00)"
    return None


class RequestTextMiddleware:
    """A path or query parameter with NUL cannot be kept or looked up (PostgreSQL's text refuses
    it); it is refused here, once, instead of failing deep inside a store."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            if "\x00" in scope["path"]:
                await send_error(send, 400, "path: must not contain the NUL character (%00)")
                return
            if b"%00" in query or b"\x00" in query:
                problem = _nul_in(dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)))
                if problem is not None:
                    await send_error(send, 400, f"query parameter {problem}")
                    return
        await self.app(scope, receive, send)


IGNORED_PARAMETERS = frozenset({"cachebuster"})


class IgnoredParametersMiddleware:
    """Browser clients (the @xapi/xapi library) add ``cachebuster`` to every GET to defeat
    caches; no resource has such a parameter, so it is dropped before any resource sees it."""

    def __init__(self, app: ASGIApp, prefix: str = "/xAPI") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if b"cachebuster" in query and scope["path"].startswith(self.prefix):
            kept = [(k, v) for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
                    if k not in IGNORED_PARAMETERS]
            scope = {**scope, "query_string": urlencode(kept).encode()}
        await self.app(scope, receive, send)


_FORM_HEADERS = ("authorization", "x-experience-api-version", "content-type", "if-match",
                 "if-none-match")


def _is_alternate_syntax(scope: Scope) -> bool:
    return scope["method"] == "POST" and b"method=" in scope.get("query_string", b"")


class AlternateRequestSyntaxMiddleware:
    """Cross-origin clients of xAPI 1.0.3 may send any request as a form POST (Comm. 1.3)."""

    def __init__(self, app: ASGIApp, prefix: str = "/xAPI", default_version: str = "2.0.0") -> None:
        self.app = app
        self.prefix = prefix
        self.default_version = default_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix) \
                or not _is_alternate_syntax(scope):
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        method = query.pop("method", "").upper()
        if query:
            await send_error(send, 400, "with the alternate request syntax, 'method' must be the"
                             f" only query parameter (found {', '.join(sorted(query))})")
            return
        if method not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
            await send_error(send, 400, f"method '{method}' is not an xAPI request method")
            return
        real = Headers(scope=scope)
        content_type = real.get("content-type", "")
        if not content_type and real.get("content-length", "0") in ("", "0"):
            await send_error(send, 400, "the alternate request syntax sends the request as a form"
                             " body (application/x-www-form-urlencoded); this request has none")
            return
        if not content_type.startswith("application/x-www-form-urlencoded"):
            await send_error(send, 415, "the alternate request syntax needs Content-Type"
                             " application/x-www-form-urlencoded")
            return
        try:
            raw = await _read_body(receive)
        except PayloadTooLarge as exc:  # raised outside the app, whose handlers answer 413
            await send_error(send, 413, str(exc))
            return
        try:
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                  errors="strict"))
        except UnicodeDecodeError as exc:
            await send_error(send, 400, "the alternate request syntax form is not UTF-8"
                             f" (invalid byte at position {exc.start})")
            return
        problem = _nul_in(form)
        if problem is not None:
            await send_error(send, 400, f"form field {problem}")
            return
        content = form.pop("content", "").encode("utf-8")
        # The request's own headers stand, and the form's header fields are added over them.
        headers = {name.lower(): value.encode("latin-1") for name, value in real.items()
                   if name.lower() not in ("content-type", "content-length")}
        for name in list(form):
            if name.lower() in _FORM_HEADERS:
                headers[name.lower()] = form.pop(name).encode("utf-8")
        version = headers.get(VERSION_HEADER.lower(), b"").decode("latin-1")
        if _answered_version(version, self.default_version) == "2.0.0":
            await send_error(send, 400, "the alternate request syntax (method=...) is not part of"
                             " xAPI 2.0.0; send the request with its own method and headers",
                             "2.0.0")
            return
        if content and "content-type" not in headers:
            headers["content-type"] = b"application/json"
        headers["content-length"] = str(len(content)).encode()
        rewritten = {**scope, "method": method,
                     "headers": [(name.encode(), value) for name, value in headers.items()],
                     "query_string": urlencode(form).encode()}
        scope.setdefault("state", {})
        await XAPIVersionMiddleware(self.app, self.prefix, self.default_version)(
            rewritten, _replay(content), send
        )


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
