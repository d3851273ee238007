"""Futures a worker's loop awaits (lrs/request_loop.py ``answered``): the worker's link to the
parent completes them on the loop's own thread, the in-process writer on a thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest

from lrs.request_loop import answered
from tests.loops import run


def completed_later(complete: Any) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()
    asyncio.get_running_loop().call_soon(complete, future)
    return future


def test_a_future_completed_on_the_loops_thread_is_not_handed_back_through_its_wake_up() -> None:
    async def main() -> tuple[int, list[str]]:
        loop = asyncio.get_running_loop()
        handed: list[str] = []
        threadsafe = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
            handed.append(getattr(callback, "__name__", repr(callback)))
            return threadsafe(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        value = await answered(completed_later(lambda f: f.set_result(7)))
        return value, handed

    value, handed = run(main())
    assert value == 7
    assert handed == []


def test_a_future_completed_on_another_thread_wakes_the_loop() -> None:
    async def main() -> int:
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        threading.Timer(0.05, future.set_result, args=(11,)).start()
        return await asyncio.wait_for(answered(future), 10)

    assert run(main()) == 11


def test_the_error_a_future_completes_with_is_raised_to_its_awaiter() -> None:
    async def main() -> None:
        await answered(completed_later(lambda f: f.set_exception(LookupError("refused"))))

    with pytest.raises(LookupError, match="refused"):
        run(main())


def test_an_awaiter_cancelled_before_the_answer_cancels_the_future_it_awaits() -> None:
    """As with asyncio.wrap_future: the group committer then does not write that request."""
    async def main() -> bool:
        future: concurrent.futures.Future[int] = concurrent.futures.Future()

        async def awaiting() -> int:
            return await answered(future)

        task = asyncio.create_task(awaiting())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # the awaited future's callbacks run in the loop's next turn
        return future.cancelled()

    assert run(main())


def test_a_future_cancelled_at_its_source_cancels_its_awaiter() -> None:
    async def main() -> None:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.cancel()
        await answered(future)

    with pytest.raises(asyncio.CancelledError):
        run(main())


def test_a_source_that_fails_with_a_cancellation_cancels_its_awaiter_as_wrap_future_does() -> None:
    async def main() -> None:
        await answered(completed_later(
            lambda f: f.set_exception(concurrent.futures.CancelledError())))

    with pytest.raises(asyncio.CancelledError):
        run(main())


def test_a_future_completed_on_the_loops_thread_after_the_loop_closed_is_left_quietly(
        caplog: pytest.LogCaptureFixture) -> None:
    future: concurrent.futures.Future[int] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    async def wrap() -> None:
        answered(future)  # nobody awaits it: the loop closes under it

    run(wrap(), then=lambda: future.set_result(1))  # on the loop's thread, the loop closed
    assert future.result() == 1
    assert not [r for r in caplog.records if r.name == "concurrent.futures"], caplog.text
