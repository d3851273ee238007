"""The depth limit's quick test (schemas/limits.py) never clears a value the walk refuses."""

from __future__ import annotations

import random
from typing import Any

import pytest

from schemas.limits import (
    MAX_JSON_DEPTH,
    JSONLimitExceeded,
    check_depth,
    may_nest_deeper,
    nesting_depth_exceeds,
)


def nested(depth: int, rng: random.Random) -> Any:
    """A value whose containers nest exactly ``depth`` levels, each level an object or an array,
    some with siblings, empty innermost or not, with keys that hold newlines and spaces."""
    if depth == 0:
        return rng.choice([1, "leaf", "\n" + " " * 200, None])
    inner = nested(depth - 1, rng) if depth > 1 else rng.choice([[], {}, [0], {"k": 0}])
    if depth == 1:
        return inner
    if rng.random() < 0.5:
        return [rng.choice(["a", 1]), inner] if rng.random() < 0.5 else [inner]
    key = rng.choice(["k", "a key\nwith a newline" + " " * 140, ""])
    return {key: inner, "sibling": "x"} if rng.random() < 0.5 else {key: inner}


@pytest.mark.parametrize("depth", range(MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH + 4))
def test_a_value_the_quick_test_clears_is_one_the_walk_clears(depth: int) -> None:
    rng = random.Random(depth)
    for _ in range(200):
        value = nested(depth, rng)
        assert nesting_depth_exceeds(value) == (depth > MAX_JSON_DEPTH)
        if nesting_depth_exceeds(value):
            assert may_nest_deeper(value)


def test_a_container_one_level_past_the_limit_is_refused_even_empty() -> None:
    for innermost in ([], {}):
        value: Any = innermost
        for _ in range(MAX_JSON_DEPTH):
            value = [value]
        assert may_nest_deeper(value)
        with pytest.raises(JSONLimitExceeded, match="deeper than 64"):
            check_depth(value, "body")


def test_a_value_past_orjsons_own_depth_is_walked_and_refused() -> None:
    value: Any = []
    for _ in range(300):
        value = {"k": value}
    assert may_nest_deeper(value)
    with pytest.raises(JSONLimitExceeded):
        check_depth(value, "body")


def test_a_value_at_the_limit_passes() -> None:
    value: Any = 0
    for _ in range(MAX_JSON_DEPTH):
        value = [value]
    check_depth(value, "body")


def test_a_value_a_level_short_of_the_limit_is_cleared_without_the_walk() -> None:
    value: Any = {"a key\nwith a newline" + " " * 200: "\n" + " " * 200}
    for _ in range(MAX_JSON_DEPTH - 2):
        value = [value, "x"]
    assert not nesting_depth_exceeds(value, MAX_JSON_DEPTH - 1)
    assert not may_nest_deeper(value)
