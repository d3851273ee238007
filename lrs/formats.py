"""The Statements resource's output formats: exact, ids and canonical (Communication 2.1.3)."""

from __future__ import annotations

from typing import Any

import orjson

from schemas.actor import IFI_PROPERTIES

_LANGUAGE_MAPS = ("display", "name", "description")


def _actor_ids(actor: Any) -> Any:
    if not isinstance(actor, dict):
        return actor
    slim = {k: actor[k] for k in ("objectType", *IFI_PROPERTIES) if k in actor}
    if actor.get("objectType") == "Group" and "member" in actor and not any(
        k in actor for k in IFI_PROPERTIES
    ):
        slim["member"] = [_actor_ids(m) for m in actor["member"]]
    return slim


def _object_ids(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        return {"id": obj.get("id")}  # the minimal form: Activity is objectType's default
    if kind in ("Agent", "Group"):
        return _actor_ids(obj)
    if kind == "SubStatement":
        return _statement_ids(obj)
    return obj


def _context_ids(context: Any) -> Any:
    if not isinstance(context, dict):
        return context
    slim = dict(context)
    for name in ("instructor", "team"):
        if name in slim:
            slim[name] = _actor_ids(slim[name])
    if isinstance(slim.get("contextActivities"), dict):
        slim["contextActivities"] = {
            name: [_object_ids(a) for a in (value if isinstance(value, list) else [value])]
            for name, value in slim["contextActivities"].items()
        }
    for name, inner in (("contextAgents", "agent"), ("contextGroups", "group")):
        if isinstance(slim.get(name), list):
            slim[name] = [{**item, inner: _actor_ids(item.get(inner))} for item in slim[name]]
    return slim


def _statement_ids(statement: dict[str, Any]) -> dict[str, Any]:
    slim = dict(statement)
    for name in ("actor", "authority"):
        if name in slim:
            slim[name] = _actor_ids(slim[name])
    if isinstance(slim.get("verb"), dict):
        slim["verb"] = {"id": slim["verb"].get("id")}
    if "object" in slim:
        slim["object"] = _object_ids(slim["object"])
    if "context" in slim:
        slim["context"] = _context_ids(slim["context"])
    return slim


def ids_format(statement: dict[str, Any]) -> dict[str, Any]:
    """Agents, groups, activities and verbs reduced to what identifies them."""
    return _statement_ids(statement)


def parse_accept_language(header: str | None) -> list[str]:
    """Language ranges in order of preference (RFC 9110 12.5.4); '*' means any."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.lower()))
    return [tag for _, _, tag in sorted(ranked)]


def pick_language(language_map: dict[str, str], preferences: list[str]) -> dict[str, str]:
    """Keep the one entry that best fits the preferences; with no fit, the first entry."""
    if not language_map:
        return language_map
    lowered = {tag.lower(): tag for tag in language_map}
    for wanted in preferences:
        if wanted == "*":
            break
        if wanted in lowered:
            tag = lowered[wanted]
            return {tag: language_map[tag]}
        for low, tag in lowered.items():
            if low.startswith(wanted + "-") or wanted.startswith(low + "-"):
                return {tag: language_map[tag]}
    first = next(iter(language_map))
    return {first: language_map[first]}


def _canonical(value: Any, preferences: list[str], inside_extensions: bool = False) -> Any:
    if isinstance(value, list):
        return [_canonical(item, preferences) for item in value]
    if not isinstance(value, dict) or inside_extensions:
        return value
    result = {}
    for key, item in value.items():
        if key in _LANGUAGE_MAPS and isinstance(item, dict) and all(
            isinstance(v, str) for v in item.values()
        ):
            result[key] = pick_language(item, preferences)
        else:
            result[key] = _canonical(item, preferences, inside_extensions=key == "extensions")
    return result


def _activity_slots(statement: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every place an Activity object sits: (its container, the key or index holding it)."""
    slots: list[tuple[Any, Any]] = []
    for part in (statement, statement.get("object")):
        if not isinstance(part, dict):
            continue
        obj = part.get("object")
        if part is statement or part.get("objectType") == "SubStatement":
            if isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity":
                slots.append((part, "object"))
            lists = (part.get("context") or {}).get("contextActivities") or {}
            for name, value in lists.items():
                if isinstance(value, list):
                    slots.extend((value, i) for i in range(len(value)))
                else:
                    slots.append((lists, name))
    return slots


def activity_ids(statements: list[dict[str, Any]]) -> list[str]:
    return sorted({container[key]["id"] for s in statements
                   for container, key in _activity_slots(s) if "id" in container[key]})


def canonical_format(statement: dict[str, Any], preferences: list[str],
                     definitions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Activities carry the LRS's canonical definition, and every language map is narrowed to
    the requester's language (Communication 2.1.3, 'canonical')."""
    copy: dict[str, Any] = orjson.loads(orjson.dumps(statement))
    for container, key in _activity_slots(copy):
        activity = container[key]
        definition = definitions.get(activity.get("id", ""))
        if definition:
            container[key] = {**activity, "definition": definition}
    return dict(_canonical(copy, preferences))


def render(statement: dict[str, Any], fmt: str, preferences: list[str],
           definitions: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    if fmt == "ids":
        return ids_format(statement)
    if fmt == "canonical":
        return canonical_format(statement, preferences, definitions or {})
    return statement
