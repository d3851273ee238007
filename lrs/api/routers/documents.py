"""State, Activity Profile and Agent Profile resources (Communication 2.3, 2.5, 2.6).

The three share one shape: a document named by its context and an id; PUT replaces, POST
merges JSON, GET returns one document or the ids, DELETE removes one (or, for State, all).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lrs.api.deps import PrincipalDep, ServicesDep, VersionDep
from lrs.api.openapi import document_operations
from lrs.api.params import (
    agent_ifi_param,
    document_id_param,
    iri_param,
    reject_unknown,
    required,
    time_param,
    uuid_param,
)
from lrs.api.responses import JSON, http_date
from lrs.auth import PROFILE_READ, PROFILE_WRITE, STATE_READ, STATE_WRITE
from lrs.documents import (
    ACTIVITY_PROFILE,
    AGENT_PROFILE,
    STATE,
    DocumentKey,
    Preconditions,
    StoredDocument,
)
from lrs.errors import BadRequest, NotFound, PreconditionFailed
from lrs.store.documents import DocumentFilter

router = APIRouter(tags=["documents"])


@dataclass(frozen=True)
class Resource:
    """How one document resource names its documents."""

    name: str
    id_param: str
    context: tuple[str, ...]
    optional: tuple[str, ...]
    write_scopes: frozenset[str]
    read_scopes: frozenset[str]
    conditional_put: bool  # profiles: overwriting needs If-Match or If-None-Match (Comm. 3.1)
    delete_all: bool

    @property
    def allowed(self) -> set[str]:
        return {*self.context, *self.optional, self.id_param, "since"}

    def key_fields(self, params: dict[str, str]) -> dict[str, str | None]:
        fields: dict[str, str | None] = {"activity_id": None, "agent": None, "registration": None}
        if "activityId" in self.context:
            fields["activity_id"] = iri_param("activityId", required(params, "activityId"))
        if "agent" in self.context:
            fields["agent"] = agent_ifi_param(required(params, "agent"))
        if "registration" in self.optional and "registration" in params:
            fields["registration"] = uuid_param("registration", params["registration"])
        return fields

    def key(self, params: dict[str, str]) -> DocumentKey:
        document_id = document_id_param(self.id_param, required(params, self.id_param))
        return DocumentKey(self.name, document_id, **self.key_fields(params))

    def selection(self, params: dict[str, str]) -> DocumentFilter:
        since = time_param("since", params["since"]) if "since" in params else None
        return DocumentFilter(self.name, since=since, **self.key_fields(params))


STATE_RESOURCE = Resource(STATE, "stateId", ("activityId", "agent"), ("registration",),
                          STATE_WRITE, STATE_READ, conditional_put=False, delete_all=True)
ACTIVITY_PROFILE_RESOURCE = Resource(ACTIVITY_PROFILE, "profileId", ("activityId",), (),
                                     PROFILE_WRITE, PROFILE_READ, conditional_put=True,
                                     delete_all=False)
AGENT_PROFILE_RESOURCE = Resource(AGENT_PROFILE, "profileId", ("agent",), (),
                                  PROFILE_WRITE, PROFILE_READ, conditional_put=True,
                                  delete_all=False)


def _conditions(request: Request) -> Preconditions:
    return Preconditions(request.headers.get("if-match"), request.headers.get("if-none-match"))


def _document_response(doc: StoredDocument, head: bool) -> Response:
    headers = {"ETag": f'"{doc.etag}"', "Last-Modified": http_date(doc.updated)}
    return Response(b"" if head else doc.content, media_type=doc.content_type, headers=headers)


def _params(request: Request, resource: Resource, method: str) -> dict[str, str]:
    params = dict(request.query_params)
    allowed = resource.allowed if method == "GET" else resource.allowed - {"since"}
    reject_unknown(params, allowed, f"{method} {request.url.path}")
    return params


def _handlers(resource: Resource, path: str) -> None:
    async def write(request: Request, services: ServicesDep, principal: PrincipalDep,
                    version: str, merge: bool) -> Response:
        principal.require_any(resource.write_scopes, f"write {resource.name} documents")
        params = _params(request, resource, "POST" if merge else "PUT")
        key = resource.key(params)
        content_type = request.headers.get("content-type", "application/octet-stream")
        body = await request.body()
        # 2.0.0 brings State under concurrency control too; 1.0.3 exempts it (Comm. 3.1).
        conditional = resource.conditional_put or version == "2.0.0"
        # 1.0.3's suite holds a profile PUT without either header to 400 even for a new document
        # (the client MUST send one); some clients (TinCanPython) never do, hence the setting.
        new_conditional = (resource.conditional_put and version == "1.0.3" and
                           services.settings.profile_put_without_precondition == "refuse")
        doc = await services.store.write_document(
            key, body, content_type, merge=merge, conditions=_conditions(request),
            must_be_conditional=conditional, new_must_be_conditional=new_conditional)
        return Response(status_code=204, headers={"ETag": f'"{doc.etag}"'})

    async def put(request: Request, services: ServicesDep, principal: PrincipalDep,
                  version: VersionDep) -> Response:
        return await write(request, services, principal, version, merge=False)

    async def post(request: Request, services: ServicesDep, principal: PrincipalDep,
                   version: VersionDep) -> Response:
        return await write(request, services, principal, version, merge=True)

    async def get(request: Request, services: ServicesDep, principal: PrincipalDep) -> Response:
        principal.require_any(resource.read_scopes, f"read {resource.name} documents")
        params = _params(request, resource, "GET")
        head = request.method == "HEAD"
        if resource.id_param in params:
            if "since" in params:
                raise BadRequest(f"since: only applies when listing ids (without {resource.id_param})")
            doc = await services.store.read_document(resource.key(params))
            return _document_response(doc, head)
        docs = await run_in_threadpool(services.store.documents, resource.selection(params))
        headers = {"Last-Modified": http_date(max(d.updated for d in docs))} if docs else {}
        ids = sorted({d.key.document_id for d in docs})
        return Response(headers=headers, media_type="application/json") if head \
            else JSON(ids, headers=headers)

    async def delete(request: Request, services: ServicesDep, principal: PrincipalDep) -> Response:
        principal.require_any(resource.write_scopes, f"delete {resource.name} documents")
        params = _params(request, resource, "DELETE")
        if resource.id_param in params:
            try:
                docs = [await run_in_threadpool(services.store.document, resource.key(params))]
            except NotFound:
                if _conditions(request).if_match is not None:
                    raise PreconditionFailed("If-Match: there is no such document") from None
                return Response(status_code=204)  # already gone: DELETE is idempotent
        elif resource.delete_all:
            docs = await run_in_threadpool(services.store.documents, resource.selection(params))
        else:
            raise BadRequest(f"{resource.id_param}: is required")
        await run_in_threadpool(services.store.delete_documents, docs, _conditions(request))
        return Response(status_code=204)

    described = document_operations(resource.context, resource.optional, resource.id_param,
                                    delete_needs_id=not resource.delete_all)
    router.add_api_route(path, put, methods=["PUT"], status_code=204,
                         openapi_extra=described["PUT"])
    router.add_api_route(path, post, methods=["POST"], status_code=204,
                         openapi_extra=described["POST"])
    for method in ("GET", "HEAD"):  # one operation each, so each has its own operationId
        # response_class: a document comes back with its own Content-Type, not as JSON.
        router.add_api_route(path, get, methods=[method], openapi_extra=described[method],
                             response_class=Response)
    router.add_api_route(path, delete, methods=["DELETE"], status_code=204,
                         openapi_extra=described["DELETE"])


_handlers(STATE_RESOURCE, "/activities/state")
_handlers(ACTIVITY_PROFILE_RESOURCE, "/activities/profile")
_handlers(AGENT_PROFILE_RESOURCE, "/agents/profile")
