"""The deployment's administration: stores and their credentials, for scope `admin` only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import AppServicesDep, PrincipalDep
from lrs.api.responses import JSON
from lrs.auth import Principal
from lrs.catalogue import StoreInfo
from lrs.credentials import ADMIN
from lrs.errors import BadRequest, NotFound
from schemas.validate import StatementInvalid, parse_json

router = APIRouter(prefix="/admin", tags=["stores"])
ADMIN_SCOPE = frozenset({ADMIN})


def _require_admin(principal: Principal) -> None:
    principal.require_any(ADMIN_SCOPE, "administer stores")


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = parse_json(await request.body())
    except StatementInvalid as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(body, dict):
        raise BadRequest("body: send a JSON object")
    return body


def _text(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name}: a non-empty string")
    return value


def _texts(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{name}: a list of strings")
    return value


def _shown(info: StoreInfo) -> dict[str, Any]:
    return {"name": info.name, "archived": info.archived}


@router.post("/stores", status_code=201)
async def create_store(request: Request, services: AppServicesDep, principal: PrincipalDep) -> JSON:
    """Create a store: `{"name": "north-high"}`."""
    _require_admin(principal)
    name = _text(await _body(request), "name")
    assert name is not None
    info = await run_in_threadpool(services.store.create_store, name)
    return JSON(_shown(info), status_code=201)


@router.get("/stores")
async def list_stores(services: AppServicesDep, principal: PrincipalDep) -> JSON:
    _require_admin(principal)
    stores = await run_in_threadpool(services.store.stores)
    return JSON({"stores": [_shown(s) for s in stores]})


@router.post("/stores/{name}/archive")
async def archive_store(name: str, services: AppServicesDep, principal: PrincipalDep) -> JSON:
    """Archive a store: its credentials are refused at once; its data stays for export."""
    _require_admin(principal)
    info = await run_in_threadpool(services.store.archive_store, name)
    services.authenticator.forget()  # every worker looks at the catalogue again
    return JSON(_shown(info))


@router.post("/stores/{name}/credentials", status_code=201)
async def issue_credential(name: str, request: Request, services: AppServicesDep,
                           principal: PrincipalDep) -> JSON:
    """Issue a credential in a store: `{"name": "quiz-app", "scopes": ["statements/write"]}`,
    with `classes` (a teacher's), `learner` (a learner's) or `reads_stores` (a district's)."""
    _require_admin(principal)
    body = await _body(request)
    if await run_in_threadpool(services.store.store_info, name) is None:
        raise NotFound(f"no store named '{name[:40]}'")
    label = _text(body, "name")
    assert label is not None
    scopes = _texts(body, "scopes")
    key, secret = await run_in_threadpool(
        lambda: services.store.issue_credential(
            label, scopes, classes=_texts(body, "classes"), learner=_text(body, "learner", False),
            store=name, reads_stores=_texts(body, "reads_stores")))
    return JSON({"key": key, "secret": secret, "store": name, "scopes": scopes}, status_code=201)
