"""Statement facts: the parts of a statement the read models use, one flat row each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections.vocabulary import (
    COMPETENCY_EXTENSION,
    COMPETENCY_TYPE,
    CORRECT_AT_SCALED,
    GOAL_TARGET_EXTENSION,
)

_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"
                       r"(?:(\d+(?:\.\d+)?)S)?)?$")


@dataclass(frozen=True, slots=True)
class Fact:
    seq: int
    statement_id: str
    learner: str
    learner_name: str | None
    ts: datetime
    verb: str
    object_id: str | None
    object_type: str | None
    success: bool | None
    scaled: float | None
    duration_s: float | None
    response: str | None
    registration: str | None
    class_id: str | None
    competencies: tuple[str, ...]
    voids: str | None
    peer: str | None
    goal_target: str | None

    @property
    def correct(self) -> bool | None:
        """Evidence rule: success decides; else scaled (or raw in min..max) >= 0.8 is correct."""
        if self.success is not None:
            return self.success
        if self.scaled is not None:
            return self.scaled >= CORRECT_AT_SCALED
        return None


def actor_key(actor: Any) -> str | None:
    """The IFI key (same form as the statement index): how a learner is named everywhere."""
    if not isinstance(actor, dict):
        return None
    if "mbox" in actor:
        local, _, domain = str(actor["mbox"]).partition("@")
        return f"mbox:{local}@{domain.lower()}"
    if "mbox_sha1sum" in actor:
        return f"mbox_sha1sum:{str(actor['mbox_sha1sum']).lower()}"
    if "openid" in actor:
        return f"openid:{actor['openid']}"
    if "account" in actor:
        account = actor["account"]
        return f"account:{account.get('homePage')}|{account.get('name')}"
    members = actor.get("member") or []
    return actor_key(members[0]) if members else None


def duration_seconds(value: Any) -> float | None:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _scaled(score: Any) -> float | None:
    if not isinstance(score, dict):
        return None
    if isinstance(score.get("scaled"), int | float):
        return float(score["scaled"])
    raw, low, high = score.get("raw"), score.get("min"), score.get("max")
    if isinstance(raw, int | float) and isinstance(low, int | float) \
            and isinstance(high, int | float) and high > low:
        return float(raw - low) / float(high - low)
    return None


def statement_time(statement: dict[str, Any]) -> datetime:
    """The statement's timestamp (else stored) as naive UTC: the time every view uses."""
    text = str(statement.get("timestamp") or statement["stored"]).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None)


def _competencies(statement: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    context = statement.get("context") or {}
    for activity in (context.get("contextActivities") or {}).get("category") or []:
        if ((activity.get("definition") or {}).get("type")) == COMPETENCY_TYPE:
            found.append(activity["id"])
    obj = statement.get("object") or {}
    named = ((obj.get("definition") or {}).get("extensions") or {}).get(COMPETENCY_EXTENSION)
    if isinstance(named, str):
        found.append(named)
    elif isinstance(named, list):
        found.extend(str(n) for n in named)
    return tuple(dict.fromkeys(found))


def _class_id(context: dict[str, Any]) -> str | None:
    team = context.get("team")
    if isinstance(team, dict):
        return actor_key(team) if not team.get("name") else f"team:{team['name']}"
    grouping = (context.get("contextActivities") or {}).get("grouping") or []
    return f"activity:{grouping[0]['id']}" if grouping else None


def fact_of(seq: int, statement: dict[str, Any]) -> Fact | None:
    learner = actor_key(statement.get("actor"))
    if learner is None:
        return None
    obj = statement.get("object") or {}
    kind = obj.get("objectType", "Activity")
    result = statement.get("result") or {}
    context = statement.get("context") or {}
    voids = obj.get("id") if statement["verb"]["id"].endswith("/voided") and kind == "StatementRef" \
        else None
    extensions = {**(context.get("extensions") or {}), **(result.get("extensions") or {})}
    return Fact(
        seq=seq,
        statement_id=statement["id"],
        learner=learner,
        learner_name=(statement.get("actor") or {}).get("name"),
        ts=statement_time(statement),
        verb=statement["verb"]["id"],
        object_id=obj.get("id") if kind == "Activity" else None,
        object_type=(obj.get("definition") or {}).get("type") if kind == "Activity" else None,
        success=result.get("success") if isinstance(result.get("success"), bool) else None,
        scaled=_scaled(result.get("score")),
        duration_s=duration_seconds(result.get("duration")),
        response=result.get("response") if isinstance(result.get("response"), str) else None,
        registration=context.get("registration"),
        class_id=_class_id(context),
        competencies=_competencies(statement),
        voids=voids,
        peer=actor_key(obj) if kind in ("Agent", "Group") else None,
        goal_target=str(extensions[GOAL_TARGET_EXTENSION]) if GOAL_TARGET_EXTENSION in extensions
        else None,
    )
