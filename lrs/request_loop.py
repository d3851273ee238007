"""What a worker's event loop does itself, and what it hands to a thread.

One loop serves every request of its worker. Handing a small request's work to a thread and
back cost it a fifth of its throughput (documents) or a tenth (batch-1 statements), so small
work that waits on nothing stays on the loop. Work that could stall it goes to a thread, where
the interpreter still switches to the loop every few milliseconds: a read over a network
(PostgreSQL; in an outage it waits out its connect timeout), or the parsing and checking of a
large body (a 10 MB batch of statements is a second of CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

INLINE_BODY_BYTES = 64 * 1024
_T = TypeVar("_T")


def fits_inline(body_bytes: int | None) -> bool:
    """A body small enough to parse and check on the loop (None: its size is not known)."""
    return body_bytes is not None and body_bytes <= INLINE_BODY_BYTES


async def on_loop_if(inline: bool, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` on the calling loop when ``inline``, else in a thread of its executor."""
    if inline:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)
