"""The saved folds as last committed, kept in memory: the runner's cache of learner_state."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class SavedFolds:
    """The saved folds as last committed, kept in memory up to a byte budget.

    Reading a saved fold back from DuckDB decompresses the whole state column (each fold holds
    its evidence ids), some 150 ms a refresh at 1M statements; this keeps the committed text at
    hand and asks DuckDB only for the folds it does not hold.
    """

    def __init__(self, budget_bytes: int = 256 * 1024 * 1024) -> None:
        self.budget = budget_bytes
        self.size = 0
        self.texts: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self.complete: bool | None = None  # all saved folds in memory; None: not yet loaded

    def get(self, con: Any, learners: list[str]) -> dict[str, tuple[int, str]]:
        """(last position folded, state) of each learner that has a saved fold."""
        if self.complete is None:
            # A filtered read costs as much as reading them all, so the first one reads them all.
            for learner, last_seq, state in con.execute(
                    "SELECT learner, last_seq, state FROM learner_state").fetchall():
                self.texts[learner] = (last_seq, state)
                self.size += len(state)
            self.complete = self.size <= self.budget
            self._evict()
        found = {a: self.texts[a] for a in learners if a in self.texts}
        missing = [a for a in learners if a not in found]
        if missing and not self.complete:
            found.update({row[0]: (row[1], row[2]) for row in con.execute(
                "SELECT learner, last_seq, state FROM learner_state WHERE learner IN (SELECT unnest(?))",
                [missing]).fetchall()})
        return found

    def committed(self, written: dict[str, tuple[int, str] | None]) -> None:
        for learner, saved in written.items():
            old = self.texts.pop(learner, None)
            self.size -= len(old[1]) if old else 0
            if saved is not None:
                self.size += len(saved[1])
                self.texts[learner] = saved
        self._evict()

    def _evict(self) -> None:
        while self.size > self.budget and self.texts:
            _, evicted = self.texts.popitem(last=False)
            self.size -= len(evicted[1])
            self.complete = False
