"""The suite's own rule for coroutines: after a browser test the suite's thread has Playwright's
loop running, so a test that starts a loop on that thread fails or passes by the order xdist
gives it (CI met this). Every test runs its coroutines through tests/loops.run."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import uvloop

from tests.loops import run

TESTS = Path(__file__).resolve().parents[1]
STARTS_A_LOOP = re.compile(r"asyncio\.run\(|asyncio\.Runner\(|\.run_until_complete\(|\.run_forever\(")


def test_no_test_starts_a_loop_on_the_suites_thread() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in TESTS.rglob("*.py") if path.name != "loops.py" and path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if STARTS_A_LOOP.search(line)
    ]
    assert offenders == [], offenders


def test_a_coroutine_run_after_a_loop_is_running_on_the_suites_thread_still_runs() -> None:
    async def inner() -> str:
        return type(asyncio.get_running_loop()).__module__

    async def outer() -> str:
        return run(inner(), loop_factory=uvloop.new_event_loop)  # as after Playwright

    assert run(outer()).startswith("uvloop")
