"""Group commit: statements from many concurrent requests are appended in one write.

One ``save()`` of many events is an order of magnitude faster than one per request (SQLite
and PostgreSQL both pay per transaction), so a single writer thread drains whatever requests
are waiting and appends them together. Each request's batch still succeeds or fails alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.enrich import format_stored
from lrs.application import LearningRecordStore
from lrs.config import DEFAULT_STORE, MAX_WRITE_STATEMENTS
from lrs.statement_events import PreparedStatement
from lrs.thread_names import name_os_thread

log = logging.getLogger(__name__)
# The statement writer's thread, by this name in Python and to the OS (`top -H`, bench/ingest.py).
WRITER_THREAD = "lrs-writer"
# Seconds without a write after which the store is told it went quiet (a SQLite store then cuts
# its WAL file back, which it keeps at full size while written: lrs/store/sqlite.py).
QUIET_AFTER = 60.0


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IDLE, _PENDING = 0, -1


class InFlight:
    """When the write under way began, in memory that `lrs serve`'s worker processes share, so any
    of them can say which statements are visible (X-Experience-API-Consistent-Through).

    The writer marks a write pending before it reads the clock for ``stored``, and a reader reads
    the clock before the mark: a reader that saw no write under way answers a moment before any
    ``stored`` still to come, and one that saw a pending mark waits the instant until it is a time.
    """

    def __init__(self, shared: Any = None) -> None:
        # Microseconds since the epoch; 8-byte aligned, so a read never sees half a write.
        self.shared = shared if shared is not None else multiprocessing.RawValue("q", _IDLE)

    @property
    def slot(self) -> int | None:
        """Its slot of an InFlightBoard, if it has one."""
        return self.shared.index if isinstance(self.shared, SharedSlot) else None

    def begin(self) -> datetime:
        """Mark a write under way; returns its ``stored`` time."""
        self.shared.value = _PENDING
        now = datetime.now(UTC)
        self.shared.value = (now - _EPOCH) // timedelta(microseconds=1)
        return now

    def end(self) -> None:
        self.shared.value = _IDLE

    def consistent_through(self) -> str:
        """Every statement stored before this instant is visible to queries (Communication 2.1.3)."""
        now = datetime.now(UTC)
        while (since := self.shared.value) == _PENDING:
            time.sleep(0)
        if since == _IDLE:
            return format_stored(now)
        return format_stored(min(now, _EPOCH + timedelta(microseconds=since)))


class SharedSlot:
    """Slot ``index`` of a shared array of 8-byte integers, as InFlight's shared value."""

    __slots__ = ("array", "index")

    def __init__(self, array: Any, index: int) -> None:
        self.array = array
        self.index = index

    @property
    def value(self) -> int:
        return int(self.array[self.index])

    @value.setter
    def value(self, value: int) -> None:
        self.array[self.index] = value


DEFAULT_SLOT = 0


class InFlightBoard:
    """Every store's write under way, in one array `lrs serve`'s parent shares with its workers.

    `default`'s slot is DEFAULT_SLOT in every process, whichever store opens first; the parent
    gives another store the next slot when it opens it, and never gives that slot to another
    while it runs; a worker learns such a store's slot from the parent's first answer about it
    (lrs/api/links.py). Past the last slot, a store's workers ask the parent each time.
    """

    def __init__(self, array: Any = None, slots: int = 256) -> None:
        self.array = array if array is not None else multiprocessing.RawArray("q", slots)  # _IDLE
        self._given: dict[str, int] = {DEFAULT_STORE: DEFAULT_SLOT}
        self._lock = threading.Lock()

    def slot(self, index: int) -> InFlight:
        return InFlight(SharedSlot(self.array, index))

    def for_store(self, store: str) -> InFlight:
        """The store's slot, or memory of its own once every slot is given."""
        with self._lock:
            index = self._given.get(store)
            if index is None and len(self._given) < len(self.array):
                index = self._given[store] = len(self._given)
        return InFlight() if index is None else self.slot(index)


@dataclass(slots=True)
class _Request:
    batch: Sequence[PreparedStatement]
    result: Future[list[str]] = field(default_factory=Future)
    size: int = field(init=False)  # bytes of statement JSON

    def __post_init__(self) -> None:
        self.size = sum(len(s.body) for s in self.batch)


class GroupCommitter:
    """``max_bytes`` bounds a group's statement JSON as ``max_statements`` bounds its count: many
    requests near the body limit once made a write past PostgreSQL's 1 GB message limit, and
    every request of the group was refused while the library retried it for two minutes. A
    request larger than either still goes, alone."""

    def __init__(self, app: LearningRecordStore, max_statements: int = MAX_WRITE_STATEMENTS,
                 in_flight: InFlight | None = None, max_bytes: int = 64 * 1024 * 1024,
                 quiet_after: float = QUIET_AFTER) -> None:
        self.app = app
        self.max_statements = max_statements
        self.max_bytes = max_bytes
        self.quiet_after = quiet_after
        self._written = False  # since the store last went quiet
        self.in_flight = in_flight or InFlight()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._held: _Request | None = None  # taken from the queue, first of the next group
        self._thread = threading.Thread(target=self._run, name=WRITER_THREAD, daemon=True)
        self._thread.start()

    def submit(self, batch: Sequence[PreparedStatement]) -> Future[list[str]]:
        request = _Request(batch)
        self._queue.put(request)
        return request.result

    def store(self, batch: Sequence[PreparedStatement]) -> list[str]:
        """Append one batch and wait until it is durable; raises the error that rejected it."""
        return self.submit(batch).result()

    @property
    def consistency_in_memory(self) -> bool:
        return True

    def consistent_through(self) -> str:
        return self.in_flight.consistent_through()

    def consistent_through_later(self) -> Future[str]:
        done: Future[str] = Future()
        done.set_result(self.consistent_through())
        return done

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _take_group(self, first: _Request) -> tuple[list[_Request], bool]:
        """The first request and those waiting behind it, while the group stays within both
        bounds; the request that would pass one starts the next group."""
        group, count, size = [first], len(first.batch), first.size
        while True:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return group, True
            if count + len(nxt.batch) > self.max_statements or size + nxt.size > self.max_bytes:
                self._held = nxt
                break
            group.append(nxt)
            count, size = count + len(nxt.batch), size + nxt.size
        return group, False

    def _next(self) -> _Request | None:
        """The next request; once none came for ``quiet_after`` seconds after a write, the store
        hears that it went quiet, in this thread, the one that writes."""
        if not self._written:
            return self._queue.get()
        try:
            return self._queue.get(timeout=self.quiet_after)
        except queue.Empty:
            self._written = False
            try:
                self.app.went_quiet()
            except Exception:  # the next write finds the store as it is, and says so
                log.exception("the store could not be tidied after going quiet")
            return self._queue.get()

    def _run(self) -> None:
        name_os_thread()
        while True:
            first = self._held if self._held is not None else self._next()
            self._held = None
            if first is None:
                return
            group, closing = self._take_group(first)
            # A request whose caller was cancelled (its awaiting task, at a server's stop) is not
            # written; the others can no longer be cancelled, so each hears its outcome.
            group = [r for r in group if r.result.set_running_or_notify_cancel()]
            if not group:
                if closing:
                    return
                continue
            now = self.in_flight.begin()
            try:
                outcomes = self.app.store_batches([r.batch for r in group], now=now)
            except Exception as exc:  # the store failed: every waiting request hears why
                log.exception("append failed")
                outcomes = [exc] * len(group)
            finally:
                self.in_flight.end()
            self._written = True
            for request, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    request.result.set_exception(outcome)
                else:
                    request.result.set_result(outcome)
            if closing:
                return
