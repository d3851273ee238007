"""How many events the views have yet to apply, counted without rereading the log each time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Counted:
    position: int  # the views' position when counted
    log_position: int  # the log's newest position when counted
    behind: int  # events of the views' topics after ``position``, up to ``log_position``


class EventsBehind:
    """The lag is published ten times a second; counting every event after the views' position
    each time read the whole backlog again (under sustained ingest a third of the projections
    process's CPU). The log is append-only, so a range once counted keeps its count: each call
    counts only what the views applied and what the log gained since the last one.

    Positions commit in order on both stores (PostgreSQL's inserts take the library's EXCLUSIVE
    table lock first): once the log's head reads N, no event below N can still arrive, which
    the runner relies on too. Whether the views are behind at all is the caller's to decide
    exactly (a count is asked for only then)."""

    def __init__(self, count: Callable[[int, int], int]) -> None:
        self._count = count  # events after one log position, through another
        self._last: _Counted | None = None
        self._lock = threading.Lock()

    def __call__(self, position: int, log_position: int) -> int:
        with self._lock:
            last = self._last
            if (last is None or position < last.position or log_position < last.log_position
                    or position >= last.log_position):
                behind = self._between(position, log_position)
            else:
                behind = (last.behind - self._between(last.position, position)
                          + self._between(last.log_position, log_position))
            behind = max(behind, 0)
            self._last = _Counted(position, log_position, behind)
            return behind

    def _between(self, after: int, through: int) -> int:
        return self._count(after, through) if through > after else 0
