"""What many routes need: the services, the caller's credential and the negotiated version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.services import Services
from lrs.auth import Principal


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    return await run_in_threadpool(
        services.authenticator.authenticate, request.headers.get("authorization")
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_version(request: Request) -> str:
    version: str = getattr(request.state, "xapi_version", "1.0.3")
    return version


VersionDep = Annotated[str, Depends(get_version)]
