"""The parent's side of `lrs serve --workers N`: it answers each worker's pipe (lrs/api/links.py).

Statements go to the one group committer, so a write holds every worker's waiting requests and
ids are checked once for all of them; document events go to the one document writer likewise.
View queries and analysts' SQL go to the projections process, each kind through threads as many
as its slots, so LRS_VIEW_QUERY_SLOTS and LRS_SQL_SLOTS bound each store across every worker
(one store's queries never take another's turn) and SQL never takes a learner view's turn;
health has a thread of its own. Failed authentications are counted here, for every worker at
once.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from lrs.api.links import (
    CONSISTENT,
    DOCUMENTS,
    HEALTH,
    LIMITS,
    SQL,
    STORE,
    VIEWS,
    Inbox,
    UnreadableRequest,
    answer_message,
    framed,
    read_request,
)
from lrs.api.ratelimit import AccessLimits
from lrs.committer import GroupCommitter
from lrs.thread_names import name_os_thread
from lrs.views_process import SLOT_WAIT, ViewsBusy, ViewsUnavailable

if TYPE_CHECKING:
    from lrs.api.services import Services

log = logging.getLogger(__name__)


class WorkerHub:
    """Each message names its store (a worker asks only for its caller's own); the store's
    committer and projections process are the parent's, one of each per store, opened when a
    worker first names it."""

    def __init__(self, services: Services, limits: AccessLimits, view_slots: int,
                 sql_slots: int) -> None:
        self.services = services
        self.limits = limits
        # Queries block on the projections process; they wait here, never in a reader. Each
        # store has slots of its own (as each has its own projections process): one store's
        # slow queries must not answer another store's with 503.
        self._view_slots, self._sql_slots = view_slots, sql_slots
        self._views: dict[str, _SlotPool] = {}
        self._sql: dict[str, _SlotPool] = {}
        self._pools_lock = threading.Lock()
        self._health = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lrs-hub-health")
        # Opening a store (its log, its committer, its projections process) takes seconds; it
        # is done here, so the pipe goes on answering the worker's other requests meanwhile.
        self._opening = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lrs-hub-open")

    def serve(self, connection: Connection, name: str) -> threading.Thread:
        """Answer one worker's pipe until it closes."""
        thread = threading.Thread(target=self._read, args=(connection,), name=f"lrs-hub-{name}",
                                  daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._pools_lock:
            slots = [*self._views.values(), *self._sql.values()]
        for pool in [*(s.pool for s in slots), self._health, self._opening]:
            pool.shutdown(wait=False, cancel_futures=True)

    def _slots(self, pools: dict[str, _SlotPool], kind: str, slots: int, store: str) -> _SlotPool:
        with self._pools_lock:
            pool = pools.get(store)
            if pool is None:
                pool = pools[store] = _SlotPool(kind, slots)
            return pool

    def _read(self, connection: Connection) -> None:
        name_os_thread()
        # Answers are sent by a thread of this pipe's own: sent from the committer's callback,
        # they held the one writer (waiting for the interpreter lock after each write to the
        # pipe) for an eighth of its time at batch 1.
        outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        threading.Thread(target=_send_answers, args=(connection, outbox), daemon=True,
                         name="lrs-hub-answers").start()

        def answer(number: int, future: Future[Any]) -> None:
            error = future.exception()
            outbox.put((number, False, error) if error is not None
                       else (number, True, future.result()))

        try:
            for message in _messages(connection):
                try:
                    number, kind, payload = read_request(message)
                except UnreadableRequest as exc:  # a bug in the worker; the pipe goes on
                    log.error("a worker's request could not be read: %s", exc)
                    if exc.number >= 0:
                        outbox.put((exc.number, False, RuntimeError(str(exc))))
                    continue
                try:
                    future = self._dispatch(kind, payload)
                except Exception as exc:  # a payload not of its kind's shape: its error alone
                    future = Future()
                    future.set_exception(RuntimeError(
                        f"the parent could not answer a {kind!r} request ({type(exc).__name__}:"
                        f" {exc})"))
                future.add_done_callback(partial(answer, number))
        finally:
            outbox.put(None)

    def _dispatch(self, kind: str, payload: list[Any]) -> Future[Any]:
        if kind in (STORE, DOCUMENTS, VIEWS, SQL, HEALTH, CONSISTENT):
            return self._for_store(kind, payload[0], payload[1:])
        future: Future[Any] = Future()
        if kind == LIMITS:
            try:  # quick, in memory: answered here
                future.set_result(getattr(self.limits, payload[0])(*payload[1:]))
            except Exception as exc:
                future.set_exception(exc)
        else:
            future.set_exception(RuntimeError(f"the parent cannot answer {kind!r}"))
        return future

    def _for_store(self, kind: str, name: str, payload: list[Any]) -> Future[Any]:
        if self.services.is_open(name):
            return self._ask_store(kind, name, payload)
        outer: Future[Any] = Future()

        def open_then_ask() -> None:
            inner = self._ask_store(kind, name, payload)
            inner.add_done_callback(partial(_pass_on, outer))

        self._opening.submit(open_then_ask)
        return outer

    def _ask_store(self, kind: str, name: str, payload: list[Any]) -> Future[Any]:
        future: Future[Any]
        try:
            services = self.services.named(name)
        except Exception as exc:  # an archived store: the worker checked, but it may just be
            future = Future()
            future.set_exception(exc)
            return future
        views = services.views
        if kind == STORE:
            return services.committer.submit(payload[0])
        if kind == DOCUMENTS:
            return services.store.document_writes.submit(*payload)
        if kind == CONSISTENT:  # and where the worker reads it from now on (WriterLink)
            future = Future()
            committer = services.committer
            slot = committer.in_flight.slot if isinstance(committer, GroupCommitter) else None
            future.set_result((committer.consistent_through(), slot))
            return future
        if views is None:
            future = Future()
            future.set_exception(ViewsUnavailable("the views do not run with this server"))
            return future
        if kind == VIEWS:
            pool = self._slots(self._views, "view queries", self._view_slots, name)
            return pool.submit(views._ask, *payload)
        if kind == SQL:
            return self._slots(self._sql, "SQL queries", self._sql_slots, name).submit(
                views.sql, *payload)
        return self._health.submit(views.health, services.store)


def _pass_on(outer: Future[Any], inner: Future[Any]) -> None:
    error = inner.exception()
    if error is not None:
        outer.set_exception(error)
    else:
        outer.set_result(inner.result())


def _messages(connection: Connection) -> Iterator[bytes]:
    """The worker's messages as they arrive, until it closes its end. A read takes whatever the
    pipe holds: the requests that arrived together cost one system call (and one hand-back of
    the interpreter lock), where Connection.recv made two for each."""
    inbox = Inbox()
    while True:
        try:
            messages = inbox.read(connection.fileno())
        except OSError:
            return
        if messages is None:
            return
        yield from messages


def _send_answers(connection: Connection, outbox: queue.SimpleQueue[tuple[Any, ...] | None]) -> None:
    """The answers ready together go in one write: a group commit finishes several of a
    worker's requests at once."""
    name_os_thread()
    while (reply := outbox.get()) is not None:
        replies, stopping = [reply], False
        while True:
            try:
                more = outbox.get_nowait()
            except queue.Empty:
                break
            if more is None:
                stopping = True
                break
            replies.append(more)
        # An answer that will not pickle fails its own request (answer_message), not this thread.
        data = b"".join(framed(answer_message(*r)) for r in replies)
        try:
            _write_all(connection.fileno(), data)
        except (OSError, ValueError):
            return  # the worker is gone; its client's connection went with it
        if stopping:
            return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _SlotPool:
    """As many threads as slots; a query that waited for one longer than a request waits for a
    slot in a single process is refused (503) instead of run late."""

    def __init__(self, kind: str, slots: int) -> None:
        self.kind = kind
        self.slots = max(1, slots)
        self.pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="lrs-hub-slot")

    def submit(self, call: Callable[..., Any], *args: Any) -> Future[Any]:
        return self.pool.submit(self._run, time.monotonic(), call, *args)

    def _run(self, queued: float, call: Callable[..., Any], *args: Any) -> Any:
        if time.monotonic() - queued > SLOT_WAIT:
            raise ViewsBusy(f"all {self.slots} slots for {self.kind} are busy; retry shortly")
        return call(*args)
