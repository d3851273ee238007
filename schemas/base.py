"""The shared model configuration and the spec's string formats as types."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import CoreSchema

# RFC 3987 is too large to check in full; an absolute IRI has a scheme, no spaces, and a '%'
# only where it starts a percent-encoded octet ('%' and two hex digits, RFC 3987 2.2 pct-encoded).
_IRI = r"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[^\s<>\"{}|\\^`%]|%[0-9A-Fa-f]{2})+$"
_LANGUAGE_TAG = (r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?"
                 r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
                 r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-x(?:-[A-Za-z0-9]{1,8})+)?$"
                 r"|^x(?:-[A-Za-z0-9]{1,8})+$|^i-[A-Za-z]+$")
_MAILTO = r"^mailto:(?:[^@\s%]|%[0-9A-Fa-f]{2})+@(?:[^@\s%]|%[0-9A-Fa-f]{2})+$"
_SHA1 = r"^[0-9a-fA-F]{40}$"
_SHA2 = r"^[0-9a-fA-F]{56,128}$"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Weeks stand alone (ISO 8601 as xAPI profiles it: 'P4W', never 'P4W1D'); the other designators
# combine, in order, with a time part after 'T'.
_DURATION = re.compile(
    r"^P(?!$)(?:\d+(?:\.\d+)?W|(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?)$"
)
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|z|[+-]\d{2}:?\d{2})?$"
)

# The rule each format breaks, for the error message (see schemas.validate).
# An Internet Media Type (RFC 6838 names, RFC 9110 parameters): it becomes a part header of
# multipart answers, so no control character (CR, LF) may reach it.
_MEDIA_TYPE = (r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
               r"(?:[ \t]*;[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]+=(?:[A-Za-z0-9!#$%&'*+.^_`|~-]+"
               r"|\"[^\"\x00-\x1f\x7f]*\"))*$")
PATTERN_RULES = {
    _MEDIA_TYPE: "must be an Internet Media Type such as 'text/plain; charset=utf-8'",
    _IRI: "must be an absolute IRI (a scheme such as 'https:', no spaces, and '%' only before two"
          " hex digits)",
    _LANGUAGE_TAG: "'{input}' is not an RFC 5646 language tag",
    _MAILTO: "must be a 'mailto:' IRI with one email address ('%' only before two hex digits)",
    _SHA1: "must be the 40 hex digits of a SHA-1 hash",
    _SHA2: "must be the hex digits of a SHA-2 hash",
    _UUID: "must be a UUID in its 8-4-4-4-12 hex form",
}
# fullmatch: Python's '$' also matches before a final line break, so with match a UUID or an
# IRI followed by one passed as that value (pydantic-core's patterns, in Rust, do not).
_IRI_MATCH = re.compile(_IRI).fullmatch
_UUID_MATCH = re.compile(_UUID).fullmatch

# Lengths, in octets of UTF-8, of the strings the statement index keys on (activity and verb
# ids, agent identifiers, agent names). Each bound keeps a key within what every store can
# index (a PostgreSQL b-tree entry holds at most 2,704 bytes; the State index holds an activity
# id and an agent together) and keeps a hostile client from bloating the index.
MAX_ID_IRI_OCTETS = 1024
MAX_ACCOUNT_NAME_OCTETS = 256
MAX_NAME_OCTETS = 512
# RFC 5321 4.5.3.1.1 and 4.5.3.1.3: a local part of at most 64 octets, a path of at most 256
# (254 without its angle brackets).
MAX_MAILBOX_LOCAL_OCTETS = 64
MAX_MAILBOX_OCTETS = 254


def utf8_octets(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def check_octets(value: str, limit: int) -> str:
    """The value, if its UTF-8 encoding is at most ``limit`` octets."""
    if len(value) > limit // 4 and utf8_octets(value) > limit:  # shorter always fits
        raise ValueError(f"must be at most {limit} octets of UTF-8 (it has {utf8_octets(value)})")
    return value


def _at_most(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: check_octets(value, limit))


def check_iri(value: str) -> str:
    """An IRI that names an activity, a verb or an agent: the format and the index's bound."""
    if not _IRI_MATCH(value):
        raise ValueError(PATTERN_RULES[_IRI])
    return check_octets(value, MAX_ID_IRI_OCTETS)


def _check_mailbox(value: str) -> str:
    """The lengths RFC 5321 allows an email address, counted after percent-decoding."""
    address = unquote_to_bytes(value.removeprefix("mailto:"))
    local = address.rpartition(b"@")[0]
    if len(local) > MAX_MAILBOX_LOCAL_OCTETS:
        raise ValueError(f"the local part of an email address is at most {MAX_MAILBOX_LOCAL_OCTETS}"
                         f" octets (RFC 5321); this one has {len(local)}")
    if len(address) > MAX_MAILBOX_OCTETS:
        raise ValueError(f"an email address is at most {MAX_MAILBOX_OCTETS} octets (RFC 5321);"
                         f" this one has {len(address)}")
    return value


def check_uuid(value: str) -> str:
    """A UUID in its canonical (lower-case) form."""
    if not _UUID_MATCH(value):
        raise ValueError(PATTERN_RULES[_UUID])
    return value.lower()


def _check_duration(value: str) -> str:
    if not _DURATION.fullmatch(value):
        raise ValueError("must be an ISO 8601 duration such as 'PT1H30M' or 'PT45.5S' (weeks,"
                         " as in 'P4W', stand alone)")
    return value


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; a time without an offset is taken as UTC."""
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError("must be an ISO 8601 timestamp such as '2024-05-01T10:00:00.000Z'")
    if value.endswith("-00:00") or value.endswith("-0000"):
        raise ValueError("must not use the offset -00:00 (RFC 3339 'unknown local offset')")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # 0001-01-01T00:00:00+01:00 is a valid text of a moment before year 1 in UTC: every
        # reader that compares times in UTC (filters, views) would fail on it.
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None
    return parsed


def _check_timestamp(value: str) -> str:
    parse_timestamp(value)
    return value


# Formats a regular expression decides are checked by pydantic-core itself: a Python validator
# per string cost a call out of Rust each, about half of a statement's validation time.
IRI = Annotated[str, StringConstraints(pattern=_IRI)]
# An IRI the index keys on: an activity or verb id, an openid, an account's homePage.
IdIRI = Annotated[str, StringConstraints(pattern=_IRI), _at_most(MAX_ID_IRI_OCTETS)]
def _distinct_singletons(tag: str) -> str:
    """RFC 5646 2.2.6: an extension singleton appears once in a tag (the pattern cannot say so)."""
    if len(tag) < 7:  # 'ab-a-bc' is the shortest tag with an extension
        return tag
    seen: set[str] = set()
    for subtag in tag.lower().split("-")[1:]:
        if subtag == "x":  # private use: anything may follow
            break
        if len(subtag) == 1:
            if subtag in seen:
                raise ValueError(f"'{tag}' is not an RFC 5646 language tag: the extension"
                                 f" singleton '{subtag}' appears twice (RFC 5646 2.2.6)")
            seen.add(subtag)
    return tag


LanguageTag = Annotated[str, StringConstraints(pattern=_LANGUAGE_TAG),
                        AfterValidator(_distinct_singletons)]
MailtoIRI = Annotated[str, StringConstraints(pattern=_MAILTO), AfterValidator(_check_mailbox)]
AgentName = Annotated[str, _at_most(MAX_NAME_OCTETS)]
AccountName = Annotated[str, _at_most(MAX_ACCOUNT_NAME_OCTETS)]
Sha1Sum = Annotated[str, StringConstraints(pattern=_SHA1)]
MediaType = Annotated[str, StringConstraints(pattern=_MEDIA_TYPE, max_length=255)]
Sha2Sum = Annotated[str, StringConstraints(pattern=_SHA2)]
UUIDString = Annotated[str, StringConstraints(pattern=_UUID, to_lower=True)]
# The JSON Schema (for /openapi.json) says what the Python check decides.
Duration = Annotated[str, AfterValidator(_check_duration),
                     WithJsonSchema({"type": "string", "pattern": _DURATION.pattern})]
Timestamp = Annotated[str, AfterValidator(_check_timestamp),
                      WithJsonSchema({"type": "string", "format": "date-time"})]
LanguageMap = dict[LanguageTag, str]
Extensions = dict[IRI, Any]


def _model_fields(schema: Any) -> Any:
    """The model-fields schema inside a model's schema (under its validators), or None."""
    while isinstance(schema, dict):
        if schema.get("type") == "model-fields":
            return schema
        schema = schema.get("schema")
    return None


def _refuse_null(field: Any) -> None:
    """A field whose default is None validates a null as its type does: refused."""
    holder = field.get("schema")
    if not isinstance(holder, dict) or holder.get("type") != "default" or holder.get("default") is not None:
        return
    while isinstance(holder, dict):
        inner = holder.get("schema")
        if isinstance(inner, dict) and inner.get("type") == "nullable":
            holder["schema"] = inner["schema"]
            return
        if not isinstance(inner, dict) or not str(inner.get("type", "")).startswith(("function-", "default")):
            return
        holder = inner


class XAPIModel(BaseModel):
    """Strict base: unknown properties, nulls and type coercion are all rejected.

    An optional property is typed ``X | None = None``: absent, it reads as None. Sent as null,
    it is refused by pydantic-core itself, which validates it as ``X`` (the schema's nullable
    wrapper is taken off below); schemas.validate words that error as "must not be null". A
    Python validator on every object did the same at a call out of Rust each, 11 a statement
    and an eighth of its validation time."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[BaseModel],
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        fields = _model_fields(schema)
        if fields is not None:
            for field in fields["fields"].values():
                _refuse_null(field)
        return schema
