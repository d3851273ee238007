"""Every error is JSON naming what was wrong; no input crashes the server."""

from __future__ import annotations

import logging

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from lrs.api.responses import JSON
from lrs.errors import LRSError, Unauthorized

log = logging.getLogger(__name__)


def error_response(status: int, message: str) -> JSON:
    headers = {"WWW-Authenticate": 'Basic realm="xAPI"'} if status == 401 else None
    return JSON({"error": {"status": status, "message": message}}, status_code=status,
                          headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LRSError)
    async def _lrs_error(_: Request, exc: LRSError) -> JSON:
        return error_response(exc.status if not isinstance(exc, Unauthorized) else 401, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_parameters(_: Request, exc: RequestValidationError) -> JSON:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return error_response(400, "; ".join(parts))

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSON:
        return error_response(exc.status_code, str(exc.detail))

    async def _store_unavailable(_: Request, exc: Exception) -> JSON:
        # The event store is down or unreachable (a lost connection, a lock not granted in
        # time): the client may send the same request again, so 503, not 500.
        log.warning("the event store is unavailable: %s", exc)
        answer = error_response(503, "the event store is unavailable; retry shortly (nothing"
                                     " of this request was acknowledged)")
        answer.headers["Retry-After"] = "1"
        return answer

    app.add_exception_handler(OperationalError, _store_unavailable)
    app.add_exception_handler(InterfaceError, _store_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSON:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "the LRS failed to handle this request; nothing was stored"
                              " unless it was acknowledged")
