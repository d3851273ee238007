"""Reading the Statements resource's GET parameters into a query (Communication 2.1.3)."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from lrs.api.params import agent_ifi_param, iri_param, time_param, uuid_param
from lrs.errors import BadRequest
from lrs.store.index import StatementQuery
from lrs.store.keys import ACTIVITY, ACTIVITY_RELATED, AGENT, AGENT_RELATED, REGISTRATION, VERB

_FILTERS = {"agent", "verb", "activity", "registration", "related_activities", "related_agents",
            "since", "until", "limit", "ascending"}
_OUTPUT = {"format", "attachments"}
_SINGLE = {"statementId", "voidedStatementId"}
ALLOWED = _FILTERS | _OUTPUT | _SINGLE | {"more"}


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
    if fmt not in ("exact", "ids", "canonical"):
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
    if not limit_text.isdigit():
        raise BadRequest(f"limit: must be a non-negative integer (got '{limit_text}')")
    limit = int(limit_text)
    return StatementQuery(
        keys=tuple(keys),
        since=time_param("since", params["since"]) if "since" in params else None,
        until=time_param("until", params["until"]) if "until" in params else None,
        ascending=_bool(params, "ascending"),
        limit=max_page if limit == 0 else min(limit, max_page),
    )


@dataclass(frozen=True, slots=True)
class MoreToken:
    """What a 'more' link carries: the query, the output format and where the page ended."""

    query: dict[str, Any]
    format: str
    attachments: bool

    def encode(self) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(asdict(self))).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> StatementsRequest:
        try:
            data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            query = StatementQuery(**{**data["query"], "keys": tuple(data["query"]["keys"])})
            return StatementsRequest(None, False, query, data["format"], data["attachments"])
        except (ValueError, TypeError, KeyError) as exc:
            raise BadRequest(f"more: not a 'more' token this LRS issued ({exc})") from None


def next_page(request: StatementsRequest, last_seq: int, bound_seq: int) -> str:
    query = replace(request.query, after_seq=last_seq, bound_seq=bound_seq, credential=None)
    return MoreToken(asdict(query), request.format, request.attachments).encode()
