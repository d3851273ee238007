"""What many routes need: the services, the caller's credential and the negotiated version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.ratelimit import AccessLimits
from lrs.api.services import Services
from lrs.auth import Principal, parse_basic, secret_fingerprint
from lrs.errors import Unauthorized


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    """The verified credential, within the failure and request-rate limits (429 over them)."""
    key, secret = parse_basic(request.headers.get("authorization"))
    return await verify_credential(request, services, key, secret)


async def verify_credential(request: Request, services: Services, key: str, secret: str) -> Principal:
    """The credential for this key and secret (HTTP Basic, or the dashboard's sign-in form),
    within the failure and request-rate limits (RateLimited over them)."""
    limits: AccessLimits | None = getattr(request.state, "access_limits", None)
    if limits is None:  # an app assembled without AccessLimitMiddleware has no limits
        return await run_in_threadpool(services.authenticator.verify, key, secret)
    peer = request.client.host if request.client else None
    # A proxy may append its own header line rather than extend the client's.
    forwarded_for = ", ".join(request.headers.getlist("x-forwarded-for"))
    address = limits.client_address(peer, forwarded_for)
    fingerprint = secret_fingerprint(key, secret)
    await limits.before_verify(key, fingerprint, address)
    try:
        principal = await run_in_threadpool(services.authenticator.verify, key, secret)
    except Unauthorized:
        await limits.after_verify(key, fingerprint, address, ok=False)
        raise
    await limits.after_verify(key, fingerprint, address, ok=True)
    limits.take_request(principal.key)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_version(request: Request) -> str:
    version: str = getattr(request.state, "xapi_version", "1.0.3")
    return version


VersionDep = Annotated[str, Depends(get_version)]
