"""The embedded projections in a process of their own, beside `lrs serve`.

Folding statements into the views is Python work. Run as a thread of the server it competed with
request handling for the interpreter lock, and at 1,000 statements/s a statement took 2.6 s (p50)
to 9 s (p95) to reach the views. In a child process it has an interpreter of its own. DuckDB lets
one process open a views file, so the child also answers the API's view queries, over pipes.

View queries never hold a thread the xAPI routes need: a request waits for a slot of its kind
(learner and class views, or analysts' SQL, which has fewer) without a thread, runs in threads
of a limiter of its own, and is refused with 503 and Retry-After when its slots stay full. The
child interrupts a query at its time limit. Health reads the lag the child publishes to shared
memory, so it answers while every slot is busy. The child's side is lrs/views_child.py.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from lrs.config import Settings
from lrs.errors import LRSError
from lrs.interrupts import children_start_deaf
from projections.queries import SQLLimits, read_only_sql

if TYPE_CHECKING:
    from lrs.application import LearningRecordStore

log = logging.getLogger("lrs.projections")

READY_TIMEOUT = 300.0  # opening a views file of an older schema drops it first
RESTART_AFTER = 5.0
LAG = "lag"  # the request for the runner's lag, beside query functions
SLOT_WAIT = 1.0  # a request waits this long for a free slot (holding no thread), then 503
PIPE_WAIT = 1.0
ANSWER_GRACE = 5.0  # past a query's time limit, before the parent gives up on the child's answer
RETRY_VIEWS = 1
RETRY_SQL = 5
_LAG = ("position", "log_position", "events_behind", "learners_to_refresh", "seconds_behind")


class ViewsUnavailable(LRSError):
    """503: the projections cannot answer now; ``retry_after`` seconds is a fair wait."""

    status = 503

    def __init__(self, message: str, retry_after: float = RESTART_AFTER) -> None:
        super().__init__(message)
        self.retry_after = max(1, round(retry_after))

    def __reduce__(self) -> tuple[Any, ...]:  # the child raises these too, across the pipe
        return (type(self), (str(self), self.retry_after))


class ViewsBusy(ViewsUnavailable):
    """503: every slot for this kind of query is taken, or the query ran out of time."""


class Slots:
    """How many queries of one kind may run at once; the rest wait briefly, then get 503."""

    def __init__(self, kind: str, size: int, retry_after: int) -> None:
        self.kind = kind
        self.size = size
        self.retry_after = retry_after
        self.semaphore = anyio.Semaphore(size)

    def in_use(self) -> dict[str, int]:
        return {"running": self.size - self.semaphore.value, "slots": self.size}


class PublishedLag:
    """The runner's lag in shared memory: the child writes it, the parent's health reads it."""

    def __init__(self, context: SpawnContext) -> None:
        self._values: Any = context.Array("d", 1 + len(_LAG))  # [published?, *_LAG]

    def write(self, lag: dict[str, Any]) -> None:
        with self._values.get_lock():
            self._values[:] = [1.0, *(float(lag[name]) for name in _LAG)]

    def release(self) -> None:
        """Drop the shared memory and its lock now, while the resource tracker still listens
        (left to interpreter exit, it was reported as a leaked semaphore)."""
        self._values = None

    def read(self) -> dict[str, Any] | None:
        if self._values is None:
            return None
        lock = self._values.get_lock()
        if not lock.acquire(timeout=0.5):  # a child killed while writing leaves it held
            return None
        try:
            published, *values = list(self._values)
        finally:
            lock.release()
        if not published:
            return None
        lag: dict[str, Any] = {name: int(value) for name, value in zip(_LAG, values, strict=True)}
        lag["seconds_behind"] = values[-1]
        return lag


class ViewsProcess:
    """The parent's handle: starts the child, sends it queries, restarts it if it died."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._started = 0.0
        self._make_slots(settings)
        self._closing = threading.Event()
        self._start()
        threading.Thread(target=self._supervise, daemon=True, name="lrs-views-supervisor").start()

    def _make_slots(self, settings: Settings) -> None:
        self._view_slots = Slots("view queries", settings.view_query_slots, RETRY_VIEWS)
        self._sql_slots = Slots("SQL queries", settings.sql_slots, RETRY_SQL)
        # Threads for view calls come from a limiter of their own, never from the default
        # limiter that every xAPI route's run_in_threadpool shares.
        self._threads = anyio.CapacityLimiter(settings.view_query_slots + settings.sql_slots)

    def _start(self) -> None:
        pipes = self.settings.view_query_slots + self.settings.sql_slots
        pairs = [self._context.Pipe() for _ in range(pipes)]
        ready_parent, ready_child = self._context.Pipe(duplex=False)
        # A pipe, not a multiprocessing Event: setting an Event whose waiter was killed (Ctrl-C
        # reaches the whole process group) blocked the server's shutdown for ever.
        stop_child, self._stop = self._context.Pipe(duplex=False)
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._published = PublishedLag(self._context)
        from lrs.views_child import serve

        self.process = self._context.Process(
            target=serve, name="lrs-projections", daemon=True,
            args=(self.settings, [child for _, child in pairs], ready_child, stop_child,
                  self._published))
        with children_start_deaf():
            self.process.start()
        self._started = time.monotonic()
        ready_child.close()
        stop_child.close()
        for parent, child in pairs:
            child.close()
            self._free.put(parent)
        if not ready_parent.poll(READY_TIMEOUT):
            raise RuntimeError("the projections process did not open its views file in time")
        try:
            error = ready_parent.recv()
        except EOFError:
            error = f"it exited with code {self.process.exitcode}"
        if error:
            self.process.join(timeout=10)
            raise RuntimeError(f"the projections process could not start: {error}")

    # --- from a request's task: a slot, then a thread of the views' own limiter ----------------

    async def query(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A learner or class view (a function of ``projections.queries``), in a view slot."""
        return await self._in_slot(self._view_slots, self.call, fn, *args)

    async def query_sql(self, sql: str) -> dict[str, Any]:
        """An analyst's SELECT, in one of the (fewer) SQL slots."""
        result: dict[str, Any] = await self._in_slot(self._sql_slots, self.sql, sql)
        return result

    async def _in_slot(self, slots: Slots, call: Callable[..., Any], *args: Any) -> Any:
        acquired = False
        with anyio.move_on_after(SLOT_WAIT):
            await slots.semaphore.acquire()
            acquired = True
        if not acquired:
            raise ViewsBusy(f"all {slots.size} slots for {slots.kind} are busy; retry in"
                            f" {slots.retry_after} s", slots.retry_after)
        try:
            return await anyio.to_thread.run_sync(call, *args, limiter=self._threads)
        finally:
            slots.semaphore.release()

    def slots_in_use(self) -> dict[str, dict[str, int]]:
        return {"view_queries": self._view_slots.in_use(), "sql_queries": self._sql_slots.in_use()}

    # --- blocking calls: over a pipe to the child ----------------------------------------------

    def call(self, fn: Callable[..., Any] | str, *args: Any) -> Any:
        """Run a query function of ``projections.queries`` (or LAG) in the child, within
        LRS_VIEW_QUERY_TIMEOUT_SECONDS."""
        limit = self.settings.view_query_timeout_seconds
        return self._ask(fn, args, limit, limit)

    def sql(self, sql: str) -> dict[str, Any]:
        """An analyst's SELECT in the child, within the SQL limits (read_only_sql keeps them)."""
        limits = SQLLimits.of(self.settings)
        result: dict[str, Any] = self._ask(read_only_sql, (sql, limits), None,
                                           limits.timeout_seconds)
        return result

    def lag(self) -> dict[str, Any]:
        return dict(self.call(LAG))

    def _ask(self, fn: Callable[..., Any] | str, args: tuple[Any, ...], limit: float | None,
             expected: float) -> Any:
        self._ensure_running()
        free = self._free  # a restart replaces the pool; a pipe goes back to the one it came from
        try:
            connection: Connection | None = free.get(timeout=PIPE_WAIT)
        except queue.Empty:
            raise ViewsBusy("every pipe to the projections process is busy; retry shortly",
                            RETRY_VIEWS) from None
        assert connection is not None
        try:
            connection.send((fn, args, limit))
            if not connection.poll(expected + ANSWER_GRACE):
                # Its answer is still to come: the pipe rejoins the pool once that is read.
                threading.Thread(target=_reclaim, args=(connection, free), daemon=True).start()
                connection = None
                raise ViewsBusy(f"the projections process did not answer within {expected:g} s;"
                                " retry shortly")
            ok, value = connection.recv()
        except (EOFError, OSError):
            raise ViewsUnavailable("the projections process stopped; it is being restarted,"
                                   " retry shortly") from None
        finally:
            if connection is not None:
                free.put(connection)
        if not ok:
            raise value
        return value

    # --- health, without a view query ----------------------------------------------------------

    def health(self, store: LearningRecordStore) -> dict[str, Any]:
        """The lag the child last published, brought up to the log's head; the slots in use."""
        state = {"mode": "embedded", **self.slots_in_use()}
        published = self._published.read() if self.process.is_alive() else None
        if published is None:  # unknown, which no client may take for caught up
            return {**state, "state": "starting" if self.process.is_alive() else "restarting",
                    **dict.fromkeys(_LAG)}
        head = store.recorder.max_notification_id() or 0
        # Events appended since the child looked count as behind until it looks again (within
        # a tenth of a second), so a client waiting for zero never sees it before the views have them.
        published["events_behind"] += max(0, head - published["log_position"])
        published["log_position"] = max(head, published["log_position"])
        return {**state, "state": "running", **published}

    # --- the child's life ----------------------------------------------------------------------

    def _supervise(self) -> None:
        """Start a child that died again, even when no query comes to notice."""
        while not self._closing.wait(1.0):
            if self.process.is_alive():
                continue
            try:
                self._ensure_running()
            except ViewsUnavailable:
                pass  # too soon after the last start; the next round tries again
            except Exception:
                log.exception("starting the projections process again failed")

    def _ensure_running(self) -> None:
        if self.process.is_alive():
            return
        with self._lock:
            if self.process.is_alive() or self._closing.is_set():
                return
            if time.monotonic() - self._started < RESTART_AFTER:
                raise ViewsUnavailable("the projections process stopped; retry shortly")
            log.error("the projections process exited (code %s); starting it again",
                      self.process.exitcode)
            self._start()

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            with contextlib.suppress(OSError):  # the child is gone already
                self._stop.send(True)
            self._stop.close()
            self.process.join(timeout=30)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout=5)
            self._published.release()


def _reclaim(connection: Connection, free: queue.SimpleQueue[Connection]) -> None:
    try:
        connection.recv()
    except (EOFError, OSError):
        return
    free.put(connection)
