"""Group commit: statements from many concurrent requests are appended in one write.

One ``save()`` of many events is an order of magnitude faster than one per request (SQLite
and PostgreSQL both pay per transaction), so a single writer thread drains whatever requests
are waiting and appends them together. Each request's batch still succeeds or fails alone.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.enrich import format_stored
from lrs.application import LearningRecordStore, PreparedStatement

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Request:
    batch: Sequence[PreparedStatement]
    result: Future[list[str]] = field(default_factory=Future)


class GroupCommitter:
    def __init__(self, app: LearningRecordStore, max_statements: int = 5000) -> None:
        self.app = app
        self.max_statements = max_statements
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._in_flight_since: str | None = None
        self._thread = threading.Thread(target=self._run, name="lrs-group-commit", daemon=True)
        self._thread.start()

    def submit(self, batch: Sequence[PreparedStatement]) -> Future[list[str]]:
        request = _Request(batch)
        self._queue.put(request)
        return request.result

    def store(self, batch: Sequence[PreparedStatement]) -> list[str]:
        """Append one batch and wait until it is durable; raises the error that rejected it."""
        return self.submit(batch).result()

    def consistent_through(self) -> str:
        """Every statement stored before this instant is visible to queries (Communication 2.1.3)."""
        in_flight = self._in_flight_since
        return in_flight if in_flight is not None else format_stored(datetime.now(UTC))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _take_group(self, first: _Request) -> tuple[list[_Request], bool]:
        group, count = [first], len(first.batch)
        while count < self.max_statements:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return group, True
            group.append(nxt)
            count += len(nxt.batch)
        return group, False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, closing = self._take_group(first)
            now = datetime.now(UTC)
            self._in_flight_since = format_stored(now)
            try:
                outcomes = self.app.store_batches([r.batch for r in group], now=now)
            except Exception as exc:  # the store failed: every waiting request hears why
                log.exception("append failed")
                outcomes = [exc] * len(group)
            finally:
                self._in_flight_since = None
            for request, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    request.result.set_exception(outcome)
                else:
                    request.result.set_result(outcome)
            if closing:
                return
