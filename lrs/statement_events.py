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
from lrs.sealing import KeyOf, lone_actor, seal, seal_alone
from lrs.store.keys import IndexRow

_STATEMENT = {"\u0000statement": 0}
_CREDENTIAL = "\u0000credential"
_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)


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

    def document(self) -> dict[str, Any]:
        """The statement as it was prepared (without stored), for comparing duplicates."""
        return dict(orjson.loads(self.body))


def statement_body(document: dict[str, Any]) -> bytes:
    """The JSON the writer splices ``stored`` into; a stored sent by the client is replaced."""
    return orjson.dumps({k: v for k, v in document.items() if k != "stored"} if "stored" in document
                        else document)


def stamped(body: bytes, has_timestamp: bool, stored: str) -> bytes:
    """The statement's JSON with stored set, and timestamp defaulted to it (Data 2.4.7, 2.4.8)."""
    quoted = orjson.dumps(stored)
    extra = b',"stored":' + quoted + (b"" if has_timestamp else b',"timestamp":' + quoted)
    return body[:-1] + extra + b"}"


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
               key_of: KeyOf | None = None) -> list[StoredEvent]:
        """With ``key_of``, each statement is sealed under its learners' keys (lrs/sealing.py)."""
        if not self._plain:  # a cipher or compressor: the mapper's own path
            return [self.mapper.to_stored_event(StoredStatement.stored(
                UUID(p.statement_id), self._statement(p, stored, key_of), p.credential, now))
                for p in statements]
        head, middle, between, tail = self._parts
        opening = head + now.isoformat().encode() + middle
        events = []
        for p in statements:
            credential = self._credentials.get(p.credential)
            if credential is None:
                credential = self._credentials[p.credential] = orjson.dumps(p.credential)
            body = stamped(p.body, p.has_timestamp, stored)
            if key_of is not None:
                actor = lone_actor(p.row.keys, body)
                body = seal_alone(body, key_of(actor)) if actor is not None else \
                    orjson.dumps(seal(orjson.loads(body), key_of))
            state = b"".join((opening, body, between, credential, tail))
            events.append(StoredEvent(originator_id=UUID(p.statement_id), originator_version=1,
                                      topic=self.topic, state=state))
        return events

    @staticmethod
    def _statement(p: PreparedStatement, stored: str, key_of: KeyOf | None) -> dict[str, Any]:
        statement: dict[str, Any] = orjson.loads(stamped(p.body, p.has_timestamp, stored))
        return seal(statement, key_of) if key_of is not None else statement
