"""Group commit for documents: concurrent writes share one transaction, and each still fails alone.

A document PUT is one small event, so its cost is the commit (SQLite's fsync, PostgreSQL's round
trips and table lock), not the write. One thread per process drains whatever writes are waiting
and appends them in one transaction (in `lrs serve --workers N`, the parent's thread, for every
worker: lrs/api/links.py). When that transaction is refused (two requests changed the
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
from typing import Any, Protocol

from eventsourcing.persistence import AggregateRecorder, StoredEvent

from lrs import pickled  # noqa: F401  (StoredEvent pickled as its fields, for the workers' writes)
from lrs.store.documents import DocumentChange
from lrs.store.learner_keys import LearnerKey
from lrs.thread_names import name_os_thread

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Write:
    events: Sequence[StoredEvent]
    changes: Sequence[DocumentChange]
    keys: Sequence[LearnerKey] = ()  # new keys the events are sealed under (lrs/key_ring.py)
    generation: int | None = None  # the erasure generation they were sealed at
    done: Future[None] = field(default_factory=Future)

    def kwargs(self) -> dict[str, Any]:
        sealed = {} if self.generation is None else {"learner_keys": list(self.keys),
                                                     "key_generation": self.generation}
        return {"document_changes": list(self.changes), **sealed}


class DocumentWriter(Protocol):
    """What appends document events: this process's group commit, or a worker's link to the
    parent's (lrs/api/links.py). The events come mapped (the requests' processes do the
    mapping, not the single writer), the changes as the view's rows."""

    def submit(self, events: Sequence[StoredEvent], changes: Sequence[DocumentChange],
               keys: Sequence[LearnerKey] = (), generation: int | None = None) -> Future[None]: ...

    def close(self) -> None: ...

    def put(self, events: Sequence[StoredEvent], changes: Sequence[DocumentChange],
            keys: Sequence[LearnerKey] = (), generation: int | None = None) -> None:
        """Append one request's events; returns once they are durable, raises what refused them
        (KeyGenerationChanged: a learner was erased since they were sealed; seal again)."""
        self.submit(events, changes, keys, generation).result()


class DocumentWrites(DocumentWriter):
    """Appends document events with their view rows, many requests to a transaction."""

    def __init__(self, recorder: AggregateRecorder, max_writes: int = 256) -> None:
        self._recorder = recorder  # the application's
        self._max_writes = max_writes
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def submit(self, events: Sequence[StoredEvent], changes: Sequence[DocumentChange],
               keys: Sequence[LearnerKey] = (), generation: int | None = None) -> Future[None]:
        write = _Write(events, changes, keys, generation)
        self._ensure_thread()
        self._queue.put(write)
        return write.done

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
                    self._thread = threading.Thread(target=self._run, name="lrs-doc-writer",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        name_os_thread()
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
            # A write whose caller was cancelled is not appended (lrs/committer.py).
            group = [w for w in group if w.done.set_running_or_notify_cancel()]
            if group:
                self._append(group)
            if closing:
                return

    def _append(self, group: list[_Write]) -> None:
        # Writes sealed at different erasure generations are not checked together: one check
        # would let a write sealed before an erasure through with another's generation.
        generations = {w.generation for w in group if w.generation is not None}
        if len(group) > 1 and len(generations) <= 1:
            sealed = {"learner_keys": [k for w in group for k in w.keys],
                      "key_generation": generations.pop()} if generations else {}
            try:
                self._recorder.insert_events([e for w in group for e in w.events],
                                             document_changes=[c for w in group for c in w.changes],
                                             **sealed)
            except Exception:
                log.debug("a group of %d document writes was refused; writing each alone",
                          len(group))
            else:
                for write in group:
                    write.done.set_result(None)
                return
        for write in group:
            try:
                self._recorder.insert_events(list(write.events), **write.kwargs())
            except Exception as exc:
                write.done.set_exception(exc)
            else:
                write.done.set_result(None)
