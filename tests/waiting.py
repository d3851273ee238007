"""Waiting for what another process or thread does: a store's writer, the views process, a
Kafka consumer, a checkpoint thread. One poll loop for every test that waits."""

from __future__ import annotations

import time
from collections.abc import Callable


def within(condition: Callable[[], object], seconds: float, interval: float = 0.05) -> bool:
    """Whether ``condition`` came true within ``seconds``; for a test that asserts it did not."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(condition: Callable[[], object], what: str = "the condition",
               seconds: float = 30.0, interval: float = 0.05) -> None:
    """Returns once ``condition`` is true; fails the test naming ``what`` if not in time."""
    if not within(condition, seconds, interval):
        raise AssertionError(f"{what}: not within {seconds:g} s")
