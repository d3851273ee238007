"""Statements and SubStatements (xAPI Data 2.4)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag, ValidationInfo, field_validator, model_validator

from schemas.activity import Activity
from schemas.actor import Actor, Agent, Group, ifi_key
from schemas.attachment import Attachment
from schemas.base import Timestamp, UUIDString, XAPIModel, parse_timestamp
from schemas.context import Context, StatementRef
from schemas.result import Result
from schemas.verb import VOIDED, Verb
from schemas.version import is_v2, valid_statement_version


def _object_type(value: Any) -> str:
    if isinstance(value, dict):
        object_type = value.get("objectType", "Activity")
        return object_type if isinstance(object_type, str) else "invalid"
    return "invalid"


def _check_timestamp_for_version(value: str | None, info: ValidationInfo) -> str | None:
    if value is not None and is_v2(info.context):
        stripped = value.rstrip("Zz")
        if stripped == value and not (len(value) > 6 and value[-6] in "+-"):
            raise ValueError("must include a time zone offset in xAPI 2.0.0 (RFC 3339)")
    return value


class _StatementCore(XAPIModel):
    actor: Actor
    verb: Verb
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp | None = None
    attachments: list[Attachment] | None = None

    @field_validator("timestamp")
    @classmethod
    def _timestamp_offset(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _check_timestamp_for_version(value, info)

    def _check_context_for_object(self, obj: Any) -> None:
        """revision and platform describe an Activity, so only an Activity may have them
        (Data 2.4.6): not an Agent, a Group, a StatementRef or a SubStatement."""
        if self.context is None or isinstance(obj, Activity):
            return
        for name in ("revision", "platform"):
            if getattr(self.context, name) is not None:
                raise ValueError(
                    f"context.{name} may only be used when the object is an Activity"
                    f" (here: {type(obj).__name__})")


class SubStatement(_StatementCore):
    """A SubStatement must not carry id, stored, version or authority, nor nest another."""

    objectType: Literal["SubStatement"]
    object: Annotated[
        Annotated[Activity, Tag("Activity")]
        | Annotated[Agent, Tag("Agent")]
        | Annotated[Group, Tag("Group")]
        | Annotated[StatementRef, Tag("StatementRef")],
        Discriminator(_object_type),
    ]

    @model_validator(mode="before")
    @classmethod
    def _no_statement_only_properties(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("id", "stored", "version", "authority"):
                if name in data:
                    raise ValueError(f"a SubStatement must not have '{name}'")
            obj = data.get("object")
            if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
                raise ValueError("a SubStatement must not contain another SubStatement")
        return data

    @model_validator(mode="after")
    def _context_fits_object(self) -> SubStatement:
        self._check_context_for_object(self.object)
        return self


class Statement(_StatementCore):
    id: UUIDString | None = None
    object: Annotated[
        Annotated[Activity, Tag("Activity")]
        | Annotated[Agent, Tag("Agent")]
        | Annotated[Group, Tag("Group")]
        | Annotated[StatementRef, Tag("StatementRef")]
        | Annotated[SubStatement, Tag("SubStatement")],
        Discriminator(_object_type),
    ]
    stored: Timestamp | None = None
    authority: Actor | None = None
    version: str | None = None

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str | None) -> str | None:
        if value is not None and not valid_statement_version(value):
            raise ValueError(f"'{value}' is not an xAPI version (1.0.x or 2.0.x)")
        return value

    @field_validator("authority")
    @classmethod
    def _authority_shape(cls, value: Agent | Group | None) -> Agent | Group | None:
        # An authority group is OAuth's consumer pair: anonymous, two Agents (Data 2.4.9).
        if isinstance(value, Group):
            if value.member is None or len(value.member) != 2:
                raise ValueError("an authority Group must have exactly two member Agents")
            if ifi_key(value) is not None:
                raise ValueError("an authority Group must be anonymous (no mbox, mbox_sha1sum,"
                                 " openid or account): it is the OAuth consumer pair")
        return value

    @model_validator(mode="after")
    def _statement_rules(self) -> Statement:
        self._check_context_for_object(self.object)
        if self.verb.id == VOIDED and not isinstance(self.object, StatementRef):
            raise ValueError("a voiding statement's object must be a StatementRef")
        if self.stored is not None:
            parse_timestamp(self.stored)
        return self

    @property
    def voids(self) -> str | None:
        """The id of the statement this one voids, if it is a voiding statement."""
        if self.verb.id == VOIDED and isinstance(self.object, StatementRef):
            return self.object.id
        return None
