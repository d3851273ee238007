"""The dashboard's pages: sign-in at `/`, classes, a class overview, a learner, and admin.

Pages are rendered on the server from the views (lrs/dashboard/queries.py) and read through the
same scope checks as the API: a teacher's pages show their classes only, a learner's only
themself. A small script (static/dashboard.js) polls /dashboard/status and redraws the page when
the views have moved on, showing how far behind they are.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from lrs import __version__
from lrs.api.deps import AppServicesDep, verify_credential
from lrs.api.ratelimit import RateLimited
from lrs.api.services import Services, StoreServices
from lrs.api.statement_params import more_key
from lrs.auth import Principal, ViewScope
from lrs.credentials import ADMIN, SCOPES
from lrs.dashboard import queries
from lrs.dashboard.render import learner_url, page
from lrs.dashboard.sessions import Session, SessionSeal, principal_of, tokens_match
from lrs.errors import BadRequest, Forbidden, LRSError, NotFound, Unauthorized
from lrs.views_process import ViewsProcess, ViewsUnavailable

STATIC_DIR = Path(__file__).parent / "static"
SIGN_IN_COOKIE = "lrs-sign-in"
SORTS = ("name", "risk", "active", "minutes", "pace", "mastered")

router = APIRouter(include_in_schema=False)
router.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")


@dataclass(frozen=True)
class Signed:
    """Who is signed in: the credential, the session (for its CSRF token), what they may see,
    and their store's services (its views and log, no other store's)."""

    principal: Principal
    session: Session
    scope: ViewScope
    local: StoreServices

    @property
    def is_admin(self) -> bool:
        return "all" in self.principal.scopes

    @property
    def role(self) -> str:
        if self.scope.learner is not None:
            return "learner"
        if not self.scope.every:
            return "teacher"
        return "administrator" if self.is_admin else "reader"


# --- sessions ---------------------------------------------------------------------------------


def _seal(request: Request, services: Services) -> SessionSeal:
    """One per app, under the server key (LRS_SECRET_KEY), so every API node opens every
    node's sessions."""
    seal: SessionSeal | None = getattr(request.app.state, "session_seal", None)
    if seal is None:
        key = more_key(services.settings.secret_key, services.settings.data_dir)
        seal = SessionSeal(key, services.settings.session_hours * 3600)
        request.app.state.session_seal = seal
    return seal


def _cookie_name(services: Services) -> str:
    # __Host-: only ever set over HTTPS (or loopback), for this host alone, on every path.
    return "__Host-lrs-session" if services.settings.session_cookie_secure else "lrs-session"


async def signed_in(request: Request, services: Services) -> Signed | None:
    session = _seal(request, services).open(request.cookies.get(_cookie_name(services)))
    if session is None:
        return None
    info = await run_in_threadpool(services.store.credential, session.key)
    principal = principal_of(session, info, services.settings.authority_home_page)
    if principal is None:
        return None
    try:  # a credential of an archived store is signed out
        local = await run_in_threadpool(services.of, principal)
        return Signed(principal, session, principal.view_scope(), local)
    except Forbidden:
        return None


def _same_origin(request: Request) -> bool:
    """A form post comes from a page of this server (browsers send Origin with every POST)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.headers.get("host", "")


def _to_sign_in(request: Request) -> RedirectResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/?{urlencode({'next': path})}", status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a page of the dashboard, never another site (//evil.example, /\\evil.example)."""
    if value and value.startswith("/dashboard") and "\\" not in value and "//" not in value:
        return value
    return "/dashboard"


def _cookie_args(services: Services) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "path": "/",
            "secure": services.settings.session_cookie_secure}


# --- sign in and out --------------------------------------------------------------------------


def _sign_in_page(request: Request, services: Services, error: str = "", status: int = 200,
                  key: str = "", next_page: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    host = (request.url.hostname or "").lower()
    insecure = (services.settings.session_cookie_secure and request.url.scheme == "http"
                and host not in ("127.0.0.1", "localhost", "::1", "[::1]"))
    response = page("sign_in.html", status, title="Sign in", signed=None, error=error, csrf=token,
                    key=key, next=_safe_next(next_page or request.query_params.get("next")),
                    insecure=insecure, version=__version__)
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, **_cookie_args(services))
    return response


@router.get("/")
async def home(request: Request, services: AppServicesDep) -> Response:
    if await signed_in(request, services) is not None:
        return RedirectResponse("/dashboard", status_code=303)
    return _sign_in_page(request, services)


@router.post("/sign-in")
async def sign_in(request: Request, services: AppServicesDep, key: Annotated[str, Form(max_length=256)] = "",
                  secret: Annotated[str, Form(max_length=512)] = "",
                  csrf: Annotated[str, Form(max_length=100)] = "",
                  next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    if not _same_origin(request) or not tokens_match(request.cookies.get(SIGN_IN_COOKIE), csrf):
        return _sign_in_page(request, services, "The form had expired; please sign in again.", 403,
                             key=key, next_page=next)
    try:
        principal = await verify_credential(request, services, key.strip(), secret)
        principal.view_scope()
    except RateLimited as exc:
        response = _sign_in_page(request, services, f"Too many attempts: {exc}", 429, key=key,
                                 next_page=next)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Unauthorized:
        return _sign_in_page(request, services, "That key and secret do not match an active"
                             " credential.", 401, key=key, next_page=next)
    except Forbidden:
        return _sign_in_page(request, services, "This credential is a tool's: it has no dashboard"
                             " (a teacher's, learner's or reader's credential has).", 403,
                             key=key, next_page=next)
    try:
        await run_in_threadpool(services.of, principal)
    except Forbidden as exc:
        return _sign_in_page(request, services, str(exc), 403, key=key, next_page=next)
    info = await run_in_threadpool(services.store.credential, principal.key)
    assert info is not None
    value, _ = _seal(request, services).issue(info)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(_cookie_name(services), value,
                        max_age=int(services.settings.session_hours * 3600), **_cookie_args(services))
    response.delete_cookie(SIGN_IN_COOKIE, **_cookie_args(services))
    return response


@router.post("/sign-out")
async def sign_out(request: Request, services: AppServicesDep,
                   csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    signed = await signed_in(request, services)
    if signed is not None and (not _same_origin(request)
                               or not tokens_match(signed.session.csrf, csrf)):
        return _error(signed, 403, "Not signed out", "The form did not come from this dashboard.")
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(_cookie_name(services), **_cookie_args(services))
    return response


# --- pages ------------------------------------------------------------------------------------


def _views(services: StoreServices) -> ViewsProcess:
    if services.views is None:
        raise NotFound("the views do not run with this server (LRS_PROJECTIONS=off)")
    return services.views


def _lag(services: StoreServices) -> dict[str, Any] | None:
    return services.views.health(services.store) if services.views is not None else None


def lag_text(lag: dict[str, Any] | None) -> str:
    if lag is None:
        return "views off"
    if lag.get("position") is None:
        return f"views {lag.get('state', 'starting')}"
    if not lag["events_behind"] and not lag["learners_to_refresh"]:
        return "live: views up to date"
    return f"views {lag['seconds_behind']:.1f} s behind ({lag['events_behind']} events)"


def _error(signed: Signed | None, status: int, title: str, message: str) -> Response:
    return page("error.html", status, title=title, message=message, signed=signed, lag=None,
                lag_text="")


def _as_of(request: Request) -> str | None:
    value = request.query_params.get("as_of") or None
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadRequest("as_of: give a date as YYYY-MM-DD") from None
    if not date(1970, 1, 1) <= day <= date(9999, 12, 30):
        raise BadRequest("as_of: a date between 1970 and 9999")
    return day.isoformat()


async def _render(request: Request, services: Services, build: Any) -> Response:
    """Sign-in first; then the page, or the refusal in words (403, 404, 400, 503)."""
    signed = await signed_in(request, services)
    if signed is None:
        return _to_sign_in(request)
    try:
        lag = await run_in_threadpool(_lag, signed.local)
        context = await build(signed)
        if isinstance(context, Response):
            return context
        template, values = context
        return page(template, **{"signed": signed, "lag": lag, "lag_text": lag_text(lag), **values})
    except ViewsUnavailable as exc:
        response = _error(signed, 503, "The views are busy", str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Forbidden as exc:
        return _error(signed, 403, "Not yours to see", str(exc))
    except NotFound as exc:
        return _error(signed, 404, "Not found", str(exc))
    except LRSError as exc:
        return _error(signed, exc.status, "That did not work", str(exc))


def _keep(request: Request) -> Any:
    def keep(except_: list[str] | None = None, **kwargs: Any) -> list[tuple[str, str]]:
        dropped = set(except_ or kwargs.get("except", []))
        return [(k, v) for k, v in request.query_params.items() if k not in dropped and v]
    return keep


def _link(request: Request) -> Any:
    def link(**changes: Any) -> str:
        params = {k: v for k, v in request.query_params.items() if v}
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = str(value)
        return request.url.path + (f"?{urlencode(params)}" if params else "")
    return link


@router.get("/dashboard")
async def dashboard(request: Request, services: AppServicesDep) -> Response:
    async def build(signed: Signed) -> Any:
        if signed.scope.learner is not None:
            return RedirectResponse(learner_url(signed.scope.learner), status_code=303)
        views = _views(signed.local)
        text = request.query_params.get("q", "").strip()[:200]
        found = await views.query(queries.search_learners, signed.scope, text) if text else []
        classes = await views.query(queries.classes, signed.scope)
        return "home.html", {"title": "Classes", "classes": classes, "q": text, "found": found}
    return await _render(request, services, build)


@router.get("/dashboard/classes/{class_id:path}")
async def class_page(class_id: str, request: Request, services: AppServicesDep) -> Response:
    async def build(signed: Signed) -> Any:
        signed.scope.require_class(class_id)
        data = await _views(signed.local).query(queries.class_overview, class_id, _as_of(request))
        sort = request.query_params.get("sort", "name")
        descending = request.query_params.get("dir") == "desc"
        competency = request.query_params.get("competency", "")
        columns = [competency] if competency in data["competencies"] else data["competencies"]
        rows = sorted(data["learners"], key=_sort_key(sort), reverse=descending)
        at_risk = sorted((r for r in data["learners"] if r["risk_reasons"]),
                         key=lambda r: (-len(r["risk_reasons"]), r["name"]))
        link = _link(request)

        def sort_link(key: str, label: str) -> Markup:
            flip = "asc" if sort == key and descending else "desc" if sort == key else (
                "asc" if key in ("name", "active") else "desc")
            arrow = (" ▼" if descending else " ▲") if sort == key else ""
            href = link(sort=key, dir=flip)
            return Markup(f'<a href="{escape(href)}">{escape(label)}{arrow}</a>')

        def aria_sort(key: str) -> str:
            return ("descending" if descending else "ascending") if sort == key else "none"

        return "class.html", {
            "title": data["class_id"], "data": data, "rows": rows, "columns": columns,
            "competency": competency if competency in data["competencies"] else "",
            "at_risk": at_risk, "sort_link": sort_link, "aria_sort": aria_sort,
            "keep": _keep(request), "link": link}
    return await _render(request, services, build)


def _sort_key(sort: str) -> Any:
    if sort.startswith("c:"):
        competency = sort[2:]
        return lambda r: (r["mastery"].get(competency, [-1.0])[0], r["name"])
    keys: dict[str, Any] = {
        "risk": lambda r: (len(r["risk_reasons"]), r["name"]),
        "active": lambda r: (r["last_active"] or date.min, r["name"]),
        "minutes": lambda r: (r["minutes_this_week"], r["name"]),
        "pace": lambda r: (r["per_week"], r["name"]),
        "mastered": lambda r: (r["mastered"], r["name"]),
    }
    return keys.get(sort, lambda r: (_natural(r["name"]), r["learner"]))


def _natural(name: str) -> tuple[Any, ...]:
    """Learner 2 before Learner 10."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


@router.get("/dashboard/learners/{learner:path}")
async def learner_page(learner: str, request: Request, services: AppServicesDep) -> Response:
    async def build(signed: Signed) -> Any:
        data = await _views(signed.local).query(queries.for_learner, signed.scope, queries.learner_page,
                                            learner, _as_of(request))
        levels = {c["competency"]: c["level"] for c in data["competencies"]}

        def goal_status(goal: dict[str, Any]) -> tuple[str, str]:
            # A goal names its competency by extension, or is set on the competency itself.
            level = levels.get(goal.get("competency") or goal.get("activity") or "")
            if level == "mastered":
                return "reached", "reached: mastered"
            if level is None:
                return "open", "not started"
            return "open", f"in progress: {level}"

        return "learner.html", {"title": data["name"], "data": data, "goal_status": goal_status,
                                "keep": _keep(request), "link": _link(request)}
    return await _render(request, services, build)


@router.get("/dashboard/status")
async def status(request: Request, services: AppServicesDep) -> Response:
    """What the page's script polls: the views' lag, and the position to redraw at."""
    signed = await signed_in(request, services)
    if signed is None:
        return JSONResponse({"error": {"status": 401, "message": "signed out"}}, status_code=401)
    lag = await run_in_threadpool(_lag, signed.local)
    return JSONResponse({**(lag or {"state": "off"}), "text": lag_text(lag)},
                        headers={"Cache-Control": "no-store"})


# --- admin ------------------------------------------------------------------------------------


async def _admin_context(signed: Signed, services: Services, notice: str = "",
                         error: str = "") -> Any:
    if not signed.is_admin:
        raise Forbidden("the admin page needs a credential with scope all")
    # The credentials of the admin's own store: the catalogue is shared, the list is not.
    credentials = await run_in_threadpool(services.store.credentials, signed.principal.store)
    log_position = await run_in_threadpool(signed.local.store.recorder.max_notification_id)
    lag = await run_in_threadpool(_lag, signed.local) or {"state": "off", "position": None}
    rate = await _views(signed.local).query(queries.ingest_rate, datetime.now(UTC).replace(tzinfo=None))
    return "admin.html", {
        "title": "Admin", "credentials": sorted(credentials, key=lambda c: (c.revoked, c.key)),
        "log_position": log_position or 0, "lag": lag, "rate": rate,
        "scopes": [s for s in SCOPES if s != ADMIN or ADMIN in signed.principal.scopes],
        "notice": notice, "error": error}


@router.get("/dashboard/admin")
async def admin(request: Request, services: AppServicesDep) -> Response:
    async def build(signed: Signed) -> Any:
        return await _admin_context(signed, services)
    return await _render(request, services, build)


@router.post("/dashboard/admin/credentials")
async def add_credential(request: Request, services: AppServicesDep,
                         name: Annotated[str, Form(max_length=200)] = "",
                         scopes: Annotated[list[str] | None, Form()] = None,
                         classes: Annotated[str, Form(max_length=20_000)] = "",
                         learner: Annotated[str, Form(max_length=1024)] = "",
                         csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    async def build(signed: Signed) -> Any:
        _check_admin_form(request, signed, csrf, "adding credentials")
        try:
            if not name.strip():
                raise BadRequest("name: give the credential a name")
            if ADMIN in (scopes or []) and ADMIN not in signed.principal.scopes:
                raise BadRequest("scopes: only an administrator (scope admin) gives scope admin")
            key, secret = await run_in_threadpool(
                services.store.issue_credential, name.strip(), list(scopes or []), None, None,
                [c for c in classes.splitlines() if c.strip()], learner or None,
                signed.principal.store)
        except BadRequest as exc:
            return await _admin_context(signed, services, error=str(exc))
        notice = (f"Credential <code>{escape(key)}</code> added. Its secret, shown this once:"
                  f" <code>{escape(secret)}</code>")
        return await _admin_context(signed, services, notice=notice)
    return await _render(request, services, build)


@router.post("/dashboard/admin/credentials/revoke")
async def revoke_credential(request: Request, services: AppServicesDep,
                            key: Annotated[str, Form(max_length=256)] = "",
                            csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    async def build(signed: Signed) -> Any:
        _check_admin_form(request, signed, csrf, "revoking credentials")
        if key == signed.principal.key:
            return await _admin_context(signed, services, error="You cannot revoke the credential"
                                        " you are signed in with.")
        try:
            await run_in_threadpool(services.store.revoke_credential, key, signed.principal.store)
        except NotFound as exc:
            return await _admin_context(signed, services, error=str(exc))
        services.authenticator.forget()  # its remembered verification goes with it
        # The notice is markup (the added credential's key and secret come in <code>): escaped.
        return await _admin_context(signed, services,
                                    notice=f"Credential {escape(key)} revoked.")
    return await _render(request, services, build)


def _check_admin_form(request: Request, signed: Signed, csrf: str, action: str) -> None:
    _check_form(request, signed, csrf)
    if not signed.is_admin:
        raise Forbidden(f"{action} needs scope all")


def _check_form(request: Request, signed: Signed, csrf: str) -> None:
    if not _same_origin(request) or not tokens_match(signed.session.csrf, csrf):
        raise Forbidden("the form did not come from this dashboard (a missing or wrong CSRF token)")

