"""A progress bar for `lrs simulate`: days of the term done, on a terminal only.

Piped or redirected output stays quiet (the summary line alone), so logs and CI stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TextIO

from tqdm import tqdm

Send = Callable[[list[dict[str, Any]]], None]


@contextmanager
def days_progress(send: Send, days: int, start: datetime,
                  stream: TextIO | None = None) -> Iterator[Send]:
    """``send``, counting each batch's statements and moving the bar to the newest day in it."""
    out = stream if stream is not None else sys.stderr
    bar = tqdm(total=days, unit="day", desc="simulating", file=out, disable=not out.isatty(),
               dynamic_ncols=True)
    statements = 0

    def counted(batch: list[dict[str, Any]]) -> None:
        nonlocal statements
        send(batch)
        statements += len(batch)
        newest = max(datetime.fromisoformat(s["timestamp"]) for s in batch)
        done = min(days, (newest.date() - start.date()).days + 1)
        bar.set_postfix(statements=statements, refresh=False)
        bar.update(max(0, done - bar.n))

    try:
        yield counted
    finally:
        bar.close()
