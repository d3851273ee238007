"""How store_batches splits what it is given into writes (lrs/application.py)."""

from __future__ import annotations

from typing import Any

import pytest

import lrs.application as application


def test_batches_go_in_order_in_writes_of_at_most_the_limit_and_are_never_split(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(application, "MAX_WRITE_STATEMENTS", 5)
    batches: list[Any] = [["a"] * 2, ["b"] * 3, ["c"] * 1, ["d"] * 7, ["e"] * 5, ["f"]]
    writes = application._writes(batches)
    assert [[b[0] for b in w] for w in writes] == [["a", "b"], ["c"], ["d"], ["e"], ["f"]]
    assert [b for w in writes for b in w] == batches


def test_no_batches_make_no_write() -> None:
    assert application._writes([]) == []
