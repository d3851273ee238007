"""The shared model configuration and the spec's string formats as types."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

# RFC 3987 is too large to check in full; an absolute IRI has a scheme and no spaces.
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_LANGUAGE_TAG = re.compile(r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?"
                           r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
                           r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-x(?:-[A-Za-z0-9]{1,8})+)?$"
                           r"|^x(?:-[A-Za-z0-9]{1,8})+$|^i-[A-Za-z]+$")
_MAILTO = re.compile(r"^mailto:[^@\s]+@[^@\s]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_SHA2 = re.compile(r"^[0-9a-fA-F]{56,128}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DURATION = re.compile(
    r"^P(?!$)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$"
)
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|z|[+-]\d{2}:?\d{2})?$"
)


def check_iri(value: str) -> str:
    if not _IRI.match(value):
        raise ValueError("must be an absolute IRI (a scheme such as 'https:' and no spaces)")
    return value


def _check_language_tag(value: str) -> str:
    if not _LANGUAGE_TAG.match(value):
        raise ValueError(f"'{value}' is not an RFC 5646 language tag")
    return value


def _check_mailto(value: str) -> str:
    if not _MAILTO.match(value):
        raise ValueError("must be a 'mailto:' IRI with one email address")
    return value


def _check_sha1(value: str) -> str:
    if not _SHA1.match(value):
        raise ValueError("must be the 40 hex digits of a SHA-1 hash")
    return value


def _check_sha2(value: str) -> str:
    if not _SHA2.match(value):
        raise ValueError("must be the hex digits of a SHA-2 hash")
    return value


def check_uuid(value: str) -> str:
    if not _UUID.match(value):
        raise ValueError("must be a UUID in its 8-4-4-4-12 hex form")
    return str(UUID(value))


def _check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("must be an ISO 8601 duration such as 'PT1H30M' or 'PT45.5S'")
    return value


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; a time without an offset is taken as UTC."""
    if not _TIMESTAMP.match(value):
        raise ValueError("must be an ISO 8601 timestamp such as '2024-05-01T10:00:00.000Z'")
    if value.endswith("-00:00") or value.endswith("-0000"):
        raise ValueError("must not use the offset -00:00 (RFC 3339 'unknown local offset')")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _check_timestamp(value: str) -> str:
    parse_timestamp(value)
    return value


IRI = Annotated[str, AfterValidator(check_iri)]
LanguageTag = Annotated[str, AfterValidator(_check_language_tag)]
MailtoIRI = Annotated[str, AfterValidator(_check_mailto)]
Sha1Sum = Annotated[str, AfterValidator(_check_sha1)]
Sha2Sum = Annotated[str, AfterValidator(_check_sha2)]
UUIDString = Annotated[str, AfterValidator(check_uuid)]
Duration = Annotated[str, AfterValidator(_check_duration)]
Timestamp = Annotated[str, AfterValidator(_check_timestamp)]


def _check_language_map(value: dict[str, str]) -> dict[str, str]:
    for tag in value:
        _check_language_tag(tag)
    return value


def _check_extensions(value: dict[str, Any]) -> dict[str, Any]:
    for key in value:
        if not _IRI.match(key):
            raise ValueError(f"extension key '{key}' must be an absolute IRI")
    return value


LanguageMap = Annotated[dict[str, str], AfterValidator(_check_language_map)]
Extensions = Annotated[dict[str, Any], AfterValidator(_check_extensions)]


class XAPIModel(BaseModel):
    """Strict base: unknown properties, nulls and type coercion are all rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            key = next(k for k, v in data.items() if v is None)
            raise ValueError(f"property '{key}' must not be null")
        return data
