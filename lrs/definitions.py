"""Canonical activity definitions: merged from the statements that define them (Comm. 2.5)."""

from __future__ import annotations

from typing import Any

from schemas.activity import Activity
from schemas.statement import Statement, SubStatement

_LANGUAGE_MAPS = ("name", "description")
_STATEMENTS = (Statement, SubStatement)


def merge_definition(current: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """The latest definition wins per language, per extension and per other property."""
    merged = dict(current)
    for name, value in incoming.items():
        if name in _LANGUAGE_MAPS or name == "extensions":
            merged[name] = {**current.get(name, {}), **value}
        else:
            merged[name] = value
    return merged


def activities_of(statement: Statement) -> list[Activity]:
    """Every activity a statement mentions: object, context activities, sub-statement's too."""
    found: list[Activity] = []
    for part in (statement, statement.object):
        if isinstance(part, _STATEMENTS):
            if isinstance(part.object, Activity):
                found.append(part.object)
            lists = part.context.contextActivities if part.context else None
            if lists is not None:
                for group in (lists.parent, lists.grouping, lists.category, lists.other):
                    found.extend(group or [])
    return found


def definitions_of(statement: Statement) -> list[tuple[str, dict[str, Any] | None]]:
    return [
        (a.id, a.definition.model_dump(exclude_none=True) if a.definition else None)
        for a in activities_of(statement)
    ]
