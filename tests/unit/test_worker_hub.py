"""The parent's side of a worker's pipe (lrs/api/hub.py): one thread reads the worker's requests
and one sends every answer the worker waits for, so no message may end either."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from typing import Any, cast

from lrs.api.hub import WorkerHub, _messages, _send_answers, _write_all
from lrs.api.links import LIMITS, RECEIVE_CHUNK, STORE, framed, read_answer, request_message


def test_an_answer_that_will_not_pickle_fails_its_own_request_and_the_next_one_arrives() -> None:
    parent_end, worker_end = multiprocessing.get_context("spawn").Pipe()
    outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_answers, args=(parent_end, outbox), daemon=True)
    sender.start()
    outbox.put((1, False, ValueError(threading.Lock())))  # a lock: a driver error's handle
    outbox.put((2, True, "answered"))
    outbox.put(None)
    sender.join(30)
    assert worker_end.poll(30)
    number, ok, error = read_answer(worker_end.recv_bytes())
    assert (number, ok) == (1, False)
    assert "could not be sent to the worker" in str(error)
    assert read_answer(worker_end.recv_bytes()) == (2, True, "answered")
    parent_end.close()
    worker_end.close()


def test_answers_ready_together_reach_the_worker_in_one_write(monkeypatch: Any) -> None:
    """A group commit finishes several of a worker's requests at once: one write, not one each."""
    import lrs.api.hub

    writes: list[int] = []
    write_all = lrs.api.hub._write_all

    def counted(fd: int, data: bytes) -> None:
        writes.append(len(data))
        write_all(fd, data)

    monkeypatch.setattr(lrs.api.hub, "_write_all", counted)
    parent_end, worker_end = multiprocessing.get_context("spawn").Pipe()
    outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
    for number in range(20):
        outbox.put((number, True, f"answer {number}"))
    outbox.put(None)
    sender = threading.Thread(target=_send_answers, args=(parent_end, outbox), daemon=True)
    sender.start()
    sender.join(30)
    assert [read_answer(worker_end.recv_bytes()) for _ in range(20)] == [
        (number, True, f"answer {number}") for number in range(20)]
    assert len(writes) == 1
    parent_end.close()
    worker_end.close()


def test_requests_that_arrive_together_or_in_pieces_are_each_read_whole() -> None:
    parent_end, worker_end = multiprocessing.get_context("spawn").Pipe()
    large = b"x" * (3 * RECEIVE_CHUNK + 5)  # more than one read takes
    together = b"".join([framed(b"first"), framed(b"second"), framed(large)])

    def write() -> None:  # as the worker does: raw frames, several in one write
        _write_all(worker_end.fileno(), together)
        _write_all(worker_end.fileno(), framed(b"last"))
        worker_end.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert list(_messages(parent_end)) == [b"first", b"second", large, b"last"]
    writer.join(30)
    parent_end.close()


class _Limits:
    def ping(self, value: str) -> str:
        return f"pong {value}"


def _serving() -> tuple[WorkerHub, threading.Thread, Any, Any]:
    parent_end, worker_end = multiprocessing.get_context("spawn").Pipe()
    hub = WorkerHub(cast(Any, None), cast(Any, _Limits()), 1, 1)
    return hub, hub.serve(parent_end, "test"), parent_end, worker_end


def _closed(hub: WorkerHub, reader: threading.Thread, parent_end: Any, worker_end: Any) -> None:
    worker_end.close()
    reader.join(30)
    assert not reader.is_alive()
    hub.close()
    parent_end.close()


def test_a_message_too_short_to_name_a_request_is_skipped_and_the_next_is_answered() -> None:
    """Nothing in it names a request to fail; the worker's other requests go on being answered."""
    hub, reader, parent_end, worker_end = _serving()
    worker_end.send_bytes(b"tiny")
    worker_end.send_bytes(request_message(LIMITS, 7, ["ping", "there"]))
    assert worker_end.poll(30)
    assert read_answer(worker_end.recv_bytes()) == (7, True, "pong there")
    _closed(hub, reader, parent_end, worker_end)


def test_a_request_that_cannot_be_unpickled_is_answered_with_an_error_for_its_number() -> None:
    """Its caller learns at once that it failed, rather than waiting for ever."""
    hub, reader, parent_end, worker_end = _serving()
    worker_end.send_bytes(request_message(LIMITS, 6, [])[:8] + b"not a pickle")
    worker_end.send_bytes(request_message(LIMITS, 7, ["ping", "there"]))
    assert worker_end.poll(30)
    number, ok, error = read_answer(worker_end.recv_bytes())
    assert (number, ok) == (6, False) and "could not read this request" in str(error)
    assert worker_end.poll(30)
    assert read_answer(worker_end.recv_bytes()) == (7, True, "pong there")
    _closed(hub, reader, parent_end, worker_end)


def test_a_request_whose_payload_is_not_of_its_kinds_shape_fails_alone() -> None:
    """A store request with no store name: the reading thread lives on to answer the next."""
    hub, reader, parent_end, worker_end = _serving()
    worker_end.send_bytes(request_message(STORE, 5, []))
    worker_end.send_bytes(request_message(LIMITS, 7, ["ping", "there"]))
    answers = {}
    for _ in range(2):
        assert worker_end.poll(30)
        number, ok, value = read_answer(worker_end.recv_bytes())
        answers[number] = (ok, value)
    assert answers[5][0] is False and "could not answer a 'store' request" in str(answers[5][1])
    assert answers[7] == (True, "pong there")
    assert reader.is_alive()
    _closed(hub, reader, parent_end, worker_end)
