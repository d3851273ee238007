"""A worker process's side of `lrs serve --workers N`: the writer and the views are the parent's.

Each worker answers HTTP (reading the body, validating, preparing statements, queries, documents)
on its own core; the prepared statements and the document events go to the one writer in the
parent, whose group commit then spans every worker's requests, and view queries go to the
parent's projections process. All travel over one pipe to the parent, multiplexed by request
number (lrs/api/hub.py answers them).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import StoredEvent

from lrs.api.ratelimit import MAX_SUBJECTS, AccessLimits
from lrs.committer import InFlight, InFlightBoard
from lrs.config import Settings
from lrs.document_writes import DocumentWriter
from lrs.request_loop import answered
from lrs.statement_events import PreparedStatement
from lrs.store.documents import DocumentChange
from lrs.store.learner_keys import LearnerKey
from lrs.views_process import (
    ANSWER_GRACE,
    PIPE_WAIT,
    ViewsBusy,
    ViewsProcess,
    ViewsUnavailable,
)

if TYPE_CHECKING:
    from lrs.application import LearningRecordStore

log = logging.getLogger(__name__)

STORE, VIEWS, SQL, HEALTH, LIMITS = "store", "views", "sql", "health", "limits"
CONSISTENT, DOCUMENTS = "consistent", "documents"
KNOWN_SECRET_REFRESH = 3600.0  # how long a worker trusts its copy of "this secret was accepted"
PARENT_GRACE = 10.0  # the parent's own queue of view queries, from every worker


class ParentGone(ViewsUnavailable):
    """503: the pipe to `lrs serve`'s parent process broke (it is stopping or was killed)."""


class ParentLink:
    """Requests to the parent over one pipe, written and read by the worker's event loop.

    Threads that sent and received for the loop cost each request two hand-offs, and every
    read the loop made in between waited for the interpreter lock they held (a third of a
    document PUT's time on the loop). Now the loop writes what the pipe takes and keeps the
    rest until it is writable, and reads answers as they arrive, a large one in pieces between
    requests; a thread that asks (a view query in the thread pool) pickles its own request and
    hands the bytes to the loop."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._numbers = itertools.count()
        self._waiting: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._broken = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._sock: socket.socket | None = None
        self._unsent = bytearray()  # what the pipe has not taken yet (the loop's alone)
        self._asked: list[bytes] = []  # asked in this turn of the loop, not yet written
        self._inbox = Inbox()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on ``loop``'s thread, before the first request: the loop owns the pipe."""
        # A socket of its own (a duplicate descriptor): closing it leaves the Connection's. The
        # two share one open file, so the Connection is non-blocking too: nothing may use it.
        sock = socket.socket(fileno=os.dup(self.connection.fileno()))
        sock.setblocking(False)
        self._sock, self._loop, self._loop_thread = sock, loop, threading.get_ident()
        loop.add_reader(sock.fileno(), self._readable)

    def ask(self, kind: str, *payload: Any) -> Future[Any]:
        future: Future[Any] = Future()
        # Sent is sent: a caller that stops waiting (a cancelled task) leaves the answer to land
        # here unread, rather than make it land on a cancelled future.
        future.set_running_or_notify_cancel()
        number = next(self._numbers)
        with self._lock:
            if self._broken or self._loop is None:
                future.set_exception(ParentGone("the LRS is stopping; retry shortly"))
                return future
            self._waiting[number] = future
        try:
            data = framed(request_message(kind, number, payload))
        except Exception as exc:  # it would not pickle: only that request fails
            self._answer(number, False, exc)
            return future
        if threading.get_ident() == self._loop_thread:
            self._send_soon(data)
        else:
            try:
                self._loop.call_soon_threadsafe(self._send_soon, data)
            except RuntimeError:  # the loop has closed: the worker is stopping
                self._fail_all()
        return future

    def close(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            # No loop reads answers any more: a thread still waiting for one learns it now,
            # rather than wait out its timeout (or for ever, without one).
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._fail_all()
        elif threading.get_ident() == self._loop_thread:
            self._detach()
        else:
            try:
                loop.call_soon_threadsafe(self._detach)
            except RuntimeError:  # it closed meanwhile
                self._fail_all()

    def _detach(self) -> None:
        if self._sock is None or self._loop is None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._loop.remove_writer(self._sock.fileno())
        self._sock.close()
        self._sock = None
        self._fail_all()

    def _send_soon(self, data: bytes) -> None:
        """What the loop asks in one turn goes to the parent in one write, at the turn's end:
        each write wakes the parent's reader, and a wake-up of another process cost a
        batch-1 request more of its worker's time than the pickling and the validation."""
        self._asked.append(data)
        if len(self._asked) == 1:
            assert self._loop is not None
            self._loop.call_soon(self._send_asked)

    def _send_asked(self) -> None:
        asked, self._asked = self._asked, []  # taken first: a failure below cannot stall later asks
        self._write(b"".join(asked))

    def _write(self, data: bytes) -> None:
        if self._sock is None:
            self._fail_all()
            return
        if self._unsent:  # the pipe is full: in turn, after what waits
            self._unsent += data
            return
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail_all()
            return
        if sent < len(data):
            self._unsent += memoryview(data)[sent:]
            assert self._loop is not None
            self._loop.add_writer(self._sock.fileno(), self._writable)

    def _writable(self) -> None:
        assert self._sock is not None and self._loop is not None
        try:
            sent = self._sock.send(self._unsent)
        except BlockingIOError:
            return
        except OSError:
            self._detach()
            return
        del self._unsent[:sent]
        if not self._unsent:
            self._loop.remove_writer(self._sock.fileno())

    def _readable(self) -> None:
        assert self._sock is not None
        try:
            messages = self._inbox.read(self._sock.fileno())
        except BlockingIOError:
            return
        except OSError:
            messages = None
        if messages is None:  # the parent closed the pipe (it is stopping, or was killed)
            self._detach()
            return
        for message in messages:
            self._answer(*read_answer(message))

    def _answer(self, number: int, ok: bool, value: Any) -> None:
        with self._lock:
            future = self._waiting.pop(number, None)
        if future is None:
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def _fail_all(self) -> None:
        with self._lock:
            self._broken = True
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(ParentGone("the LRS is stopping; retry shortly"))


RECEIVE_CHUNK = 1 << 20  # a large answer is read this much at a time, between other work
_NUMBER = struct.Struct("!Q")


def _dumps(message: Any) -> bytes:
    """Plain pickling: multiprocessing's ForkingPickler adds reducers for pipes and sockets,
    which no message holds, and made a pickler with a copy of every reducer for each message
    (13 us for a batch-1 request against 9.6, 8.4 for a document write against 5.6)."""
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def answer_message(number: int, ok: bool, value: Any) -> bytes:
    """An answer as the parent sends it: the request's number ahead of the pickle, so that an
    answer that cannot be read back (an exception whose class will not unpickle) still fails
    its own request, and only it."""
    try:
        pickled = _dumps((ok, value))
    except Exception as exc:  # e.g. a driver's error holding a handle
        pickled = _dumps((False, RuntimeError(
            f"the answer could not be sent to the worker ({type(exc).__name__})")))
    return b"".join((_NUMBER.pack(number), pickled))


def request_message(kind: str, number: int, payload: Sequence[Any]) -> bytes:
    """A request as a worker sends it: its number ahead of the pickle, as an answer's is, so
    that a request the parent cannot read back is still answered (with an error), not left to
    wait for ever."""
    return b"".join((_NUMBER.pack(number), _dumps((kind, *payload))))


def read_request(message: bytes) -> tuple[int, str, list[Any]]:
    """The number, kind and payload of a request. UnreadableRequest says what is wrong with
    one, with its number (-1 when the message is too short to hold one)."""
    if len(message) < _NUMBER.size:
        raise UnreadableRequest(-1, f"a message of {len(message)} bytes holds no request number")
    (number,) = _NUMBER.unpack_from(message)
    try:
        kind, *payload = pickle.loads(message[_NUMBER.size:])
    except Exception as exc:
        raise UnreadableRequest(number, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(kind, str):
        raise UnreadableRequest(number, f"its kind is a {type(kind).__name__}, not a name")
    return number, kind, payload


class UnreadableRequest(ValueError):
    def __init__(self, number: int, why: str) -> None:
        super().__init__(f"the parent could not read this request ({why})")
        self.number = number


def read_answer(message: bytes) -> tuple[int, bool, Any]:
    (number,) = _NUMBER.unpack_from(message)
    try:
        ok, value = pickle.loads(message[_NUMBER.size:])
    except Exception as exc:
        return number, False, RuntimeError(
            f"the parent's answer could not be read ({type(exc).__name__}: {exc})")
    return number, ok, value


def framed(message: bytes | memoryview) -> bytes:
    """``message`` as multiprocessing's Connection frames it (the parent reads with one)."""
    size = len(message)
    header = struct.pack("!iQ", -1, size) if size > 0x7FFFFFFF else struct.pack("!i", size)
    return b"".join((header, message))


class Inbox:
    """The messages a pipe brings, read a chunk at a time into one buffer kept for the pipe's
    life: a fresh RECEIVE_CHUNK for each read had its pages faulted in each time, which cost a
    200 KB message 94-148 us against 48 (bench of a socket pair)."""

    def __init__(self) -> None:
        self._chunk = bytearray(RECEIVE_CHUNK)
        self._received = bytearray()

    def read(self, fd: int) -> list[bytes] | None:
        """The whole messages one read completes; None once the other end has closed.
        A non-blocking ``fd`` with nothing to read raises BlockingIOError."""
        with memoryview(self._chunk) as chunk:
            got = os.readv(fd, [chunk])
            if not got:
                return None
            self._received += chunk[:got]
        return take_messages(self._received)

    @property
    def holding(self) -> int:
        """Bytes read of a message that is not whole yet."""
        return len(self._received)


def take_messages(buffer: bytearray) -> list[bytes]:
    """The whole messages at the start of ``buffer``, taken out of it (Connection's framing)."""
    messages, start = [], 0
    with memoryview(buffer) as view:  # one copy of each message, not a slice and then a copy
        while True:
            if len(buffer) - start < 4:
                break
            size, header = struct.unpack_from("!i", buffer, start)[0], 4
            if size == -1:
                if len(buffer) - start < 12:
                    break
                size, header = struct.unpack_from("!Q", buffer, start + 4)[0], 12
            if len(buffer) - start - header < size:
                break
            messages.append(bytes(view[start + header:start + header + size]))
            start += header + size
    del buffer[:start]
    return messages


class WriterLink:
    """The GroupCommitter's interface, answered by the parent's committer of the named store.

    A store's write under way is in memory shared with the parent (``in_flight``): the
    `default` store's from the start; another's once the parent's first answer about it named
    its slot (an InFlightBoard's: the store may be opened only after the workers start). Until
    then, or past the board's last slot, Consistent-Through is the parent's answer."""

    def __init__(self, link: ParentLink, in_flight: InFlight | None, store: str,
                 board: InFlightBoard | None = None) -> None:
        self.link = link
        self.in_flight = in_flight
        self.store_name = store
        self.board = board

    def submit(self, batch: Sequence[PreparedStatement]) -> Future[list[str]]:
        return self.link.ask(STORE, self.store_name, list(batch))

    def store(self, batch: Sequence[PreparedStatement]) -> list[str]:
        result: list[str] = self.submit(batch).result()
        return result

    @property
    def consistency_in_memory(self) -> bool:
        return self.in_flight is not None

    def consistent_through(self) -> str:
        if self.in_flight is not None:
            return self.in_flight.consistent_through()
        answer: str = self.consistent_through_later().result(timeout=PIPE_WAIT + 30)
        return answer

    def consistent_through_later(self) -> Future[str]:
        done: Future[str] = Future()
        if self.in_flight is not None:
            done.set_result(self.in_flight.consistent_through())
            return done
        done.set_running_or_notify_cancel()
        self.link.ask(CONSISTENT, self.store_name).add_done_callback(
            partial(self._answered, done))
        return done

    def _answered(self, done: Future[str], asked: Future[tuple[str, int | None]]) -> None:
        try:
            through, slot = asked.result()
        except BaseException as exc:
            done.set_exception(exc)
            return
        if slot is not None and self.board is not None:
            self.in_flight = self.board.slot(slot)
        done.set_result(through)

    def close(self) -> None:
        self.link.close()


class DocumentWritesLink(DocumentWriter):
    """The DocumentWrites interface in a worker, answered by the parent's writer of the named
    store. With a writer in each worker, the two took turns at the store's file lock, a
    transaction each, and most transactions held one write; in the parent, one transaction
    holds what every worker has waiting (lrs/document_writes.py)."""

    def __init__(self, link: ParentLink, store: str) -> None:
        self.link = link
        self.store_name = store

    def submit(self, events: Sequence[StoredEvent], changes: Sequence[DocumentChange],
               keys: Sequence[LearnerKey] = (), generation: int | None = None) -> Future[None]:
        return self.link.ask(DOCUMENTS, self.store_name, list(events), list(changes), list(keys),
                             generation)

    def close(self) -> None:
        pass  # the writer is the parent's to stop


class LinkedAccessLimits(AccessLimits):
    """The failure limits and the accepted secrets are the parent's, so they hold for the server
    as a whole: a guess counts wherever it lands, and a secret accepted by one worker passes the
    limits in all of them. A worker asks the parent only for a secret it has not seen accepted
    (a first use, or a guess); the request rate per credential is counted here, per worker."""

    def __init__(self, settings: Settings, link: ParentLink) -> None:
        super().__init__(settings)
        self.link = link
        self._accepted_here: dict[bytes, float] = {}

    def _known_here(self, fingerprint: bytes) -> bool:
        return self._accepted_here.get(fingerprint, 0.0) > self.clock()

    async def before_verify(self, key: str, fingerprint: bytes, address: str) -> None:
        if not self._known_here(fingerprint):
            await answered(self.link.ask(LIMITS, "admit", key, fingerprint, address))

    async def after_verify(self, key: str, fingerprint: bytes, address: str, ok: bool) -> None:
        if not ok:
            await answered(self.link.ask(LIMITS, "failed", key, address))
        elif not self._known_here(fingerprint):
            await answered(self.link.ask(LIMITS, "succeeded", fingerprint))
            if len(self._accepted_here) > MAX_SUBJECTS:
                self._accepted_here.clear()
            self._accepted_here[fingerprint] = self.clock() + KNOWN_SECRET_REFRESH


class ViewsLink(ViewsProcess):
    """The ViewsProcess interface in a worker: the slots are the worker's own, the queries run in
    the parent's projections process."""

    def __init__(self, settings: Settings, link: ParentLink) -> None:  # no child of its own
        self.settings = settings
        self.link = link
        self._make_slots(settings)

    def _ask(self, fn: Callable[..., Any] | str, args: tuple[Any, ...], limit: float | None,
             expected: float) -> Any:
        return _answer(self.link.ask(VIEWS, self.settings.store, fn, args, limit, expected),
                       expected)

    def sql(self, sql: str) -> dict[str, Any]:
        """In one of the parent's SQL slots: LRS_SQL_SLOTS holds for the server as a whole."""
        result: dict[str, Any] = _answer(self.link.ask(SQL, self.settings.store, sql),
                                         self.settings.sql_timeout_seconds)
        return result

    def health(self, store: LearningRecordStore) -> dict[str, Any]:
        answer: dict[str, Any] = _answer(self.link.ask(HEALTH, self.settings.store), 0.0)
        return {**answer, **self.slots_in_use()}

    def close(self) -> None:
        pass  # the projections process is the parent's to stop


def _answer(future: Future[Any], expected: float) -> Any:
    """The parent's answer; past every wait it allows itself (a free pipe, the query's time, the
    grace), the worker stops waiting too, so a thread is never held for ever."""
    try:
        return future.result(timeout=expected + PIPE_WAIT + ANSWER_GRACE + PARENT_GRACE)
    except TimeoutError:
        raise ViewsBusy("the projections did not answer in time; retry shortly") from None
