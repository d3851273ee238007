"""Group commit for documents: concurrent writes share one transaction, and each still fails alone.

A document PUT is one small event, so its cost is the commit (SQLite's fsync, PostgreSQL's round
trips and table lock), not the write. One thread per process drains whatever writes are waiting
and appends them in one transaction. When that transaction is refused (two requests changed the
same document, or the store failed), each write is tried again alone, so one request's conflict
never fails another's write, and each hears its own outcome.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from lrs.store.documents import DocumentChange

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Write:
    events: Sequence[Any]
    changes: Sequence[DocumentChange]
    done: Future[None] = field(default_factory=Future)


class DocumentWrites:
    """Appends document events with their view rows, many requests to a transaction."""

    def __init__(self, events: Any, max_writes: int = 256) -> None:
        self._events = events  # the application's EventStore
        self._max_writes = max_writes
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def put(self, events: Sequence[Any], changes: Sequence[DocumentChange]) -> None:
        """Append one request's events; returns once they are durable, raises what refused them."""
        write = _Write(events, changes)
        self._ensure_thread()
        self._queue.put(write)
        write.done.result()

    def close(self) -> None:
        with self._start:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=10)
                self._thread = None

    def _ensure_thread(self) -> None:
        # Started on the first write: most processes that open the store (CLI, projections)
        # never write a document, and need no thread.
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="lrs-document-writes",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, closing = [first], False
            while len(group) < self._max_writes:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    closing = True
                    break
                group.append(nxt)
            self._append(group)
            if closing:
                return

    def _append(self, group: list[_Write]) -> None:
        if len(group) > 1:
            try:
                self._events.put([e for w in group for e in w.events],
                                 document_changes=[c for w in group for c in w.changes])
            except Exception:
                log.debug("a group of %d document writes was refused; writing each alone",
                          len(group))
            else:
                for write in group:
                    write.done.set_result(None)
                return
        for write in group:
            try:
                self._events.put(list(write.events), document_changes=list(write.changes))
            except Exception as exc:
                write.done.set_exception(exc)
            else:
                write.done.set_result(None)
