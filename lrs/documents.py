"""Document resources (Communication 2.3-2.6): keys, ETags, merging and preconditions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson

from lrs.errors import BadRequest, Conflict, PreconditionFailed
from schemas.validate import NestedTooDeep, StatementInvalid, parse_json

STATE, ACTIVITY_PROFILE, AGENT_PROFILE = "state", "activity-profile", "agent-profile"
JSON_TYPE = "application/json"
_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrs:document")
_UNAMBIGUOUS = uuid5(NAMESPACE_URL, "urn:lrs:document:json-parts")
_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class DocumentKey:
    """What names one document: its resource, its context and its id."""

    resource: str
    document_id: str
    activity_id: str | None = None
    agent: str | None = None  # the agent's IFI key
    registration: str | None = None

    @property
    def aggregate_id(self) -> UUID:
        """The parts joined by U+001F, as every store has named its documents. An agent's
        account name and a stateId may hold that character themselves, and then two keys
        joined the same (account name "n" + U+001F with stateId "d", account name "n" with
        stateId U+001F + "d"): one agent read and wrote the other's document. A key with the
        separator in a part is named by its parts as a JSON array, in a namespace of its own."""
        parts = (self.resource, self.activity_id or "", self.agent or "", self.registration or "",
                 self.document_id)
        if any(_SEPARATOR in part for part in parts):
            return uuid5(_UNAMBIGUOUS, orjson.dumps(parts).decode())
        return uuid5(_NAMESPACE, _SEPARATOR.join(parts))

    def scope(self) -> dict[str, str]:
        found = {"activityId": self.activity_id, "agent": self.agent,
                 "registration": self.registration, "documentId": self.document_id}
        return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True, slots=True)
class StoredDocument:
    key: DocumentKey
    content: bytes
    content_type: str
    etag: str
    updated: str
    version: int


@dataclass(frozen=True, slots=True)
class Preconditions:
    if_match: str | None = None
    if_none_match: str | None = None

    @property
    def given(self) -> bool:
        return self.if_match is not None or self.if_none_match is not None


def etag_of(content: bytes) -> str:
    """The SHA-1 of the content, in lower-case hex (Communication 3.1)."""
    return hashlib.sha1(content).hexdigest()


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}


def check_preconditions(existing: StoredDocument | None, conditions: Preconditions,
                        must_be_conditional: bool, new_must_be_conditional: bool = False) -> None:
    """RFC 7232 If-Match / If-None-Match; profiles need one of them to overwrite (Comm. 3.1),
    and, where ``new_must_be_conditional``, to create (1.0.3 Comm. 3.1.s3.b1: the client MUST)."""
    if conditions.if_match is not None:
        tags = _tags(conditions.if_match)
        if existing is None or ("*" not in tags and existing.etag not in tags):
            raise PreconditionFailed("If-Match does not match the document's current ETag;"
                                     " fetch it again and retry with the new ETag")
    if conditions.if_none_match is not None:
        tags = _tags(conditions.if_none_match)
        if existing is not None and ("*" in tags or existing.etag in tags):
            raise PreconditionFailed("If-None-Match: the document already exists")
    if must_be_conditional and existing is not None and not conditions.given:
        raise Conflict("this document already exists: check its current state and send If-Match"
                       " with its current ETag to overwrite it")
    if new_must_be_conditional and existing is None and not conditions.given:
        raise BadRequest("a PUT to a profile resource must carry If-Match or If-None-Match (xAPI"
                         " 1.0.3 Communication 3.1): send 'If-None-Match: *' to create a document;"
                         " an LRS operator can accept such PUTs with"
                         " LRS_PROFILE_PUT_WITHOUT_PRECONDITION=accept")


def media_type(content_type: str | None) -> str:
    return (content_type or "application/octet-stream").split(";")[0].strip().lower()


def json_object(content: bytes, what: str) -> dict[str, Any]:
    try:
        value = parse_json(content, what)
    except StatementInvalid as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(value, dict):
        raise BadRequest(f"{what}: must be a JSON object to be merged")
    return value


def check_json_document(content: bytes, content_type: str) -> None:
    """A JSON document that nests past the limit could never be merged or read back as JSON."""
    if media_type(content_type) != JSON_TYPE:
        return
    try:
        parse_json(content, "body")
    except NestedTooDeep as exc:
        raise BadRequest(str(exc)) from None
    except StatementInvalid:
        pass  # other bytes labelled JSON are kept as sent: PUT stores any content (Comm. 2.2)


def merge(existing: StoredDocument | None, content: bytes, content_type: str) -> bytes:
    """POST: the posted object's top-level properties overwrite the stored ones (Comm. 2.2)."""
    if media_type(content_type) != JSON_TYPE:
        raise BadRequest("Content-Type: POST merges JSON objects; send application/json or use PUT")
    posted = json_object(content, "body")
    if existing is None:
        return content
    if media_type(existing.content_type) != JSON_TYPE:
        raise BadRequest("the stored document is not application/json, so it cannot be merged;"
                         " use PUT to replace it")
    stored = json_object(existing.content, "the stored document")
    return orjson.dumps({**stored, **posted})
