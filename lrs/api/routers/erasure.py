"""POST /admin/forget: an administrator forgets one learner (lrs/erasure.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import AppServicesDep, PrincipalDep
from lrs.api.responses import JSON
from lrs.config import check_store_name
from lrs.erasure import forget
from lrs.errors import BadRequest, Forbidden, NotFound
from schemas.validate import StatementInvalid, parse_json

router = APIRouter(prefix="/admin", tags=["erasure"])
ADMIN = "admin"
MAX_BODY_BYTES = 16 * 1024


@router.post("/forget")
async def forget_learner(request: Request, services: AppServicesDep,
                         principal: PrincipalDep) -> JSON:
    """Body ``{"learner": EMAIL or IFI key, "store": NAME (default: default)}``: the learner's
    statements, documents, attachments only they sent, and their place in the views of that
    store are made unrecoverable. Answers with the learner's pseudonym and counts, never the
    identity."""
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
    name = parsed.get("store", principal.store)
    if not isinstance(name, str):
        raise BadRequest("store: a store's name")
    try:
        check_store_name(name)
    except ValueError as exc:
        raise BadRequest(f"store {exc}") from None
    if name != principal.store and await run_in_threadpool(services.store.store_info, name) is None:
        raise NotFound(f"no store named '{name[:40]}'")
    # An archived store's learners can still be forgotten.
    target = await run_in_threadpool(services.named, name, archived=True)
    report = await run_in_threadpool(forget, target.store, target.attachments,
                                     parsed["learner"], principal.key)
    return JSON(report.as_dict())
