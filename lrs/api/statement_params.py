"""Reading the Statements resource's GET parameters into a query (Communication 2.1.3)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lrs.api.params import agent_ifi_param, iri_param, time_param, uuid_param
from lrs.errors import BadRequest
from lrs.store.index import StatementQuery
from lrs.store.keys import ACTIVITY, ACTIVITY_RELATED, AGENT, AGENT_RELATED, REGISTRATION, VERB

_FILTERS = {"agent", "verb", "activity", "registration", "related_activities", "related_agents",
            "since", "until", "limit", "ascending"}
_OUTPUT = {"format", "attachments"}
_SINGLE = {"statementId", "voidedStatementId"}
ALLOWED = _FILTERS | _OUTPUT | _SINGLE | {"more"}
FORMATS = ("exact", "ids", "canonical")
MORE_LIFETIME = 24 * 3600.0  # a 'more' link is for paging now, not a bookmark


@dataclass(frozen=True, slots=True)
class StatementsRequest:
    """One GET: a single statement by id, or a filtered page."""

    statement_id: str | None
    voided: bool
    query: StatementQuery
    format: str
    attachments: bool


def _bool(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise BadRequest(f"{name}: must be 'true' or 'false' (got '{value}')")
    return value == "true"


def parse_request(params: dict[str, str], max_page: int) -> StatementsRequest:
    unknown = sorted(set(params) - ALLOWED)
    if unknown:
        raise BadRequest(f"unknown parameter(s) for GET statements: {', '.join(unknown)}")
    fmt = params.get("format", "exact")
    if fmt not in FORMATS:
        raise BadRequest(f"format: must be 'exact', 'ids' or 'canonical' (got '{fmt}')")
    attachments = _bool(params, "attachments")
    single = [name for name in _SINGLE if name in params]
    if single:
        others = sorted(set(params) - _OUTPUT - set(single))
        if len(single) > 1 or others:
            raise BadRequest(f"{single[0]}: may only be combined with format and attachments"
                             f" (found {', '.join(sorted(set(single[1:]) | set(others)))})")
        name = single[0]
        return StatementsRequest(uuid_param(name, params[name]), name == "voidedStatementId",
                                 StatementQuery(), fmt, attachments)
    return StatementsRequest(None, False, _filters(params, max_page), fmt, attachments)


def _filters(params: dict[str, str], max_page: int) -> StatementQuery:
    keys: list[str] = []
    if "registration" in params:
        keys.append(f"{REGISTRATION}:{uuid_param('registration', params['registration'])}")
    if "agent" in params:
        scope = AGENT_RELATED if _bool(params, "related_agents") else AGENT
        keys.append(f"{scope}:{agent_ifi_param(params['agent'])}")
    if "activity" in params:
        scope = ACTIVITY_RELATED if _bool(params, "related_activities") else ACTIVITY
        keys.append(f"{scope}:{iri_param('activity', params['activity'])}")
    if "verb" in params:
        keys.append(f"{VERB}:{iri_param('verb', params['verb'])}")
    limit_text = params.get("limit", "0")
    if not (limit_text.isascii() and limit_text.isdigit()) or len(limit_text) > 9:
        raise BadRequest(f"limit: must be a non-negative integer (got '{limit_text[:20]}')")
    limit = int(limit_text)
    return StatementQuery(
        keys=tuple(keys),
        since=time_param("since", params["since"]) if "since" in params else None,
        until=time_param("until", params["until"]) if "until" in params else None,
        ascending=_bool(params, "ascending"),
        limit=max_page if limit == 0 else min(limit, max_page),
    )


class MoreTokens:
    """'more' links that only this LRS can write, only their caller can use, and nobody can read.

    A link carries the query (an agent filter holds an email address) and the page size, so it
    is sealed with AES-GCM under the server's key: the address stays out of URLs and logs, a
    changed or forged token fails its tag, and the caller's credential key is the associated
    data, so one credential's link is refused to another. Every bound is checked again anyway.
    """

    def __init__(self, key: bytes, max_page: int, lifetime_seconds: float = MORE_LIFETIME) -> None:
        self._aead = AESGCM(hashlib.sha256(b"lrs more links\0" + key).digest())
        self.max_page = max_page
        self.lifetime = lifetime_seconds

    def issue(self, request: StatementsRequest, last_seq: int, bound_seq: int, caller: str,
              now: float | None = None) -> str:
        query = asdict(replace(request.query, after_seq=last_seq, bound_seq=bound_seq,
                               credential=None))
        payload = orjson.dumps({"query": query, "format": request.format,
                                "attachments": request.attachments,
                                "issued": int(time.time() if now is None else now)})
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, payload, caller.encode())
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def read(self, token: str, caller: str, now: float | None = None) -> StatementsRequest:
        refused = BadRequest("more: not a 'more' link this LRS issued to this credential")
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            payload = self._aead.decrypt(sealed[:12], sealed[12:], caller.encode())
            data = orjson.loads(payload)
        except (ValueError, InvalidTag, orjson.JSONDecodeError):
            raise refused from None
        if not isinstance(data, dict) or not isinstance(data.get("query"), dict):
            raise refused
        issued = data.get("issued")
        if not isinstance(issued, int) or (time.time() if now is None else now) - issued > self.lifetime:
            raise BadRequest("more: this link has expired; run the query again") from None
        return self._checked(data, refused)

    def _checked(self, data: dict[str, Any], refused: BadRequest) -> StatementsRequest:
        """Every field as strictly as a first request's parameters: the key may have leaked."""
        q = data["query"]
        keys, limit = q.get("keys"), q.get("limit")
        after, bound = q.get("after_seq"), q.get("bound_seq")
        fmt, attachments = data.get("format"), data.get("attachments")
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
                and _is_int(limit) and 0 < limit <= self.max_page
                and _is_int(after) and after >= 0 and _is_int(bound) and bound >= after
                and isinstance(q.get("ascending"), bool) and isinstance(attachments, bool)
                and fmt in FORMATS and q.get("credential") is None):
            raise refused
        since, until = q.get("since"), q.get("until")
        query = StatementQuery(
            keys=tuple(keys), ascending=q["ascending"], limit=limit, after_seq=after, bound_seq=bound,
            since=None if since is None else time_param("since", since),
            until=None if until is None else time_param("until", until))
        return StatementsRequest(None, False, query, fmt, attachments)


def _is_int(value: Any) -> bool:
    return type(value) is int


def more_key(configured: str | None, data_dir: Path) -> bytes:
    """LRS_SECRET_KEY, or a random key kept in the data folder (one API process)."""
    if configured:
        return configured.encode()
    path = data_dir / "secret-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_bytes().strip()
