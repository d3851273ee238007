"""POST /admin/forget: an administrator forgets one learner (lrs/erasure.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import PrincipalDep, ServicesDep
from lrs.api.responses import JSON
from lrs.erasure import forget
from lrs.errors import BadRequest, Forbidden
from schemas.validate import StatementInvalid, parse_json

router = APIRouter(prefix="/admin", tags=["erasure"])
ADMIN = "admin"
MAX_BODY_BYTES = 16 * 1024


@router.post("/forget")
async def forget_learner(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSON:
    """Body ``{"learner": EMAIL or IFI key}``: the learner's statements, documents, attachments
    only they sent, and their place in the views are made unrecoverable. Answers with the
    learner's pseudonym and counts, never the identity."""
    if ADMIN not in principal.scopes:
        raise Forbidden("forgetting a learner needs a credential with scope admin")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"body: at most {MAX_BODY_BYTES} bytes")
    try:
        parsed = parse_json(body)
    except StatementInvalid as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("learner"), str):
        raise BadRequest('body: must be {"learner": "<email or IFI key>"}')
    report = await run_in_threadpool(forget, services.store, services.attachments,
                                     parsed["learner"], principal.key)
    return JSON(report.as_dict())
