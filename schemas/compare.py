"""Statement comparison (Data 2.3.1): are two statements with one id the same statement?"""

from __future__ import annotations

import re
from typing import Any

# Properties the LRS may assign or rewrite (2.3.1.b1); differences in them are ignored.
_ASSIGNED = ("id", "authority", "stored", "timestamp", "version")


def _lower_mbox(actor: Any) -> Any:
    if isinstance(actor, dict):
        actor = dict(actor)
        mbox = actor.get("mbox")
        if isinstance(mbox, str):
            actor["mbox"] = mbox.lower()  # case-insensitive text (2.3.1.b7)
        if actor.get("objectType") == "Group" and isinstance(actor.get("member"), list):
            members = [_lower_mbox(m) for m in actor["member"]]
            actor["member"] = sorted(members, key=repr)  # unordered list (2.3.1.b5)
        if actor.get("objectType") == "Agent":
            del actor["objectType"]  # the default objectType, present or not
    return actor


def _activity(activity: Any) -> Any:
    # Activity definitions are not part of the statement (2.3.1.b2).
    if isinstance(activity, dict) and activity.get("objectType", "Activity") == "Activity":
        return {"id": activity.get("id")}
    return activity


_SECONDS = re.compile(r"(\d+)(?:\.(\d*))?S$")


def _duration(value: Any) -> Any:
    """Durations are compared to 0.01 s; finer digits are cut, not rounded (2.3.1, 2.0.0)."""
    if not isinstance(value, str):
        return value
    match = _SECONDS.search(value)
    if match is None:
        return value
    hundredths = (match.group(2) or "").ljust(2, "0")[:2]
    return f"{value[:match.start()]}{int(match.group(1))}.{hundredths}S"


def _core(statement: dict[str, Any]) -> dict[str, Any]:
    core = {k: v for k, v in statement.items() if k not in _ASSIGNED}
    result = core.get("result")
    if isinstance(result, dict) and "duration" in result:
        core["result"] = {**result, "duration": _duration(result["duration"])}
    core["actor"] = _lower_mbox(core.get("actor"))
    if isinstance(core.get("verb"), dict):
        core["verb"] = {"id": core["verb"].get("id")}  # display is not compared (2.3.1.b3)
    obj = core.get("object")
    if isinstance(obj, dict):
        if obj.get("objectType") == "SubStatement":
            obj = _core(obj)
        elif obj.get("objectType") in ("Agent", "Group"):
            obj = _lower_mbox(obj)
        else:
            obj = _activity(obj)
        core["object"] = obj
    context = core.get("context")
    if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
        lists = {}
        for name, value in context["contextActivities"].items():
            items = value if isinstance(value, list) else [value]
            lists[name] = [_activity(a) for a in items]
        core["context"] = {**context, "contextActivities": lists}
    return core


def same_statement(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _core(a) == _core(b)
