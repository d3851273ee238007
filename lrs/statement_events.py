"""A statement on its way to the log, and the bytes of the event that records it.

Everything per statement that does not depend on the write (validation, index keys, the JSON of
the statement) is done where the request is read, possibly in another process; the single writer
only stamps ``stored`` and writes. The event's stored state is spliced from the statement's JSON
and a template taken from the library's own mapper, so it is the state the mapper would produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent

from lrs.domain import StoredStatement
from lrs.key_ring import KeyBatch
from lrs.pickled import by_fields
from lrs.sealing import seal_statement, stamped, with_stored
from lrs.store.keys import IndexRow
from lrs.store.learner_keys import LearnerKey

_STATEMENT = {"\u0000statement": 0}
_CREDENTIAL = "\u0000credential"
_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)


@by_fields
@dataclass(frozen=True, slots=True)
class SealedAhead:
    """A statement sealed where its request was read, so the single writer need not: taken by
    the writer only under the generation and stored day it writes with (lrs/key_ring.py)."""

    body: bytes  # seal_statement's JSON, without stored
    generation: int
    day: str
    keys: tuple[tuple[str, LearnerKey], ...]  # (learner, key): the new keys it is sealed under


@by_fields
@dataclass(frozen=True, slots=True)
class PreparedStatement:
    """A validated, enriched statement: what the writer needs, and nothing it must compute."""

    statement_id: str
    body: bytes  # the statement's JSON without ``stored``, which the writer sets
    has_timestamp: bool  # when it has none, timestamp takes the value of stored (Data 2.4.7)
    row: IndexRow  # what it can be found by
    credential: str
    voids: str | None = None  # the statement it voids, if it is a voiding statement
    can_void_any: bool = False
    lone_actor: str | None = None  # its actor's IFI key when it names no other agent (sealing)
    sealed: SealedAhead | None = None

    def document(self) -> dict[str, Any]:
        """The statement as it was prepared (without stored), for comparing duplicates."""
        return dict(orjson.loads(self.body))

    def worked_ahead(self, row: IndexRow, sealed: SealedAhead | None) -> PreparedStatement:
        """This statement with its keys hashed and its sealing done, made in one construction:
        dataclasses.replace looks every field up again, and a worker made three copies of each
        statement with it; made once, its work ahead took 35-37 us a statement against 43."""
        return PreparedStatement(
            statement_id=self.statement_id, body=self.body, has_timestamp=self.has_timestamp,
            row=row, credential=self.credential, voids=self.voids,
            can_void_any=self.can_void_any, lone_actor=self.lone_actor, sealed=sealed)


def statement_body(document: dict[str, Any]) -> bytes:
    """The JSON the writer splices ``stored`` into; a stored sent by the client is replaced."""
    return orjson.dumps({k: v for k, v in document.items() if k != "stored"} if "stored" in document
                        else document)


class StatementEventEncoder:
    """Builds the stored events of statements as the mapper would, without a domain event each."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        probe = mapper.to_stored_event(
            StoredStatement.stored(UUID(int=0), dict(_STATEMENT), _CREDENTIAL, _MOMENT))
        self.topic = probe.topic
        state = probe.state
        self._plain = mapper.cipher is None and mapper.compressor is None
        if self._plain:
            moment = _MOMENT.isoformat().encode()
            head, rest = state.split(moment)
            middle, rest = rest.split(orjson.dumps(_STATEMENT))
            between, tail = rest.split(orjson.dumps(_CREDENTIAL))
            self._parts = (head, middle, between, tail)
        self._credentials: dict[str, bytes] = {}

    def events(self, statements: list[PreparedStatement], stored: str, now: datetime,
               keys: KeyBatch | None = None) -> list[StoredEvent]:
        """With ``keys``, each statement is sealed under its learners' keys (lrs/sealing.py),
        or its sealing done ahead is taken (the writer carries the keys it made into ``keys``)."""
        if not self._plain:  # a cipher or compressor: the mapper's own path
            return [self.mapper.to_stored_event(StoredStatement.stored(
                UUID(p.statement_id), self._statement(p, stored, keys), p.credential, now))
                for p in statements]
        head, middle, between, tail = self._parts
        opening = head + now.isoformat().encode() + middle
        events = []
        for p in statements:
            credential = self._credentials.get(p.credential)
            if credential is None:
                credential = self._credentials[p.credential] = orjson.dumps(p.credential)
            if keys is None:
                body = stamped(p.body, p.has_timestamp, stored)
            else:
                body = with_stored(self._sealed(p, keys), stored, p.has_timestamp)
            state = b"".join((opening, body, between, credential, tail))
            events.append(StoredEvent(originator_id=UUID(p.statement_id), originator_version=1,
                                      topic=self.topic, state=state))
        return events

    @staticmethod
    def _sealed(p: PreparedStatement, keys: KeyBatch) -> bytes:
        ahead = p.sealed
        if ahead is not None and ahead.generation == keys.generation and ahead.day == keys.day:
            return ahead.body
        return seal_statement(p.body, p.lone_actor, keys.key_of)  # else an erasure or midnight between

    @classmethod
    def _statement(cls, p: PreparedStatement, stored: str,
                   keys: KeyBatch | None) -> dict[str, Any]:
        if keys is None:
            return dict(orjson.loads(stamped(p.body, p.has_timestamp, stored)))
        return dict(orjson.loads(with_stored(cls._sealed(p, keys), stored, p.has_timestamp)))


def seal_ahead(statements: list[PreparedStatement], keys: KeyBatch) -> list[SealedAhead]:
    """Each statement sealed now, where the request was read (in `lrs serve --workers N`, one
    of several processes) rather than by the single writer; each carries the new keys it is
    sealed under, which the writer writes with it."""
    sealed = []
    for p in statements:
        asked = _KeysAsked(keys)
        body = seal_statement(p.body, p.lone_actor, asked)
        sealed.append(SealedAhead(body, keys.generation, keys.day, asked.made_by_batch()))
    return sealed


class _KeysAsked:
    """The keys one statement is sealed under: it carries those of them the batch made (for it
    or for an earlier statement of the batch), found without scanning all the batch made.

    Kept by key, not by learner: a statement may ask for one learner twice (an actor who is a
    member of their team), and the writer may commit another request of that learner between
    the two asks, caching the key it made; the second ask then gets that key, and the first,
    which this batch made, must still be carried or the stub sealed under it never opens."""

    def __init__(self, keys: KeyBatch) -> None:
        self.keys = keys
        self.asked: dict[str, tuple[str, LearnerKey]] = {}  # key id -> (learner, key)

    def __call__(self, learner: str) -> LearnerKey:
        key = self.keys.key_of(learner)
        self.asked[key.key_id] = (learner, key)
        return key

    def made_by_batch(self) -> tuple[tuple[str, LearnerKey], ...]:
        return tuple((learner, key) for learner, key in self.asked.values()
                     if self.keys.new.get(learner) is key)
