"""The busiest xAPI resources answered without FastAPI's router and dependency solver.

Statements and documents are what learning tools send all day. FastAPI 0.165 walks its
included routers, matches, and solves a route's dependency tree on every request; for a
document GET that cost a worker 430 us of CPU per request where the same endpoint called
directly cost 295 (wrk, 2 workers), and for a batch-1 statement POST a fifth of the worker's
time. The routes stay declared on their APIRouters, so OpenAPI and every other route are
unchanged; this middleware, the innermost, calls the same endpoint functions with the same
dependencies, each taken in the order of the endpoint's parameters, and hands what they raise
to the app's own exception handlers (Starlette's ExceptionMiddleware, as a route has them).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.params import Depends
from fastapi.routing import APIRoute, APIRouter
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.responses import Response
from starlette.routing import request_response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[..., Awaitable[Any]]
Argument = Callable[[Request], Awaitable[Any]] | None  # None: the request itself


def direct_arguments(endpoint: Endpoint) -> list[tuple[str, Argument]] | None:
    """How to call ``endpoint`` without FastAPI: each parameter is the Request or a dependency
    that takes only the request. None when any parameter is something else (a query or path
    parameter, a body model, a dependency with dependencies of its own): FastAPI answers it."""
    if not inspect.iscoroutinefunction(endpoint):  # FastAPI runs a plain def in a thread
        return None
    hints = _type_hints(endpoint)
    if hints is None:
        return None
    arguments: list[tuple[str, Argument]] = []
    for name in inspect.signature(endpoint).parameters:
        hint = hints.get(name)
        if hint is Request:
            arguments.append((name, None))
            continue
        depends = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Depends)]
        if len(depends) != 1 or depends[0].dependency is None:
            return None
        dependency = depends[0].dependency
        takes = _type_hints(dependency)
        if not inspect.iscoroutinefunction(dependency) or takes is None or [
                takes.get(p) for p in inspect.signature(dependency).parameters] != [Request]:
            return None
        arguments.append((name, dependency))
    return arguments


def _type_hints(function: Callable[..., Any]) -> dict[str, Any] | None:
    """Its resolved annotations, Annotated kept; None for one only FastAPI's own resolution
    may read."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):
        return None


def _called_directly(endpoint: Endpoint, arguments: list[tuple[str, Argument]]) -> ASGIApp:
    async def answer(request: Request) -> Response:
        kwargs = {name: request if argument is None else await argument(request)
                  for name, argument in arguments}
        response = await endpoint(**kwargs)
        if not isinstance(response, Response):  # FastAPI would serialise it; ours never ask
            raise TypeError(f"{endpoint.__qualname__} returned a {type(response).__name__},"
                            " not a Response")
        return response

    return request_response(answer)


def direct_routes(routers: Sequence[tuple[str, APIRouter]]) -> dict[tuple[str, str], ASGIApp]:
    """(method, path) -> the endpoint called directly, for each route of ``routers`` (each
    under its prefix, included without dependencies of the include's own) that has no path
    parameters and no dependencies beyond its parameters', and can be called so."""
    table: dict[tuple[str, str], ASGIApp] = {}
    for prefix, router in routers:
        for route in router.routes:
            # A guard declared on the route or its router, not as a parameter, is FastAPI's to
            # run: such a route is left to it, never answered without its guard.
            if (not isinstance(route, APIRoute) or route.param_convertors or route.dependencies
                    or router.dependencies):
                continue
            arguments = direct_arguments(route.endpoint)
            if arguments is None or [d.call for d in route.dependant.dependencies] != [
                    argument for _, argument in arguments if argument is not None]:
                continue
            for method in route.methods or ():
                table.setdefault((method, prefix + route.path),
                                 _called_directly(route.endpoint, arguments))
    return table


class DirectRoutes:
    """Answers a request whose method and path are exactly one of ``routes``; the app's
    router answers everything else (another path, a trailing slash, OPTIONS), and every
    request while the app has dependency overrides."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], ASGIApp],
                 exception_handlers: Mapping[Any, Callable[..., Any]],
                 dependency_overrides: Mapping[Any, Any] | None = None) -> None:
        self.app = app
        # The app's own dict: an override set later (a test's fake credential) sends every
        # request to the router, which honours it.
        self.overrides = dependency_overrides if dependency_overrides is not None else {}
        # What Starlette puts around its router: every handler but the 500 one, which
        # ServerErrorMiddleware (outermost) answers for any exception left unhandled.
        handlers = {key: handler for key, handler in exception_handlers.items()
                    if key not in (500, Exception)}
        self.routes = {key: ExceptionMiddleware(route, handlers=handlers)
                       for key, route in routes.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.overrides:
            route = self.routes.get((scope["method"], scope["path"]))
            if route is not None:
                await route(scope, receive, send)
                return
        await self.app(scope, receive, send)
