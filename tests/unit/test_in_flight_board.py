"""Each store's write under way has a slot of its own in the array `lrs serve` shares with its
workers (lrs/committer.py): two stores in one slot would let one's finished write hide the
other's pending one from X-Experience-API-Consistent-Through."""

from __future__ import annotations

from lrs.committer import InFlightBoard


def test_each_store_gets_a_slot_of_its_own_and_keeps_it() -> None:
    board = InFlightBoard(slots=8)
    slots = [board.for_store(name).slot for name in ("default", "north", "south", "north")]
    assert slots == [0, 1, 2, 1]


def test_default_has_its_slot_in_every_process_whichever_store_opens_first() -> None:
    parents = InFlightBoard(slots=8)
    assert parents.for_store("north").slot == 1
    workers = InFlightBoard(parents.array)
    assert workers.for_store("default").slot == parents.for_store("default").slot == 0


def test_past_the_last_slot_a_store_has_memory_of_its_own() -> None:
    board = InFlightBoard(slots=2)
    board.for_store("default")
    board.for_store("north")
    south = board.for_store("south")
    assert south.slot is None
    south.begin()  # a write under way in the store without a slot touches no slot
    assert list(board.array) == [0, 0]


def test_a_pending_write_in_one_slot_leaves_the_others_idle() -> None:
    board = InFlightBoard(slots=4)
    default, north = board.for_store("default"), board.for_store("north")
    north.begin()
    seen_by_a_worker = InFlightBoard(board.array)
    assert seen_by_a_worker.slot(1).consistent_through() <= north.consistent_through()
    assert board.array[0] == 0 and default.slot == 0
    north.end()
    assert board.array[1] == 0
