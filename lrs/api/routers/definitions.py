"""The Activities and Agents resources (Communication 2.5, 2.6)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import PrincipalDep, ServicesDep
from lrs.api.openapi import ACTIVITY_GET, PERSON_GET
from lrs.api.params import agent_param, iri_param, reject_unknown, required
from lrs.api.responses import JSON
from lrs.auth import DEFINITIONS_READ, PERSON_READ

router = APIRouter(tags=["activities", "agents"])


@router.get("/activities", openapi_extra=ACTIVITY_GET)
async def get_activity(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSON:
    principal.require_any(DEFINITIONS_READ, "read activity definitions")
    params = dict(request.query_params)
    reject_unknown(params, {"activityId"}, "GET activities")
    activity_id = iri_param("activityId", required(params, "activityId"))
    return JSON(await run_in_threadpool(services.store.activity, activity_id))


@router.get("/agents", openapi_extra=PERSON_GET)
async def get_person(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSON:
    principal.require_any(PERSON_READ, "read the Person object of an agent")
    params = dict(request.query_params)
    reject_unknown(params, {"agent"}, "GET agents")
    actor = agent_param(required(params, "agent"))
    return JSON(await run_in_threadpool(services.store.person, actor))
