"""The parent's side of a worker's pipe (lrs/api/hub.py): one thread sends every answer the
worker waits for, so no answer may end it."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from typing import Any

from lrs.api.hub import _send_answers
from lrs.api.links import read_answer


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
