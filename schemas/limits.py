"""What any JSON from outside may hold before it goes near the log: a depth limit, and no text a
database cannot keep (PostgreSQL's text refuses NUL; no UTF-8 encoder takes a lone surrogate).

The depth is checked where a body is parsed (statements, documents, Kafka messages); the text
when a statement is validated, whatever door it came in by. A value that passed both can be
encoded, stored and read back by every store and every reader.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_JSON_DEPTH = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class JSONLimitExceeded(ValueError):
    """A JSON value broke a limit; the message names where and which."""


def nesting_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether objects and arrays nest deeper than ``limit`` (the top value is level 1)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if type(item) is dict else item
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
    return False


def may_nest_deeper(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """False when ``value`` surely nests no deeper than ``limit``, in one pass of C.

    orjson's indented text puts each entry of a container at level d on a line indented by 2d
    spaces (a newline in a string is written as an escape, never as a line), so a container
    at level limit + 1, an entry of one at ``limit``, starts a line of 2 x limit spaces; a text
    without such a line holds none. Walking every container in Python was 2.4 us of a
    statement's CPU, this 0.6. A value it cannot rule out is walked (:func:`nesting_depth_exceeds`)."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except orjson.JSONEncodeError:  # past orjson's own depth (254), or text it will not write
        return True
    return b"\n" + b" " * (2 * limit) in text


def check_depth(value: Any, where: str, limit: int = MAX_JSON_DEPTH) -> None:
    if (isinstance(value, dict | list) and may_nest_deeper(value, limit)
            and nesting_depth_exceeds(value, limit)):
        raise JSONLimitExceeded(
            f"{_deepest_path(value, where, limit)}: JSON nests deeper than {limit} levels of"
            f" objects and arrays (the limit is {limit})")


def check_text(value: Any, where: str, limit: int = MAX_JSON_DEPTH) -> None:
    """No NUL character and no lone surrogate in any string or key, naming the first found.

    The common valid value costs one orjson encoding and a byte search for the escape orjson
    writes for NUL; only a suspect value is walked. The encoding also refuses nesting past 254
    levels, which a value that did not come through :func:`parse_json` may have.
    """
    try:
        suspect = b"\\u0000" in orjson.dumps(value)
    except orjson.JSONEncodeError:  # a surrogate, or nesting past 254: walk it to say where
        check_depth(value, where, limit)
        suspect = True
    if suspect:
        problem = _text_problem(value, where)
        if problem is not None:
            raise JSONLimitExceeded(problem)


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{orjson.dumps(_printable(key)).decode()}]"


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")[:200]


def _string_rule(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain the NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must not contain a lone surrogate (U+{ord(text[exc.start]):04X}); send valid UTF-16 pairs"
    return None


def _text_problem(value: Any, where: str) -> str | None:
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            rule = _string_rule(item)
            if rule is not None:
                return f"{path}: {rule}"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                rule = _string_rule(key) if isinstance(key, str) else None
                if rule is not None:
                    return f"{path}: a property name {rule}"
                stack.append((child, _step(path, key)))
        elif isinstance(item, list):
            stack.extend((child, _step(path, i)) for i, child in reversed(list(enumerate(item))))
    return None


def _deepest_path(value: Any, where: str, limit: int, steps: int = 8) -> str:
    """The first few steps of the path to a value nested past the limit."""
    path, item, depth = where, value, 1
    for _ in range(steps):
        children = item.items() if isinstance(item, dict) else enumerate(item)
        deeper = next(((key, child) for key, child in children if isinstance(child, dict | list)
                       and nesting_depth_exceeds(child, limit - depth)), None)
        if deeper is None:
            return path
        key, item = deeper
        depth += 1
        path = _step(path, key)
    return f"{path}…"
