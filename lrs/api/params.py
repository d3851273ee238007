"""Query parameters shared by the resources, each checked with an error that names it."""

from __future__ import annotations

from collections.abc import Mapping, Set

from pydantic import TypeAdapter, ValidationError

from ingest.enrich import format_stored
from lrs.errors import BadRequest
from schemas.actor import Actor, ifi_key
from schemas.base import MAX_ID_IRI_OCTETS, check_iri, check_octets, check_uuid, parse_timestamp
from schemas.limits import JSONLimitExceeded, check_text
from schemas.validate import NestedTooDeep, StatementInvalid, describe, parse_json

_ACTOR: TypeAdapter[Actor] = TypeAdapter(Actor)


def reject_unknown(params: Mapping[str, str], allowed: Set[str], what: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown parameter(s) for {what}: {', '.join(unknown)}")


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise BadRequest(f"{name}: is required")
    return value


def uuid_param(name: str, value: str) -> str:
    try:
        return check_uuid(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def iri_param(name: str, value: str) -> str:
    try:
        return check_iri(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def document_id_param(name: str, value: str) -> str:
    """A stateId or profileId: any text, within the bound of the ids the index keys on."""
    try:
        return check_octets(value, MAX_ID_IRI_OCTETS)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def time_param(name: str, value: str) -> str:
    try:
        return format_stored(parse_timestamp(value))
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def agent_param(value: str, name: str = "agent") -> Actor:
    try:
        parsed = parse_json(value, name)
        check_text(parsed, name)
        return _ACTOR.validate_python(parsed)
    except (NestedTooDeep, JSONLimitExceeded) as exc:  # the limit, named, before "not JSON"
        raise BadRequest(str(exc)) from None
    except StatementInvalid:
        raise BadRequest(f"{name}: must be a JSON Agent or identified Group object") from None
    except ValidationError as exc:
        raise BadRequest(describe(exc, name)) from None


def agent_ifi_param(value: str, name: str = "agent") -> str:
    ifi = ifi_key(agent_param(value, name))
    if ifi is None:
        raise BadRequest(f"{name}: an anonymous Group has no IFI, so it cannot be used here")
    return ifi
