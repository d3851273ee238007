"""The single path every statement takes: validate, enrich, append.

HTTP and Kafka both call :func:`accept_statements`; neither holds a rule of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from ingest.enrich import with_authority, with_context_activity_lists, with_id, with_version
from ingest.multipart import ReceivedPart, check_part_hashes
from ingest.signature import verify_signature
from lrs.errors import BadRequest
from lrs.sealing import lone_actor
from lrs.statement_events import PreparedStatement, statement_body
from lrs.store.keys import index_row
from schemas.actor import Agent
from schemas.attachment import SIGNATURE_USAGE_TYPE
from schemas.statement import Statement
from schemas.validate import StatementInvalid, ValidStatement, validate_statements

MAX_SIGNATURE_BYTES = 1024 * 1024


class Appender(Protocol):
    def store(self, batch: list[PreparedStatement]) -> list[str]: ...


class Writer(Protocol):
    """Who is writing: the credential's key and the authority it stands for."""

    @property
    def key(self) -> str: ...
    @property
    def authority(self) -> dict[str, Any]: ...
    @property
    def authority_agent(self) -> Agent: ...
    @property
    def can_define(self) -> bool: ...
    @property
    def can_void_any(self) -> bool: ...


def prepare_statements(payload: Any, writer: Writer, version: str, max_batch: int,
                       parts: Sequence[ReceivedPart] = (),
                       id_for: Callable[[int], str] | None = None) -> list[PreparedStatement]:
    """Validate a statement or array of them and assign what the LRS assigns; all or nothing.

    ``parts`` are the attachment parts of a multipart/mixed request, already on disk.
    """
    if isinstance(payload, list) and len(payload) > max_batch:
        raise BadRequest(f"statements: a batch may hold at most {max_batch} statements"
                         f" (got {len(payload)})")
    try:
        valid = validate_statements(payload, version)
    except StatementInvalid as exc:
        raise BadRequest(str(exc)) from None
    by_hash = _match_parts(valid, parts)
    prepared: list[PreparedStatement] = []
    first_at: dict[str, int] = {}
    for index, item in enumerate(valid):
        where = "statement" if len(valid) == 1 else f"statements[{index}]"
        _check_attachment_parts(item.model, by_hash, where)
        _check_signatures(item.document, item.model, by_hash, where)
        make_id = partial(id_for, index) if id_for else None
        document = with_version(with_authority(with_id(
            with_context_activity_lists(item.document), make_id), writer.authority), version)
        statement_id = _canonical_id(document["id"])
        if statement_id in first_at:
            raise BadRequest(f"{where}.id: {statement_id} is also the id of statements"
                             f"[{first_at[statement_id]}]; a batch holds each statement once")
        first_at[statement_id] = index
        carried = frozenset(a.sha2.lower() for a in item.model.attachments or []
                            if a.sha2.lower() in by_hash)
        document["id"] = statement_id
        prepared.append(PreparedStatement(
            statement_id=statement_id,
            body=statement_body(document),
            has_timestamp="timestamp" in document,
            row=index_row(item.model, statement_id, writer.key, writer.authority_agent,
                          writer.can_define, carried),
            credential=writer.key,
            voids=item.model.voids,
            can_void_any=writer.can_void_any,
            lone_actor=lone_actor(item.model),
        ))
    return prepared


def _match_parts(valid: Sequence[ValidStatement],
                 parts: Sequence[ReceivedPart]) -> dict[str, ReceivedPart]:
    """Every part is an attachment some statement declares, sent once (Communication 1.5.2)."""
    check_part_hashes(list(parts))
    declared = {a.sha2.lower() for item in valid for a in item.model.attachments or []}
    by_hash: dict[str, ReceivedPart] = {}
    for part in parts:
        if part.declared_hash not in declared:
            raise BadRequest(f"multipart part {part.number} (X-Experience-API-Hash"
                             f" {part.declared_hash}) matches no attachment the statements declare")
        if part.declared_hash in by_hash:
            raise BadRequest(f"multipart part {part.number}: attachment {part.declared_hash} was"
                             " already sent; send each attachment once")
        by_hash[part.declared_hash] = part
    return by_hash


def _check_attachment_parts(statement: Statement, parts: dict[str, ReceivedPart], where: str) -> None:
    """An attachment without fileUrl must arrive as a part of the request (Data 2.4.11)."""
    for number, attachment in enumerate(statement.attachments or []):
        if attachment.fileUrl is None and attachment.sha2.lower() not in parts:
            raise BadRequest(
                f"{where}.attachments[{number}]: has no fileUrl, so its content must be sent as a"
                f" multipart/mixed part with X-Experience-API-Hash {attachment.sha2}"
            )


def _check_signatures(document: dict[str, Any], statement: Statement,
                      parts: dict[str, ReceivedPart], where: str) -> None:
    """A signature attachment holds a JWS that matches and verifies (Data 2.6)."""
    for number, attachment in enumerate(statement.attachments or []):
        if attachment.usageType != SIGNATURE_USAGE_TYPE:
            continue
        at = f"{where}.attachments[{number}]"
        if attachment.contentType != "application/octet-stream":
            raise BadRequest(f"{at}: a signature's contentType must be application/octet-stream")
        part = parts.get(attachment.sha2.lower())
        if part is None:
            raise BadRequest(f"{at}: a signature must be sent as a multipart/mixed part")
        if part.length > MAX_SIGNATURE_BYTES:
            raise BadRequest(f"{at}: a signature of {part.length} bytes is too large to be a JWS")
        verify_signature(document, part.path.read_bytes(), at)


def _canonical_id(statement_id: str) -> str:
    return statement_id.lower()


def accept_statements(payload: Any, writer: Writer, version: str, appender: Appender,
                      max_batch: int) -> list[str]:
    """Validate, enrich and durably append statements; returns their ids in order."""
    return appender.store(prepare_statements(payload, writer, version, max_batch))
