"""The views' lag reaches /api/health through shared memory (lrs/views_child.py): read often
while the views are caught up, where a read is one look at the log's head; seldom while they
are behind, where a read costs DuckDB's and the log's reads; and at once when a catch-up
reaches the head."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lrs import views_child
from lrs.views_child import QueryGate, _publish
from lrs.views_process import PublishedLag

BEHIND = {"position": 3, "log_position": 10, "events_behind": 7, "learners_to_refresh": 2,
          "seconds_behind": 1.5}
CAUGHT_UP = {"position": 10, "log_position": 10, "events_behind": 0, "learners_to_refresh": 0,
             "seconds_behind": 0.0}


class ScriptedRunner:
    """What the publisher uses of a ProjectionRunner, with a lag the test sets."""

    def __init__(self, lag: dict[str, Any]) -> None:
        self.stop = threading.Event()
        self.reached_head = threading.Event()
        self.current = lag
        self.reads = 0

    def lag(self) -> dict[str, Any]:
        self.reads += 1
        return dict(self.current)


@pytest.fixture
def published() -> Iterator[PublishedLag]:
    shared = PublishedLag(multiprocessing.get_context("spawn"))
    yield shared
    shared.release()


@contextmanager
def publishing(runner: ScriptedRunner, published: PublishedLag) -> Iterator[None]:
    """The publisher's thread while the block runs; stopped as the views process stops it."""
    thread = threading.Thread(target=_publish, args=(runner, QueryGate(), published), daemon=True)
    thread.start()
    yield
    runner.stop.set()
    runner.reached_head.set()
    thread.join(5)
    assert not thread.is_alive()


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


@pytest.fixture
def behind(published: PublishedLag, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedRunner]:
    """Views behind, their lag published once; the next read on the clock 30 s away."""
    monkeypatch.setattr(views_child, "PUBLISH_BEHIND_EVERY", 30.0)
    runner = ScriptedRunner(BEHIND)
    with publishing(runner, published):
        wait_for(lambda: published.read() == BEHIND)
        yield runner


def test_the_lag_is_read_seldom_while_the_views_are_behind(behind: ScriptedRunner) -> None:
    reads = behind.reads
    time.sleep(10 * views_child.PUBLISH_EVERY)  # ten reads' time, were it caught up
    assert behind.reads == reads


def test_the_lag_is_published_as_soon_as_a_catch_up_reaches_the_head(
        behind: ScriptedRunner, published: PublishedLag) -> None:
    behind.current = CAUGHT_UP
    behind.reached_head.set()
    wait_for(lambda: published.read() == CAUGHT_UP, seconds=5.0)  # not 30 s later


def test_the_lag_is_read_on_the_clock_while_the_views_are_caught_up(
        published: PublishedLag) -> None:
    runner = ScriptedRunner(CAUGHT_UP)
    with publishing(runner, published):
        wait_for(lambda: runner.reads >= 3)  # ten times a second: well within the time allowed
        runner.current = BEHIND  # new events: seen on the clock, no catch-up needed to tell
        wait_for(lambda: published.read() == BEHIND)
