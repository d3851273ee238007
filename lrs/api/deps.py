"""What many routes need: the caller's credential, its store's services and the negotiated version.

``ServicesDep`` is the services of the caller's own store, resolved from the credential: a route
that takes it cannot reach another store's log, documents, attachments or views.
``AppServicesDep`` is the deployment's (the `default` store's, with the catalogue and every
credential), for routes without a credential (health, sign-in) and for the admin routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.ratelimit import AccessLimits
from lrs.api.services import Services, StoreServices
from lrs.auth import Principal, parse_basic, secret_fingerprint
from lrs.errors import Forbidden, Unauthorized


# Dependencies are `async def` even where nothing is awaited: FastAPI runs a plain `def` in a
# thread of its pool, and each hand-off cost a request as much as opening a statement.
async def get_app_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppServicesDep = Annotated[Services, Depends(get_app_services)]


# The caller's dependencies take only the request: FastAPI walks every node of a route's
# dependency tree on each request, cached or not, and get_services taking the principal and the
# app's services as dependencies made eight nodes of a statement POST where four do. The
# principal is verified once per request all the same: it is kept in the request's state.
async def get_principal(request: Request) -> Principal:
    """The verified credential, within the failure and request-rate limits (429 over them)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is None:
        key, secret = parse_basic(request.headers.get("authorization"))
        known = await verify_credential(request, request.app.state.services, key, secret)
        request.state.principal = known
    return known


async def verify_credential(request: Request, services: Services, key: str, secret: str) -> Principal:
    """The credential for this key and secret (HTTP Basic, or the dashboard's sign-in form),
    within the failure and request-rate limits (RateLimited over them)."""
    limits: AccessLimits | None = getattr(request.state, "access_limits", None)
    if limits is None:  # an app assembled without AccessLimitMiddleware has no limits
        return await _verified(services, key, secret, secret_fingerprint(key, secret))
    peer = request.client.host if request.client else None
    # A proxy may append its own header line rather than extend the client's.
    forwarded_for = ", ".join(request.headers.getlist("x-forwarded-for"))
    address = limits.client_address(peer, forwarded_for)
    fingerprint = secret_fingerprint(key, secret)
    await limits.before_verify(key, fingerprint, address)
    try:
        principal = await _verified(services, key, secret, fingerprint)
    except Unauthorized:
        await limits.after_verify(key, fingerprint, address, ok=False)
        raise
    await limits.after_verify(key, fingerprint, address, ok=True)
    limits.take_request(principal.key)
    return principal


async def _verified(services: Services, key: str, secret: str, fingerprint: bytes) -> Principal:
    """A pair verified in the last minutes is answered from memory, on the event loop; only
    scrypt and the credential read need a thread."""
    known = services.authenticator.recently_verified(key, secret, fingerprint)
    if known is not None:
        return known
    return await run_in_threadpool(services.authenticator.verify, key, secret)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


STORE_HEADER = "X-LRS-Store"
DISTRICT_READS = frozenset({("GET", "/xAPI/statements"), ("HEAD", "/xAPI/statements")})


async def get_services(request: Request) -> StoreServices:
    """The caller's store's services (opened on its first request; 403 if archived).

    A district's credential reads statements of the other stores it was granted by naming one
    in X-LRS-Store; nothing else of theirs, and no other store."""
    resolved = await _resolve(request, request.app.state.services, await get_principal(request))
    # X-Experience-API-Consistent-Through is then this store's (lrs/api/middleware.py).
    request.state.store_services = resolved
    return resolved


async def _resolve(request: Request, services: Services, principal: Principal) -> StoreServices:
    """The store's services; a thread only when that needs a read or an opening (``ready``)."""
    wanted = request.headers.get(STORE_HEADER)
    if wanted is None or wanted == principal.store:
        ready = services.ready(principal.store)
        return ready if ready is not None else await run_in_threadpool(services.of, principal)
    if (request.method, request.url.path.rstrip("/")) not in DISTRICT_READS:
        raise Forbidden(f"{STORE_HEADER} names another store only on GET /xAPI/statements, for"
                        " a district's credential granted that store")
    if wanted not in principal.reads_stores:
        # The same words whether the store exists or not.
        raise Forbidden(f"this credential may not read store '{_shown(wanted)}' (a district's"
                        " credential reads the stores it was granted, lrs credentials add"
                        " --reads-stores)")
    if not services.known_active(principal.store):  # read it, or 403
        await run_in_threadpool(services.require_active, principal.store)
    ready = services.ready(wanted)
    return ready if ready is not None else await run_in_threadpool(services.named, wanted)


def _shown(value: str) -> str:
    return value[:40] if value.isprintable() else "(not printable)"


ServicesDep = Annotated[StoreServices, Depends(get_services)]


async def get_version(request: Request) -> str:
    version: str = getattr(request.state, "xapi_version", "1.0.3")
    return version


VersionDep = Annotated[str, Depends(get_version)]
