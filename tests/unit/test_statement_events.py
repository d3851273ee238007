"""The writer splices a statement's event from prepared JSON: it must be the mapper's event."""

from __future__ import annotations

import pickle
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from ingest.enrich import format_stored, with_stored
from lrs.application import LearningRecordStore
from lrs.domain import StoredStatement
from lrs.statement_events import PreparedStatement, SealedAhead, statement_body
from lrs.store.keys import IndexRow
from lrs.store.learner_keys import LearnerKey

NOW = datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=UTC)
STORED = format_stored(NOW)
ID = "6fbd600f-d17c-4c74-801a-2ec2e53231c7"


def prepared(document: dict[str, Any], credential: str = "key-1") -> PreparedStatement:
    row = IndexRow(statement_id=ID, verb_id="v", object_ref=None, voids=None, registration=None,
                   credential=credential, keys=frozenset())
    return PreparedStatement(statement_id=ID, body=statement_body(document),
                             has_timestamp="timestamp" in document, row=row, credential=credential)


@pytest.fixture(scope="module")
def app() -> LearningRecordStore:
    return LearningRecordStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def mapper_event(app: LearningRecordStore, document: dict[str, Any], credential: str) -> Any:
    event = StoredStatement.stored(UUID(ID), with_stored(document, STORED), credential, NOW)
    return app.mapper.to_stored_event(event)


@pytest.mark.parametrize("document", [
    {"id": ID, "actor": {"mbox": "mailto:a@example.org"}, "verb": {"id": "http://e/v"},
     "object": {"id": "http://e/a"}, "timestamp": "2026-01-01T00:00:00Z"},
    {"id": ID, "verb": {"id": "http://e/v", "display": {"fr": "déjà \u2028 \"vu\""}}},
    {"id": ID, "stored": "1999-01-01T00:00:00Z", "result": {"score": {"scaled": 0.5}}},
], ids=["with timestamp", "without timestamp, unicode", "client stored replaced"])
def test_a_spliced_statement_event_is_the_event_the_mapper_would_store(
        app: LearningRecordStore, document: dict[str, Any]) -> None:
    made = app.statement_events.events([prepared(document, 'key "q"')], STORED, NOW)[0]
    expected = mapper_event(app, document, 'key "q"')
    assert (made.originator_id, made.originator_version, made.topic) == (
        expected.originator_id, expected.originator_version, expected.topic)
    assert app.mapper.transcoder.decode(made.state) == app.mapper.transcoder.decode(expected.state)
    event = app.mapper.to_domain_event(made)
    assert event.statement["stored"] == STORED  # type: ignore[attr-defined]
    assert event.statement["timestamp"] == document.get("timestamp", STORED)  # type: ignore[attr-defined]


def test_a_prepared_statement_crosses_to_the_writers_process_whole() -> None:
    """Workers send prepared statements (sealed ahead, with the keys made for them) to the
    writer's process by pickle: what arrives equals what was sent, field for field."""
    key = LearnerKey("k1", "p1", "2026-12-02", b"\x01" * 32)
    plain = prepared({"id": ID, "actor": {"mbox": "mailto:ada@example.org"}})
    row = replace(plain.row, keys=frozenset({"a:mbox:ada@example.org", "v:http://e/v"}),
                  attachments=("5e3a0c1f" * 8,),
                  definitions=(("http://e/a", {"name": {"en-US": "A"}}),),
                  agent_names=(("mbox:ada@example.org", "Ada"),))
    sent = replace(plain, row=row, lone_actor="mbox:ada@example.org",
                   sealed=SealedAhead(b'{"sealed":1}', 3, "2026-12-02", (("mbox:ada@example.org", key),)))
    arrived = pickle.loads(pickle.dumps([sent], protocol=pickle.HIGHEST_PROTOCOL))[0]
    assert arrived == sent
    assert arrived.row == sent.row and arrived.row.keys == sent.row.keys
    assert arrived.row.attachments == sent.row.attachments
    assert arrived.sealed is not None and arrived.sealed.keys[0][1] == key


def _every_field_set(cls: type[Any], **given: Any) -> Any:
    """An instance whose every field holds a value of its own, unlike its default: a field a
    hand-written copy forgets then shows."""
    values = {f.name: given.get(f.name, f"{f.name}-value") for f in fields(cls)}
    return cls(**values)


def test_a_worked_ahead_statement_keeps_every_field_but_its_row_and_sealing() -> None:
    statement = _every_field_set(PreparedStatement, has_timestamp=True, can_void_any=True)
    row = _every_field_set(IndexRow)
    sealed = SealedAhead(b'{"sealed":1}', 3, "2026-12-02", ())
    assert statement.worked_ahead(row, sealed) == replace(statement, row=row, sealed=sealed)


def test_a_hashed_row_keeps_every_field_but_its_keys() -> None:
    row = _every_field_set(IndexRow, keys=frozenset({"v:verb"}))
    assert row.hashed((1, 2)) == replace(row, keys=frozenset(), key_hashes=(1, 2))
