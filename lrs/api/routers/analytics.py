"""Learner and class views for apps, SQL for analysts, and health with projection lag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import PrincipalDep, ServicesDep
from lrs.api.openapi import ANALYTICS_GET, HEALTH_GET, MASTERY_GET, SQL_POST
from lrs.api.params import time_param
from lrs.api.responses import JSON
from lrs.api.services import Services
from lrs.auth import Principal
from lrs.errors import BadRequest, NotFound
from projections import queries
from schemas.validate import StatementInvalid, parse_json

router = APIRouter(prefix="/api", tags=["analytics"])
ANALYTICS_READ = frozenset({"all", "all/read", "statements/read"})


async def _query(services: Services, principal: Principal, fn: Any, *args: Any) -> Any:
    principal.require_any(ANALYTICS_READ, "read learner analytics")
    views = services.views
    if views is None:
        raise NotFound("projections do not run with this server (LRS_PROJECTIONS=off); query the"
                       " projector's DuckDB file")
    return await run_in_threadpool(views.call, fn, *args)


@router.get("/health", openapi_extra=HEALTH_GET)
async def health(services: ServicesDep) -> JSON:
    views = services.views
    lag = await run_in_threadpool(views.lag) if views is not None else {"mode": "off"}
    return JSON({"status": "ok", "projections": lag})


@router.get("/learners/{learner:path}/profile", openapi_extra=ANALYTICS_GET)
async def profile(learner: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    return JSON(await _query(services, principal, queries.learner_profile, learner))


@router.get("/learners/{learner:path}/mastery", openapi_extra=MASTERY_GET)
async def mastery(learner: str, request: Request, services: ServicesDep,
                  principal: PrincipalDep) -> JSON:
    as_of = request.query_params.get("as_of")
    moment = time_param("as_of", as_of).rstrip("Z").replace("T", " ") if as_of else None
    rows = await _query(services, principal, queries.learner_mastery, learner, moment)
    return JSON({"learner": learner, "as_of": as_of, "competencies": rows})


@router.get("/learners/{learner:path}/engagement", openapi_extra=ANALYTICS_GET)
async def engagement(learner: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    return JSON(await _query(services, principal, queries.learner_engagement, learner))


@router.get("/classes/{class_id:path}/engagement", openapi_extra=ANALYTICS_GET)
async def class_engagement(class_id: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    return JSON(await _query(services, principal, queries.class_engagement, class_id))


@router.get("/classes/{class_id:path}/mastery", openapi_extra=ANALYTICS_GET)
async def class_mastery(class_id: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    rows = await _query(services, principal, queries.class_mastery, class_id)
    return JSON({"class_id": class_id, "competencies": rows})


@router.post("/sql", openapi_extra=SQL_POST)
async def sql(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSON:
    principal.require_any(frozenset({"all", "all/read"}), "run SQL over the projections")
    try:
        body = parse_json(await request.body())
    except StatementInvalid as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
        raise BadRequest('body: send {"sql": "SELECT ..."}')
    return JSON(await _query(services, principal, queries.read_only_sql, body["sql"]))
