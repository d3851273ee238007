"""The ids the LRS assigns (Data 2.4.1): UUIDs of variant 2 that clients accept, in time order."""

from __future__ import annotations

import itertools
import multiprocessing
import re
import uuid
from multiprocessing.connection import Connection

from ingest.enrich import time_ordered_uuid

# TinCanPython's check, as strict as clients get: versions 1-5 of variant 2.
CLIENT_UUID = re.compile(r"^[a-f0-9]{8}-[a-f0-9]{4}-[1-5][a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$")


def test_an_assigned_id_passes_a_strict_client_check() -> None:
    assert all(CLIENT_UUID.match(str(time_ordered_uuid())) for _ in range(1000))


def test_assigned_ids_never_repeat_and_never_go_back() -> None:
    ids = [time_ordered_uuid() for _ in range(50_000)]
    assert all(a.time < b.time for a, b in itertools.pairwise(ids))


def _send_one(pipe: Connection) -> None:
    pipe.send(time_ordered_uuid())


def test_a_forked_process_assigns_ids_under_a_node_of_its_own() -> None:
    mine = time_ordered_uuid()
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_send_one, args=(sending,))
    child.start()
    theirs: uuid.UUID = receiving.recv()
    child.join(timeout=30)
    assert theirs.node != mine.node
    assert theirs.node & 1 << 40  # random, marked as no machine's address
