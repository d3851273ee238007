"""A worker's pipe to the parent of `lrs serve --workers N` is written and read by its event loop
(lrs/api/links.py). The parent's side here is a thread with a real multiprocessing Connection
answering as the hub does (lrs/api/hub.py, answer_message), over a real pipe."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

import lrs.api.services
from ingest.enrich import format_stored
from lrs.api.links import (
    ParentGone,
    ParentLink,
    WriterLink,
    answer_message,
    framed,
    read_request,
    request_message,
    take_messages,
)
from lrs.api.services import consistent_through
from lrs.committer import InFlightBoard
from lrs.documents import STATE, DocumentKey
from lrs.store.documents import DocumentChange
from lrs.views_process import ViewsUnavailable
from tests.loops import run as run_coroutine

Parent = Callable[[Connection], None]


@pytest.fixture
def pipe() -> Iterator[tuple[Connection, Connection]]:
    parent_end, worker_end = multiprocessing.get_context("spawn").Pipe()
    yield parent_end, worker_end
    parent_end.close()
    worker_end.close()


def run_parent(connection: Connection, parent: Parent) -> threading.Thread:
    thread = threading.Thread(target=parent, args=(connection,), daemon=True)
    thread.start()
    return thread


def received(connection: Connection) -> tuple[Any, ...]:
    """A worker's request as (kind, number, *payload)."""
    number, kind, payload = read_request(connection.recv_bytes())
    return (kind, number, *payload)


def echo(connection: Connection) -> None:
    """Answers each request with its payload, until the worker's end closes."""
    while True:
        try:
            kind, number, *payload = received(connection)
        except (EOFError, OSError):
            return
        connection.send_bytes(answer_message(number, True, (kind, *payload)))


async def attached(worker_end: Connection) -> ParentLink:
    link = ParentLink(worker_end)
    link.attach(asyncio.get_running_loop())
    return link


async def answer(future: Future[Any]) -> Any:
    return await asyncio.wait_for(asyncio.wrap_future(future), 30)


def test_each_answer_reaches_the_request_it_answers(pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe

    def backwards(connection: Connection) -> None:  # answers the second request first
        first, second = received(connection), received(connection)
        for _, number, value in (second, first):
            connection.send_bytes(answer_message(number, True, value))

    run_parent(parent_end, backwards)

    async def scenario() -> list[Any]:
        link = await attached(worker_end)
        return [await answer(f) for f in (link.ask("views", "a"), link.ask("views", "b"))]

    assert run_coroutine(scenario()) == ["a", "b"]


def test_a_large_answer_arrives_whole_while_the_loop_goes_on(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    big = bytes(range(256)) * (32 * 1024)  # 8 MB: many reads of the pipe

    def large(connection: Connection) -> None:
        _, number, *_ = received(connection)
        connection.send_bytes(answer_message(number, True, big))

    run_parent(parent_end, large)

    async def scenario() -> tuple[bytes, int]:
        link = await attached(worker_end)
        ticks_with_part_read = 0
        future = link.ask("sql", "default", "SELECT 1")
        while not future.done():
            ticks_with_part_read += bool(link._inbox.holding)
            await asyncio.sleep(0)
        return await answer(future), ticks_with_part_read

    arrived, ticks_with_part_read = run_coroutine(scenario())
    assert arrived == big
    assert ticks_with_part_read > 0  # the loop ran while only a piece of it had been read


def test_a_request_larger_than_the_pipe_is_sent_whole_without_blocking_the_loop(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    big = b"x" * (4 * 1024 * 1024)  # far more than a socket pair holds
    asked = threading.Event()
    blocked: list[bool] = []

    def slow(connection: Connection) -> None:  # reads only once ask() has returned
        blocked.append(not asked.wait(10))
        echo(connection)

    run_parent(parent_end, slow)

    async def scenario() -> Any:
        link = await attached(worker_end)
        future = link.ask("store", "default", big)
        asked.set()
        return await answer(future)

    assert run_coroutine(scenario()) == ("store", "default", big)
    assert blocked == [False]


def test_a_request_from_another_thread_goes_through_the_loop(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    run_parent(parent_end, echo)

    async def scenario() -> Any:
        link = await attached(worker_end)
        # A view query asks from a thread of the pool and waits there for its answer.
        return await asyncio.to_thread(lambda: link.ask("views", "default", 42).result(30))

    assert run_coroutine(scenario()) == ("views", "default", 42)


def test_every_waiting_request_fails_with_503_when_the_parent_closes_the_pipe(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe

    def gone(connection: Connection) -> None:
        received(connection)
        received(connection)
        connection.close()

    parent = run_parent(parent_end, gone)

    async def scenario() -> list[BaseException | None]:
        link = await attached(worker_end)
        waiting = [asyncio.wrap_future(link.ask("store", "default", n)) for n in range(2)]
        outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 30)
        after = link.ask("store", "default", 3)  # and so does any request after it
        return [*outcomes, after.exception(timeout=30)]

    outcomes = run_coroutine(scenario())
    parent.join(30)  # its close is done before the fixture's (two at once: EBADF)
    assert all(isinstance(o, ParentGone) for o in outcomes), outcomes
    assert ParentGone("").status == 503


def test_a_request_that_will_not_pickle_fails_alone(pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    run_parent(parent_end, echo)

    async def scenario() -> tuple[BaseException | None, Any]:
        link = await attached(worker_end)
        refused = link.ask("views", "default", lambda: None)
        return refused.exception(timeout=30), await answer(link.ask("views", "default", 1))

    error, answered = run_coroutine(scenario())
    assert isinstance(error, (pickle.PicklingError, AttributeError, TypeError))
    assert answered == ("views", "default", 1)


def test_messages_are_framed_as_a_multiprocessing_connection_frames_them(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    sent = [(1, True, "small"), (2, True, b"y" * 100_000), (3, False, ValueError("no"))]
    for message in sent:
        parent_end.send(message)
    buffer, taken = bytearray(), list[Any]()
    while len(taken) < len(sent):
        for byte in os.read(worker_end.fileno(), 1 << 20):  # the worst split: a byte at a time
            buffer.append(byte)
            taken += [pickle.loads(m) for m in take_messages(buffer)]
    assert [t[:2] for t in taken] == [(1, True), (2, True), (3, False)]
    assert taken[1][2] == b"y" * 100_000 and str(taken[2][2]) == "no"
    assert buffer == bytearray()
    for number, _, value in sent:  # and what the worker frames, the parent's Connection reads
        os.write(worker_end.fileno(), framed(request_message("views", number, [value])))
        kind, got, payload = received(parent_end)
        assert (kind, got, str(payload)) == ("views", number, str(value))


def test_a_request_whose_caller_stopped_waiting_leaves_the_other_answers_whole(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    both_asked = threading.Event()

    def together(connection: Connection) -> None:  # both answers in one write, once cancelled
        first, second = received(connection), received(connection)
        both_asked.wait(30)
        connection._send(b"".join(  # type: ignore[attr-defined]
            framed(answer_message(m[1], True, m[2])) for m in (first, second)))

    run_parent(parent_end, together)

    async def scenario() -> Any:
        link = await attached(worker_end)
        gone = asyncio.ensure_future(asyncio.wrap_future(link.ask("views", "gone")))
        kept = link.ask("views", "kept")
        await asyncio.sleep(0)
        gone.cancel()  # as a server's stop cancels a request's task
        await asyncio.sleep(0)
        both_asked.set()
        return await asyncio.wait_for(asyncio.wrap_future(kept), 10)

    assert run_coroutine(scenario()) == "kept"


class Unreadable(Exception):
    """Pickles, but its class cannot be made again from what it pickled (two arguments)."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def test_an_answer_that_cannot_be_read_back_fails_its_request_and_not_the_others(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe

    def one_bad(connection: Connection) -> None:  # both answers in one write
        first, second = received(connection), received(connection)
        connection._send(b"".join((  # type: ignore[attr-defined]
            framed(answer_message(first[1], False, Unreadable("views", "down"))),
            framed(answer_message(second[1], True, "fine")))))

    run_parent(parent_end, one_bad)

    async def scenario() -> list[Any]:
        link = await attached(worker_end)
        asked = [asyncio.wrap_future(link.ask("views", n)) for n in (1, 2)]
        return await asyncio.wait_for(asyncio.gather(*asked, return_exceptions=True), 10)

    error, answered = run_coroutine(scenario())
    assert isinstance(error, RuntimeError) and "could not be read" in str(error)
    assert answered == "fine"


def test_a_thread_waiting_for_an_answer_fails_with_503_when_the_link_closes_after_its_loop(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe  # a parent that never answers
    link = ParentLink(worker_end)
    asked: Future[Future[Any]] = Future()

    async def ask_from_a_thread() -> None:
        link.attach(asyncio.get_running_loop())
        pending = await asyncio.to_thread(link.ask, "views", "q")
        await asyncio.sleep(0.05)  # the request leaves through the loop
        asked.set_result(pending)

    # asyncio.run closes its loop: the worker's loop ended without closing the link (a crash,
    # a signal). In a thread of its own, as tests/loops.py says why.
    run_coroutine(ask_from_a_thread())
    pending = asked.result()
    assert not pending.done()
    link.close()
    with pytest.raises(ParentGone):
        pending.result(timeout=5)
    assert received(parent_end)[0] == "views"  # it had been sent


def test_a_named_stores_consistent_through_is_the_parents_answer_each_time_without_a_slot(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    asked: list[str] = []

    def parent(connection: Connection) -> None:  # no slot left for the store: every time
        while True:
            try:
                kind, number, store = received(connection)
            except (EOFError, OSError):
                return
            asked.append(store)
            connection.send_bytes(answer_message(number, True, (f"{kind} of {store}", None)))

    run_parent(parent_end, parent)

    async def scenario() -> list[str]:
        committer = WriterLink(await attached(worker_end), None, "north", InFlightBoard())
        return [await consistent_through(committer) for _ in range(2)]

    assert run_coroutine(scenario()) == ["consistent of north"] * 2
    assert asked == ["north", "north"]


def test_once_the_parent_names_a_stores_slot_the_worker_reads_its_write_under_way_there(
        pipe: tuple[Connection, Connection]) -> None:
    parent_end, worker_end = pipe
    parents_board = InFlightBoard()
    parents_board.for_store("default")
    north = parents_board.for_store("north")  # the parent's committer of the store
    workers_board = InFlightBoard(parents_board.array)  # as a worker gets it
    asked: list[str] = []

    def parent(connection: Connection) -> None:
        _, number, store = received(connection)
        asked.append(store)
        connection.send_bytes(answer_message(number, True, (north.consistent_through(),
                                                            north.slot)))

    run_parent(parent_end, parent)

    async def scenario() -> tuple[str, str, str]:
        committer = WriterLink(await attached(worker_end), None, "north", workers_board)
        first = await consistent_through(committer)  # asked
        stored = north.begin()  # a write under way in the parent: nothing after it is visible
        during = await consistent_through(committer)  # read in the shared slot
        north.end()
        return first, during, format_stored(stored)

    first, during, stored = run_coroutine(scenario())
    assert asked == ["north"]
    assert first < stored and during <= stored


def test_a_parent_that_never_answers_consistent_through_is_a_503_to_retry(
        pipe: tuple[Connection, Connection], monkeypatch: pytest.MonkeyPatch) -> None:
    parent_end, worker_end = pipe
    run_parent(parent_end, lambda connection: received(connection))  # reads, never answers
    monkeypatch.setattr(lrs.api.services, "CONSISTENT_WAIT", 0.2)

    async def scenario() -> str:
        committer = WriterLink(await attached(worker_end), None, "north", InFlightBoard())
        return await consistent_through(committer)

    with pytest.raises(ViewsUnavailable) as refused:
        run_coroutine(scenario())
    assert refused.value.status == 503 and "retry" in str(refused.value)


def test_requests_asked_in_one_turn_of_the_loop_reach_the_parent_in_one_write(
        pipe: tuple[Connection, Connection]) -> None:
    """Each write wakes the parent's reader: the requests of one turn share it."""
    parent_end, worker_end = pipe
    run_parent(parent_end, echo)

    async def scenario() -> tuple[list[Any], int]:
        link = await attached(worker_end)
        writes: list[bytes] = []
        write = link._write

        def counted(data: bytes) -> None:
            writes.append(data)
            write(data)

        link._write = counted  # type: ignore[method-assign]
        asked = [link.ask("store", "default", n) for n in range(5)]
        return [await answer(future) for future in asked], len(writes)

    answers, writes = run_coroutine(scenario())
    assert answers == [("store", "default", n) for n in range(5)]
    assert writes == 1


def test_a_document_write_reaches_the_parent_as_the_events_and_rows_the_worker_made() -> None:
    """A document write crosses as mapped events and the view's rows (lrs/document_writes.py);
    the library's StoredEvent is pickled as its four fields (lrs/pickled.py), and arrives equal,
    whether its aggregate is named by a UUID or by text."""
    key = DocumentKey(STATE, "bookmark", "https://example.org/a", "mbox:mailto:ada@example.org")
    events = [StoredEvent(key.aggregate_id, 2, "lrs.domain:Document.Written", b"\x00{}"),
              StoredEvent(str(uuid4()), 1, "topic", b"")]
    changes = [DocumentChange.of(key, b"{}", "application/json", "e", "2026-12-07T00:00:00Z", 2),
               DocumentChange.of(key, None, "application/json", "e", "2026-12-07T00:00:01Z", 3)]
    number, kind, payload = read_request(request_message(
        "documents", 7, ["default", events, changes, [], None]))
    assert (number, kind) == (7, "documents")
    assert payload == ["default", events, changes, [], None]
    assert [type(e.originator_id) for e in payload[1]] == [type(e.originator_id) for e in events]
    assert payload[2][0].doc_uuid == str(key.aggregate_id) and payload[2][1].deleted
