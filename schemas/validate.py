"""The one way a statement is validated, whichever door it came in by."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.base import PATTERN_RULES
from schemas.limits import MAX_JSON_DEPTH, JSONLimitExceeded, check_depth, check_text
from schemas.statement import Statement


class StatementInvalid(ValueError):
    """A statement broke a rule of the data model; the message names where and which."""


class NestedTooDeep(StatementInvalid):
    """JSON nests objects and arrays deeper than the limit."""


@dataclass(frozen=True, slots=True)
class ValidStatement:
    """A statement that passed validation: the document as sent, and its parsed model."""

    document: dict[str, Any]
    model: Statement


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    if loc[-1:] == ("[key]",):
        loc = loc[:-2]  # a bad key is named in the rule, not in the path
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"Agent", "Group", "Activity", "StatementRef", "SubStatement"}:
            continue  # discriminator tags are not properties
        elif part.startswith("function-") or part in {"list[Activity]", "list[str]"}:
            continue
        else:
            path += f".{part}" if path else part
    return path or "statement"


def _rule(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "is not a property of this object in the xAPI data model"
    if error.get("input", ...) is None:
        return "must not be null"  # JSON null is never a value of an xAPI property
    if kind == "missing":
        return "is required"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        return f"objectType '{tag}' is not allowed here"
    if kind == "literal_error":
        return f"must be {error.get('ctx', {}).get('expected', 'a listed value')}"
    if kind == "string_pattern_mismatch":
        rule = PATTERN_RULES.get(error.get("ctx", {}).get("pattern", ""))
        if rule is not None:
            if error["loc"][-1:] == ("[key]",) and "{input}" not in rule:
                return f"{_property_kind(error['loc'])} '{error['input']}' {rule}"
            return rule.format(input=error["input"])
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _property_kind(loc: tuple[int | str, ...]) -> str:
    return "extension key" if "extensions" in loc else "key"


def describe(exc: ValidationError, prefix: str) -> str:
    """Turn pydantic's errors into one sentence per problem, each naming its property."""
    parts = [f"{_path(prefix, tuple(e['loc']))}: {_rule(e)}" for e in exc.errors()[:5]]
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def validate_statement(document: Any, version: str, where: str = "statement") -> ValidStatement:
    if not isinstance(document, dict):
        raise StatementInvalid(f"{where}: must be a JSON object")
    try:
        check_text(document, where)
    except JSONLimitExceeded as exc:
        raise StatementInvalid(str(exc)) from None
    try:
        model = Statement.model_validate(document, context={"version": version})
    except ValidationError as exc:
        raise StatementInvalid(describe(exc, where)) from None
    return ValidStatement(document=document, model=model)


def validate_statements(payload: Any, version: str) -> list[ValidStatement]:
    """Validate one statement or an array of them; any bad one rejects them all."""
    if isinstance(payload, list):
        if not payload:
            raise StatementInvalid("statements: the array must not be empty")
        return [validate_statement(doc, version, f"statements[{i}]") for i, doc in enumerate(payload)]
    return [validate_statement(payload, version)]


def _name_the_surrogate(body: bytes | str, where: str) -> None:
    """orjson refuses a lone surrogate escape at a position; the stdlib parser reads it, so the
    error can name the property instead, as for every other rule."""
    try:
        value = json.loads(body)
        check_depth(value, where)
        check_text(value, where)
    except JSONLimitExceeded as exc:
        raise StatementInvalid(str(exc)) from None
    except (ValueError, RecursionError):
        return


def parse_json(body: bytes | str, where: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from outside, naming the position of a syntax error or where it nests too deep."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "surrogate" in str(exc):
            _name_the_surrogate(body, where)
        raise StatementInvalid(f"{where}: malformed JSON ({exc})") from None
    try:
        check_depth(value, where, max_depth)
    except JSONLimitExceeded as exc:
        raise NestedTooDeep(str(exc)) from None
    return value
