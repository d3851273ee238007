"""The properties the LRS assigns to a statement, one pure function each (Data 2.4)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID


def format_stored(moment: datetime) -> str:
    """Fixed-width UTC with microseconds, so text order is time order (Data 2.4.8).

    Not strftime: its %Y writes year 999 as '999' on glibc, which sorts after every 2026."""
    u = moment.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond:06d}Z")


def with_id(statement: dict[str, Any], make_id: Callable[[], str] | None = None) -> dict[str, Any]:
    """The LRS assigns a UUID when the statement has none (Data 2.4.1).

    ``make_id`` lets a replayable source (a Kafka offset) derive the same id on redelivery.
    """
    if "id" in statement:
        return statement
    return {"id": make_id() if make_id else str(time_ordered_uuid()), **statement}


def time_ordered_uuid() -> UUID:
    """A version 7 UUID (RFC 9562; variant 2, as xAPI asks): the milliseconds since the epoch,
    then 74 random bits. The ids the LRS assigns then land at the end of the two unique indexes
    on statement id (the log's and the statement index's); random ones landed on a random page
    of each, a third of the pages a write of 300 statements dirtied at 60k stored, and the
    writer spent 15-20 % more CPU per statement at 100k."""
    milliseconds = time.time_ns() // 1_000_000 & (1 << 48) - 1
    random = int.from_bytes(os.urandom(10)) >> 6  # 74 bits: 12 beside the version, 62 after
    return UUID(int=milliseconds << 80 | 0x7 << 76 | (random >> 62) << 64
                | 0b10 << 62 | random & (1 << 62) - 1)


def with_authority(statement: dict[str, Any], authority: dict[str, Any]) -> dict[str, Any]:
    """The LRS sets authority from the credential that sent the statement (Data 2.4.9)."""
    return {**statement, "authority": authority}


def with_version(statement: dict[str, Any], version: str) -> dict[str, Any]:
    """An absent version is 1.0.0 under xAPI 1.0.x (1.0.3 Data 2.4.10) and 2.0.0 under 2.0."""
    if "version" in statement:
        return statement
    return {**statement, "version": "2.0.0" if version.startswith("2") else "1.0.0"}


def with_context_activity_lists(statement: dict[str, Any]) -> dict[str, Any]:
    """contextActivities sent as single objects are kept and returned as arrays (Data 2.4.6.2),
    in the statement's context and in a SubStatement's."""
    changed = _context_with_lists(statement)
    obj = changed.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
        inner = _context_with_lists(obj)
        if inner is not obj:
            changed = {**changed, "object": inner}
    return changed


def _context_with_lists(statement: dict[str, Any]) -> dict[str, Any]:
    context = statement.get("context")
    if not isinstance(context, dict):
        return statement
    lists = context.get("contextActivities")
    if not isinstance(lists, dict) or not any(isinstance(v, dict) for v in lists.values()):
        return statement
    arrays = {name: [value] if isinstance(value, dict) else value for name, value in lists.items()}
    return {**statement, "context": {**context, "contextActivities": arrays}}


def with_stored(statement: dict[str, Any], stored: str) -> dict[str, Any]:
    """stored is set by the LRS, and timestamp defaults to it (Data 2.4.7, 2.4.8)."""
    stamped = {**statement, "stored": stored}
    stamped.setdefault("timestamp", stored)
    return stamped
