"""The single path every statement takes: validate, enrich, append.

HTTP and Kafka both call :func:`accept_statements`; neither holds a rule of its own.
"""

from __future__ import annotations

from typing import Any, Protocol

from ingest.enrich import with_authority, with_id, with_version
from lrs.application import PreparedStatement
from lrs.errors import BadRequest
from schemas.actor import Agent
from schemas.statement import Statement
from schemas.validate import StatementInvalid, validate_statements


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


def prepare_statements(payload: Any, writer: Writer, version: str, max_batch: int,
                       attachment_hashes: frozenset[str] = frozenset()) -> list[PreparedStatement]:
    """Validate a statement or array of them and assign what the LRS assigns; all or nothing."""
    if isinstance(payload, list) and len(payload) > max_batch:
        raise BadRequest(f"statements: a batch may hold at most {max_batch} statements"
                         f" (got {len(payload)})")
    try:
        valid = validate_statements(payload, version)
    except StatementInvalid as exc:
        raise BadRequest(str(exc)) from None
    prepared = []
    for index, item in enumerate(valid):
        _check_attachment_parts(item.model, attachment_hashes, index if len(valid) > 1 else None)
        document = with_version(with_authority(with_id(item.document), writer.authority), version)
        prepared.append(PreparedStatement(
            statement_id=_canonical_id(document["id"]),
            document={**document, "id": _canonical_id(document["id"])},
            model=item.model.model_copy(update={"authority": writer.authority_agent}),
            credential=writer.key,
            can_define=writer.can_define,
        ))
    return prepared


def _check_attachment_parts(statement: Statement, hashes: frozenset[str], index: int | None) -> None:
    """An attachment without fileUrl must arrive as a part of the request (Data 2.4.11)."""
    where = "statement" if index is None else f"statements[{index}]"
    for number, attachment in enumerate(statement.attachments or []):
        if attachment.fileUrl is None and attachment.sha2 not in hashes:
            raise BadRequest(
                f"{where}.attachments[{number}]: has no fileUrl, so its content must be sent as a"
                f" multipart/mixed part with X-Experience-API-Hash {attachment.sha2}"
            )


def _canonical_id(statement_id: str) -> str:
    return statement_id.lower()


def accept_statements(payload: Any, writer: Writer, version: str, appender: Appender,
                      max_batch: int, attachment_hashes: frozenset[str] = frozenset()) -> list[str]:
    """Validate, enrich and durably append statements; returns their ids in order."""
    return appender.store(
        prepare_statements(payload, writer, version, max_batch, attachment_hashes)
    )
