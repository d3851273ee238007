"""Coroutines run from a test: in a thread of their own, with a loop of their own, because a
browser test's Playwright leaves the suite's thread with a loop running (asyncio.run refuses)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T],
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
        then: Callable[[], object] | None = None) -> T:
    """``then``: called on the loop's thread once the loop has closed."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                result = runner.run(coroutine)
            if then is not None:
                then()
            outcome.append((True, result))
        except BaseException as exc:  # handed to the test's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result
