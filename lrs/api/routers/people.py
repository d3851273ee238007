"""Lists to find people by: the classes, a class's learners, and learners by name or identifier.

Each answers only what the credential may see: every class and learner (scopes all, all/read,
statements/read), a teacher's own classes and their learners, or a learner themself.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from lrs.api.deps import PrincipalDep, ServicesDep
from lrs.api.openapi import ANALYTICS_GET
from lrs.api.responses import JSON
from lrs.api.routers.analytics import ViewsRoute, class_query, views_of
from lrs.dashboard import queries
from lrs.errors import BadRequest, Forbidden

router = APIRouter(prefix="/api", tags=["analytics"], route_class=ViewsRoute)
MAX_SEARCH_CHARS = 200


@router.get("/classes", openapi_extra=ANALYTICS_GET)
async def classes(services: ServicesDep, principal: PrincipalDep) -> JSON:
    """The classes this credential may see, with learners, active this week and at risk."""
    scope = principal.view_scope()
    if scope.learner is not None:
        raise Forbidden("a learner's credential sees no class list")
    return JSON({"classes": await views_of(services).query(queries.classes, scope)})


@router.get("/classes/{class_id:path}/learners", openapi_extra=ANALYTICS_GET)
async def class_learners(class_id: str, services: ServicesDep, principal: PrincipalDep) -> JSON:
    rows = await class_query(services, principal, queries.class_learners, class_id)
    return JSON({"class_id": class_id, "learners": rows})


@router.get("/learners", openapi_extra=ANALYTICS_GET)
async def search(services: ServicesDep, principal: PrincipalDep,
                 q: str = Query(description="part of a name or identifier, any case")) -> JSON:
    """Learners whose name or identifier holds ``q``: nobody has to type an IFI key whole."""
    text = q.strip()
    if not text:
        raise BadRequest("q: give part of a learner's name or identifier")
    if len(text) > MAX_SEARCH_CHARS:
        raise BadRequest(f"q: at most {MAX_SEARCH_CHARS} characters")
    scope = principal.view_scope()
    rows = await views_of(services).query(queries.search_learners, scope, text)
    return JSON({"q": text, "learners": rows, "limit": queries.SEARCH_LIMIT})
