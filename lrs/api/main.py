"""Assembles the HTTP application; everything it uses is built in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.cors import CORSMiddleware

from lrs import __version__
from lrs.api.deps import STORE_HEADER
from lrs.api.direct import DirectRoutes, direct_routes
from lrs.api.errors import install_error_handlers
from lrs.api.middleware import (
    VERSION_HEADER,
    AlternateRequestSyntaxMiddleware,
    BodyLimitMiddleware,
    ConsistentThroughMiddleware,
    IgnoredParametersMiddleware,
    RequestTextMiddleware,
    XAPIVersionMiddleware,
)
from lrs.api.openapi import install_openapi
from lrs.api.ratelimit import AccessLimitMiddleware, AccessLimits
from lrs.api.routers import (
    about,
    admin,
    analytics,
    definitions,
    documents,
    erasure,
    home,
    people,
    statements,
)
from lrs.api.server import ClientGoneMiddleware
from lrs.api.services import Services
from lrs.config import Settings
from lrs.dashboard import pages as dashboard
from lrs.request_loop import HEAVY_AT_ONCE

XAPI_PREFIX = "/xAPI"
# FastAPI's own OpenTelemetry follows any provider set up in the process (opentelemetry-instrument,
# a site-wide SDK): each request's span carried its query string, which names learners
# (agent={"mbox": ...}), to wherever traces go. Off; looking for a provider also cost every
# request 3 us.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings, start: Callable[[], Services] | None = None,
               limits: AccessLimits | None = None) -> FastAPI:
    """``start`` builds the services at start-up and ``limits`` counts failed authentications; a
    worker process passes its own, which the parent answers (lrs/api/workers.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = start() if start is not None else Services.start(settings)
        app.state.services = services
        app.state.heavy_work = anyio.CapacityLimiter(HEAVY_AT_ONCE)  # lrs/request_loop.py
        try:
            yield
        finally:
            services.close()

    # /openapi.json and /docs are public, as the source is; /redoc is off (one viewer is enough).
    # /docs comes from the home router, with Swagger UI served from the app (no CDN).
    app = FastAPI(title="LRS", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  telemetry=NO_TELEMETRY)
    install_error_handlers(app)
    install_openapi(app)
    # What tools send all day, also answered directly (lrs/api/direct.py): included here
    # without dependencies of the include's own, which the direct path would not see.
    busiest = [(XAPI_PREFIX, statements.router), (XAPI_PREFIX, documents.router)]
    for prefix, router in busiest:
        app.include_router(router, prefix=prefix)
    app.include_router(definitions.router, prefix=XAPI_PREFIX)
    app.include_router(about.router, prefix=XAPI_PREFIX)
    app.include_router(analytics.router)
    app.include_router(people.router)
    app.include_router(admin.router)
    app.include_router(erasure.router)
    app.include_router(dashboard.router)
    app.include_router(home.router)
    # Added innermost first: CORS answers preflights before anything else looks at them.
    app.add_middleware(DirectRoutes, routes=direct_routes(busiest),
                       exception_handlers=app.exception_handlers,
                       dependency_overrides=app.dependency_overrides)
    app.add_middleware(ClientGoneMiddleware)
    app.add_middleware(AccessLimitMiddleware, limits=limits or AccessLimits(settings))
    app.add_middleware(AlternateRequestSyntaxMiddleware, prefix=XAPI_PREFIX,
                       default_version=settings.xapi_default_version)
    app.add_middleware(XAPIVersionMiddleware, prefix=XAPI_PREFIX,
                       default_version=settings.xapi_default_version)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       max_multipart_bytes=settings.max_request_bytes)
    app.add_middleware(RequestTextMiddleware)
    app.add_middleware(IgnoredParametersMiddleware, prefix=XAPI_PREFIX)
    app.add_middleware(ConsistentThroughMiddleware, path=f"{XAPI_PREFIX}/statements")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", VERSION_HEADER, "If-Match",
                       "If-None-Match", "Accept-Language", STORE_HEADER],
        expose_headers=[VERSION_HEADER, "X-Experience-API-Consistent-Through", "ETag",
                        "Last-Modified"],
    )
    return app
