"""Context (xAPI Data 2.4.6), with the 2.0.0 contextAgents and contextGroups."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from schemas.activity import Activity
from schemas.actor import Actor, Agent, Group
from schemas.base import IRI, Extensions, LanguageTag, UUIDString, XAPIModel
from schemas.version import is_v2


class StatementRef(XAPIModel):
    objectType: Literal["StatementRef"]
    id: UUIDString


class ContextActivities(XAPIModel):
    """Each list may also be sent as a single Activity; it is read as a list of one."""

    parent: list[Activity] | None = None
    grouping: list[Activity] | None = None
    category: list[Activity] | None = None
    other: list[Activity] | None = None

    @field_validator("parent", "grouping", "category", "other", mode="before")
    @classmethod
    def _single_activity_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value


class ContextAgent(XAPIModel):
    objectType: Literal["contextAgent"]
    agent: Agent
    relevantTypes: list[IRI] | None = Field(default=None, min_length=1)


class ContextGroup(XAPIModel):
    objectType: Literal["contextGroup"]
    group: Group
    relevantTypes: list[IRI] | None = Field(default=None, min_length=1)


class Context(XAPIModel):
    registration: UUIDString | None = None
    instructor: Actor | None = None
    team: Group | None = None
    contextActivities: ContextActivities | None = None
    contextAgents: list[ContextAgent] | None = None
    contextGroups: list[ContextGroup] | None = None
    revision: str | None = None
    platform: str | None = None
    language: LanguageTag | None = None
    statement: StatementRef | None = None
    extensions: Extensions | None = None

    @field_validator("contextAgents", "contextGroups", mode="before")
    @classmethod
    def _only_in_version_2(cls, value: object, info: ValidationInfo) -> object:
        if not is_v2(info.context):
            raise ValueError(f"'{info.field_name}' is an xAPI 2.0.0 property, not allowed in 1.0.x")
        return value
