"""Learner and class views for apps, SQL for analysts, and health with projection lag."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import AppServicesDep, PrincipalDep, ServicesDep
from lrs.api.errors import error_response
from lrs.api.openapi import ANALYTICS_GET, HEALTH_GET, MASTERY_GET, SQL_POST
from lrs.api.params import time_param
from lrs.api.responses import JSON
from lrs.api.services import StoreServices
from lrs.auth import Principal
from lrs.dashboard.queries import for_learner
from lrs.errors import BadRequest, NotFound
from lrs.views_process import ViewsProcess, ViewsUnavailable
from projections import queries
from schemas.validate import StatementInvalid, parse_json


class ViewsRoute(APIRoute):
    """A busy or restarting views process answers 503 with Retry-After (the app's LRSError
    handler has no headers to give)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ViewsUnavailable as exc:
                response = error_response(exc.status, str(exc))
                response.headers["Retry-After"] = str(exc.retry_after)
                return response

        return answer


router = APIRouter(prefix="/api", tags=["analytics"], route_class=ViewsRoute)


def views_of(services: StoreServices) -> ViewsProcess:
    if services.views is None:
        raise NotFound("projections do not run with this server (LRS_PROJECTIONS=off); query the"
                       " projector's DuckDB file")
    return services.views


async def learner_query(services: StoreServices, principal: Principal, fn: Any, learner: str,
                        *args: Any) -> Any:
    """A learner's view, if the credential may see that learner (a teacher: one of its classes'
    learners; a learner: themself), checked in the same call to the views."""
    scope = principal.view_scope()
    return await views_of(services).query(for_learner, scope, fn, learner, *args)


async def class_query(services: StoreServices, principal: Principal, fn: Any, class_id: str,
                      *args: Any) -> Any:
    """A class's view, if the credential may see that class (a teacher: one of its own)."""
    principal.view_scope().require_class(class_id)
    return await views_of(services).query(fn, class_id, *args)


@router.get("/health", openapi_extra=HEALTH_GET)
async def health(services: AppServicesDep) -> JSON:
    """No credential needed: the status, the projections' lag and slots, nothing else."""
    views = services.views
    if views is None:
        return JSON({"status": "ok", "projections": {"mode": "off"}})
    lag = await run_in_threadpool(views.health, services.store)
    return JSON({"status": "ok" if lag["state"] == "running" else "degraded", "projections": lag})


@router.get("/learners/{learner:path}/profile", openapi_extra=ANALYTICS_GET)
async def profile(learner: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    return JSON(await learner_query(services, principal, queries.learner_profile, learner))


@router.get("/learners/{learner:path}/mastery", openapi_extra=MASTERY_GET)
async def mastery(learner: str, request: Request, services: ServicesDep,
                  principal: PrincipalDep) -> JSON:
    as_of = request.query_params.get("as_of")
    moment = time_param("as_of", as_of).rstrip("Z").replace("T", " ") if as_of else None
    rows = await learner_query(services, principal, queries.learner_mastery, learner, moment)
    return JSON({"learner": learner, "as_of": as_of, "competencies": rows})


@router.get("/learners/{learner:path}/engagement", openapi_extra=ANALYTICS_GET)
async def engagement(learner: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    return JSON(await learner_query(services, principal, queries.learner_engagement, learner))


@router.get("/classes/{class_id:path}/engagement", openapi_extra=ANALYTICS_GET)
async def class_engagement(class_id: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    return JSON(await class_query(services, principal, queries.class_engagement, class_id))


@router.get("/classes/{class_id:path}/mastery", openapi_extra=ANALYTICS_GET)
async def class_mastery(class_id: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    rows = await class_query(services, principal, queries.class_mastery, class_id)
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
    return JSON(await views_of(services).query_sql(body["sql"]))
