"""The Statements resource (Communication 2.1): transport only; rules live in ingest and lrs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ingest.multipart import MultipartRequest, ReceivedPart, read_multipart
from ingest.pipeline import prepare_statements
from lrs.api.deps import PrincipalDep, ServicesDep, VersionDep
from lrs.api.openapi import STATEMENTS_GET, STATEMENTS_POST, STATEMENTS_PUT
from lrs.api.responses import JSON, http_date
from lrs.api.services import StoreServices, consistent_through
from lrs.api.statement_params import StatementsRequest, parse_request
from lrs.errors import BadRequest, UnsupportedMediaType
from lrs.formats import activity_ids, parse_accept_language, render
from lrs.request_loop import answered, fits_inline, on_loop_if
from lrs.statement_events import PreparedStatement
from lrs.store.attachments import AttachmentStore
from schemas.validate import StatementInvalid, parse_json

router = APIRouter(prefix="/statements", tags=["statements"])


@dataclass
class _Body:
    statements: bytes  # JSON, parsed with the rest of the request's checks (_prepared)
    parts: MultipartRequest | None = None


async def _read_body(request: Request, services: StoreServices) -> _Body:
    """application/json, or multipart/mixed with the statements first (Communication 1.5.2)."""
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";")[0].strip().lower()
    if media == "multipart/mixed":
        settings = services.settings
        received = await read_multipart(request.stream(), content_type, services.attachments_tmp,
                                        settings.max_attachment_bytes, settings.max_body_bytes)
        return _Body(received.statements, received)
    if media.startswith("multipart/"):
        raise BadRequest(f"Content-Type '{media}': statements with attachments are sent as"
                         " multipart/mixed (Communication 1.5.2)")
    if media != "application/json":
        raise UnsupportedMediaType(f"Content-Type '{media}' is not accepted; statements are"
                                   " sent as application/json or multipart/mixed")
    return _Body(await request.body())


def _parse(body: bytes) -> Any:
    try:
        return parse_json(body)
    except StatementInvalid as exc:
        raise BadRequest(str(exc)) from None


def _sent(services: StoreServices, payload: Any, parts: list[ReceivedPart],
          principal: PrincipalDep, version: str, put_id: str | None,
          on_loop: bool) -> tuple[list[PreparedStatement], Future[list[str]]]:
    """Validated, enriched, keys hashed and sealed, attachment bodies kept, and handed to the
    writer (pickled for the parent, in `lrs serve --workers N`: for a 9 MB batch, 11 ms)."""
    if put_id is not None:
        payload = _with_put_id(payload, put_id)
    principal.require_write()
    batch = prepare_statements(payload, principal, version,
                               services.settings.max_batch_statements, parts)
    batch = services.store.work_ahead(batch, on_loop=on_loop)
    # Bodies first: a stored statement never names an attachment the LRS lacks.
    for part in parts:
        services.attachments.keep(part.path, part.declared_hash)
    return batch, services.committer.submit(batch)


async def _store(request: Request, services: StoreServices, body: _Body, principal: PrincipalDep,
                 version: str, put_id: str | None = None) -> list[str]:
    """Validate, keep the attachment bodies, append; the request's part files go in any case.

    A batch of a few small statements is prepared on the loop: a hop to a thread and back
    cost batch-1 traffic a tenth of its throughput. Many statements, a large body, attachments
    (files to read, signatures to verify) and a sealing that must read the store (the erasure
    generation, once a second) go to a thread, where they stall no other request of the worker
    (lrs/request_loop.py); at most HEAVY_AT_ONCE of them at a time."""
    heavy = getattr(request.app.state, "heavy_work", None)
    try:
        parts = body.parts.parts if body.parts else []
        if not parts and fits_inline(len(body.statements)):
            payload = _parse(body.statements)  # at most 64 KB: well under a millisecond
            inline = (fits_inline(len(body.statements), _count(payload))
                      and not services.store.work_ahead_reads())
        else:
            payload = await on_loop_if(False, _parse, body.statements, limiter=heavy)
            inline = False
        batch, written = await on_loop_if(inline, _sent, services, payload, parts, principal,
                                          version, put_id, inline, limiter=heavy)
        ids = await answered(written)
        services.store.sealed_ahead_stored(batch)
        return ids
    finally:
        if body.parts:
            body.parts.discard()


def _count(payload: Any) -> int:
    return len(payload) if isinstance(payload, list) else 1


@router.put("", status_code=204, openapi_extra=STATEMENTS_PUT)
async def put_statement(request: Request, services: ServicesDep, principal: PrincipalDep,
                        version: VersionDep) -> Response:
    unknown = set(request.query_params) - {"statementId"}
    if unknown:
        raise BadRequest(f"unknown parameter(s) for PUT statements: {', '.join(sorted(unknown))}")
    statement_id = request.query_params.get("statementId")
    if statement_id is None:
        raise BadRequest("statementId: is required for PUT (use POST to let the LRS assign ids)")
    try:
        statement_id = str(uuid.UUID(statement_id))
    except ValueError:
        raise BadRequest(f"statementId: '{statement_id}' is not a UUID") from None
    await _store(request, services, await _read_body(request, services), principal, version,
                 statement_id)
    return Response(status_code=204)


def _with_put_id(payload: Any, statement_id: str) -> dict[str, Any]:
    """PUT stores one statement under the id in its query (Communication 2.1.1)."""
    if not isinstance(payload, dict):
        raise BadRequest("body: PUT takes one statement object")
    if "id" in payload and str(payload["id"]).lower() != statement_id:
        raise BadRequest(f"id: '{payload['id']}' differs from statementId '{statement_id}'")
    return {**payload, "id": statement_id}


@router.post("", openapi_extra=STATEMENTS_POST)
async def post_statements(request: Request, services: ServicesDep, principal: PrincipalDep,
                          version: VersionDep) -> JSON:
    if request.query_params:
        raise BadRequest(f"unknown parameter(s) for POST statements:"
                         f" {', '.join(sorted(request.query_params))}")
    return JSON(await _store(request, services, await _read_body(request, services), principal,
                             version))


@router.api_route("", methods=["GET"], openapi_extra=STATEMENTS_GET)
@router.api_route("", methods=["HEAD"], openapi_extra=STATEMENTS_GET)
async def get_statements(request: Request, services: ServicesDep,
                         principal: PrincipalDep) -> Response:
    mine = principal.read_filter()
    params = dict(request.query_params)
    if "more" in params:
        if len(params) > 1:
            raise BadRequest("more: a 'more' link carries the whole query; send it alone")
        wanted = services.more_links.read(params["more"], principal.key)
    else:
        wanted = parse_request(params, services.settings.max_page_statements)
    consistent = await consistent_through(services.committer)
    languages = parse_accept_language(request.headers.get("accept-language"))
    body: Any
    newest: str | None
    if wanted.statement_id is not None:
        document, newest = await run_in_threadpool(
            services.store.statement, wanted.statement_id, voided=wanted.voided, credential=mine
        )
        definitions = await run_in_threadpool(_definitions, services, wanted.format, [document])
        body = render(document, wanted.format, languages, definitions)
    else:
        body, newest = await run_in_threadpool(_page, services, wanted, mine, languages,
                                               principal.key)
    headers = {
        "X-Experience-API-Consistent-Through": consistent,
        "Last-Modified": http_date(newest or consistent),
    }
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type="application/json")
    if wanted.attachments:
        servable = await run_in_threadpool(_servable_attachments, services, body)
        return _multipart(body, headers, services.attachments, servable)
    return JSON(body, headers=headers)


def _page(services: StoreServices, wanted: StatementsRequest, mine: str | None,
          languages: list[str], caller: str) -> tuple[dict[str, Any], str | None]:
    bound = wanted.query.bound_seq or services.store.last_statement_seq()
    query = replace(wanted.query, credential=mine, bound_seq=bound, limit=wanted.query.limit + 1)
    hits = services.store.statements(query)
    page = hits[: wanted.query.limit]
    more = ""
    if len(hits) > wanted.query.limit:
        token = services.more_links.issue(wanted, page[-1][0].seq, bound, caller)
        more = f"/xAPI/statements?more={token}"
    definitions = _definitions(services, wanted.format, [document for _, document in page])
    statements = [render(document, wanted.format, languages, definitions) for _, document in page]
    newest = max((hit.stored for hit, _ in page), default=None)
    return {"statements": statements, "more": more}, newest


def _definitions(services: StoreServices, fmt: str,
                 documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The canonical activity definitions a canonical-format answer needs, read in one query."""
    if fmt != "canonical":
        return {}
    return services.store.index.activity_definitions(activity_ids(documents))


def _servable_attachments(services: StoreServices, body: Any) -> set[str]:
    """The attachments whose bytes these statements, which the caller may see, came with.

    The store keeps bytes by hash, shared by every statement that sent them. A statement that
    only names a hash with a fileUrl did not prove it holds the bytes, so it gets none: else any
    credential could read another's attachment by declaring its hash. One declared without a
    fileUrl was only stored with its bytes (Data 2.4.11), so its own declaration is the proof.
    """
    named: list[str] = []
    servable: set[str] = set()
    for statement in body.get("statements", [body]):
        for attachment in statement.get("attachments", []):
            sha2 = str(attachment.get("sha2", "")).lower()
            if "fileUrl" not in attachment:
                servable.add(sha2)
            else:
                named.append(sha2)
    named = sorted(set(named) - servable)
    if named:
        ids = [str(s.get("id")) for s in body.get("statements", [body])]
        servable |= services.store.index.carried_attachments(ids, named)
    return servable


def _header_safe(content_type: Any) -> str:
    """A part header from a stored contentType; statements stored before media types were
    checked may hold a CR or LF, which would let one writer forge another's part."""
    if isinstance(content_type, str) and content_type.isprintable() and content_type.isascii():
        return content_type
    return "application/octet-stream"


def _multipart(body: Any, headers: dict[str, str], attachments: AttachmentStore,
               servable: set[str]) -> Response:
    """attachments=true answers multipart/mixed: the statements, then each attachment once."""
    statements = body.get("statements", [body])
    wanted: dict[str, str] = {}
    for statement in statements:
        for attachment in statement.get("attachments", []):
            sha2 = str(attachment.get("sha2", "")).lower()
            if sha2 in servable and sha2 not in wanted and attachments.has(sha2):
                wanted[sha2] = _header_safe(attachment.get("contentType"))
    boundary = uuid.uuid4().hex

    def parts() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
               + orjson.dumps(body) + b"\r\n")
        for sha2, content_type in wanted.items():
            yield (f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                   "Content-Transfer-Encoding: binary\r\n"
                   f"X-Experience-API-Hash: {sha2}\r\n\r\n").encode()
            yield from attachments.read(sha2)
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(parts(), headers=headers,
                             media_type=f'multipart/mixed; boundary="{boundary}"')
