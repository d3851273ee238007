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
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool

INLINE_BODY_BYTES = 64 * 1024
# Checking a statement costs ~60 us whatever its size: 64 KB holds 700 small ones, 45 ms.
INLINE_ITEMS = 32
# Large batches a worker checks at once (lrs/api/main.py makes the limiter): the work is CPU, so
# more at once only holds more of them in memory (a 9 MB batch peaks at 152 MB while checked).
HEAVY_AT_ONCE = 2
_T = TypeVar("_T")


def fits_inline(body_bytes: int | None, items: int = 1) -> bool:
    """A body small enough to parse and check on the loop (None: its size is not known), of
    few enough items (statements) to check there."""
    return body_bytes is not None and body_bytes <= INLINE_BODY_BYTES and items <= INLINE_ITEMS


async def on_loop_if(inline: bool, fn: Callable[..., _T], *args: Any,
                     limiter: anyio.CapacityLimiter | None = None) -> _T:
    """``fn(*args)`` on the calling loop when ``inline``, else in a thread of the pool the
    routes share (Starlette's: 40 threads, where asyncio's own has cores + 4), within
    ``limiter`` when one is given."""
    if inline:
        return fn(*args)
    if limiter is None:
        return await run_in_threadpool(fn, *args)
    return await anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter)


def answered(future: concurrent.futures.Future[_T]) -> asyncio.Future[_T]:
    """``future`` as the running loop awaits it: asyncio.wrap_future, except that a future
    completed on the loop's own thread (an answer the worker's link read from the parent) is
    copied there and then. wrap_future hands every completion to the loop with
    call_soon_threadsafe, which from the loop's own thread is a write to its wake-up descriptor,
    a read of it, and a turn of the loop spent on neither. A cancelled awaiter cancels
    ``future``, as with wrap_future (a request not yet written is then not written)."""
    loop = asyncio.get_running_loop()
    thread = threading.get_ident()
    destination: asyncio.Future[_T] = loop.create_future()

    def copy(source: concurrent.futures.Future[_T]) -> None:
        if destination.cancelled():
            return
        if source.cancelled():
            destination.cancel()
        elif (error := source.exception()) is not None:
            if isinstance(error, concurrent.futures.CancelledError):  # as wrap_future has it
                error = asyncio.CancelledError(*error.args)
            destination.set_exception(error)
        else:
            destination.set_result(source.result())

    def done(source: concurrent.futures.Future[_T]) -> None:
        if loop.is_closed():  # nobody awaits it any more
            return
        if threading.get_ident() == thread:
            copy(source)
        else:
            with contextlib.suppress(RuntimeError):  # it closed since the check above
                loop.call_soon_threadsafe(copy, source)

    def awaiter_done(awaited: asyncio.Future[_T]) -> None:
        if awaited.cancelled():
            future.cancel()

    destination.add_done_callback(awaiter_done)
    future.add_done_callback(done)
    return destination
