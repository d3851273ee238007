"""The Activities and Agents resources (Communication 2.5, 2.6)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import PrincipalDep, ServicesDep, VersionDep
from lrs.api.openapi import ACTIVITY_GET, PERSON_GET
from lrs.api.params import agent_param, iri_param, reject_unknown, required
from lrs.api.responses import JSON
from lrs.auth import DEFINITIONS_READ, PERSON_READ
from lrs.errors import NotFound

router = APIRouter(tags=["activities", "agents"])


@router.api_route("/activities", methods=["GET"], openapi_extra=ACTIVITY_GET)
@router.api_route("/activities", methods=["HEAD"], openapi_extra=ACTIVITY_GET)
async def get_activity(request: Request, services: ServicesDep, principal: PrincipalDep,
                       version: VersionDep) -> JSON:
    principal.require_any(DEFINITIONS_READ, "read activity definitions")
    params = dict(request.query_params)
    reject_unknown(params, {"activityId"}, "GET activities")
    activity_id = iri_param("activityId", required(params, "activityId"))
    try:
        return JSON(await run_in_threadpool(services.store.activity, activity_id))
    except NotFound:
        if version != "2.0.0":
            raise
        # 2.0.0: an Activity no statement has defined is still an Activity (Comm. 2.5).
        return JSON({"objectType": "Activity", "id": activity_id})


@router.api_route("/agents", methods=["GET"], openapi_extra=PERSON_GET)
@router.api_route("/agents", methods=["HEAD"], openapi_extra=PERSON_GET)
async def get_person(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSON:
    principal.require_any(PERSON_READ, "read the Person object of an agent")
    params = dict(request.query_params)
    reject_unknown(params, {"agent"}, "GET agents")
    actor = agent_param(required(params, "agent"))
    return JSON(await run_in_threadpool(services.store.person, actor))
