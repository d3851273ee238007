"""Sealing (lrs/sealing.py): a statement opens only with its learner's key, and every other agent
in it only with theirs."""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from cryptography.exceptions import InvalidTag

from lrs.sealing import (
    _DICTIONARY_V1,
    ERASED_HOME_PAGE,
    SEALED,
    _encrypt,
    key_ids,
    lone_actor,
    open_body,
    open_bytes,
    open_text,
    seal,
    seal_alone,
    seal_bytes,
    seal_statement,
    seal_text,
    unseal,
    with_stored,
)
from lrs.store.learner_keys import LearnerKey
from schemas.statement import Statement
from schemas.validate import validate_statements

ADA, BOB, TESS = "mbox:mailto:ada@example.org", "mbox:mailto:bob@example.org", \
    "mbox:mailto:tess@example.org"


class Keys:
    def __init__(self) -> None:
        self.made: dict[str, LearnerKey] = {}

    def key_of(self, learner: str) -> LearnerKey:
        if learner not in self.made:
            self.made[learner] = LearnerKey(os.urandom(8).hex(), f"p{len(self.made)}", "2026-12-02",
                                            os.urandom(32))
        return self.made[learner]

    def table(self, *erased: str) -> dict[str, bytes]:
        return {k.key_id: k.secret for learner, k in self.made.items() if learner not in erased}


def agent(who: str, name: str) -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{who}@example.org", "name": name}


def group_work() -> dict[str, Any]:
    return {"id": "6fbd600f-d17c-4c74-801a-2ec2e53231c7", "actor": agent("ada", "Ada"),
            "verb": {"id": "http://e/mentored"}, "object": agent("bob", "Bob"),
            "context": {"instructor": agent("tess", "Tess"),
                        "team": {"objectType": "Group", "name": "7B",
                                 "member": [agent("ada", "Ada"), agent("bob", "Bob")]}}}


def test_a_sealed_statement_opens_to_the_statement_it_was() -> None:
    keys = Keys()
    sealed = seal(group_work(), keys.key_of)
    assert b"Ada" not in orjson.dumps(sealed) and b"bob@" not in orjson.dumps(sealed)
    assert unseal(sealed, keys.table()) == group_work()


def test_without_its_learners_key_a_statement_does_not_open() -> None:
    keys = Keys()
    sealed = seal(group_work(), keys.key_of)
    assert unseal(sealed, keys.table(ADA)) is None


def test_another_learner_inside_a_statement_opens_only_with_their_own_key() -> None:
    keys = Keys()
    sealed = seal(group_work(), keys.key_of)
    opened = unseal(sealed, keys.table(BOB))
    assert opened is not None
    bob = keys.made[BOB].pseudonym
    stand_in = {"objectType": "Agent", "name": bob, "account": {"homePage": ERASED_HOME_PAGE, "name": bob}}
    assert opened["object"] == stand_in
    assert opened["context"]["team"]["member"] == [agent("ada", "Ada"), stand_in]
    assert opened["context"]["instructor"] == agent("tess", "Tess")
    assert opened["actor"] == agent("ada", "Ada")
    assert set(key_ids(sealed)) == {k.key_id for k in keys.made.values()}


def model(statement: dict[str, Any], version: str = "1.0.3") -> Statement:
    return validate_statements(statement, version)[0].model


def test_a_statement_naming_no_other_agent_is_sealed_as_sent_without_the_walk() -> None:
    keys = Keys()
    statement = {"actor": agent("ada", "Ada"), "verb": {"id": "http://e/v"},
                 "object": {"id": "http://e/a"}, "stored": "2026-12-02T10:00:00.000Z",
                 "result": {"extensions": {"http://e/x": {"instructor": {"name": "not an agent"}}}}}
    assert lone_actor(model(statement)) == ADA
    body = orjson.dumps(statement)
    sealed = orjson.loads(seal_statement(body, ADA, keys.key_of))
    assert sealed[SEALED][3] == []
    assert unseal(sealed, keys.table()) == statement
    assert unseal(sealed, keys.table(ADA)) is None


_BOB_AGENT = {"objectType": "Agent", "mbox": "mailto:bob@example.org"}


@pytest.mark.parametrize("extra, version", [
    ({"object": _BOB_AGENT}, "1.0.3"),
    ({"object": {"objectType": "Group", "member": [_BOB_AGENT]}}, "1.0.3"),
    ({"object": {"objectType": "SubStatement", "actor": _BOB_AGENT, "verb": {"id": "http://e/v"},
                 "object": {"id": "http://e/a"}}}, "1.0.3"),
    ({"context": {"instructor": _BOB_AGENT}}, "1.0.3"),
    ({"context": {"team": {"objectType": "Group", "member": [_BOB_AGENT]}}}, "1.0.3"),
    ({"context": {"contextAgents": [{"objectType": "contextAgent", "agent": _BOB_AGENT}]}},
     "2.0.0"),
    ({"context": {"contextGroups": [{"objectType": "contextGroup",
                                     "group": {"objectType": "Group", "member": [_BOB_AGENT]}}]}},
     "2.0.0"),
    ({"actor": {"objectType": "Group", "mbox": "mailto:7b@example.org", "member": [_BOB_AGENT]}},
     "1.0.3"),
], ids=["an agent as object", "a group as object", "a SubStatement", "an instructor", "a team",
        "a context agent", "a context group", "a group actor with members"])
def test_a_statement_naming_another_agent_takes_the_walk(extra: dict[str, Any],
                                                         version: str) -> None:
    statement = {"actor": agent("ada", "Ada"), "verb": {"id": "http://e/v"},
                 "object": {"id": "http://e/a"}, **extra}
    assert lone_actor(model(statement, version)) is None


def test_a_document_agent_and_content_open_only_with_the_agents_key() -> None:
    keys = Keys()
    key = keys.key_of(ADA)
    text, data = seal_text(key, ADA), seal_bytes(key, b"ada's notes")
    assert b"ada" not in text.encode() and b"notes" not in data
    assert (open_text(text, keys.table()), open_bytes(data, keys.table())) == (ADA, b"ada's notes")
    assert (open_text(text, keys.table(ADA)), open_bytes(data, keys.table(ADA))) == (None, None)


def test_a_sealed_statement_cannot_be_opened_with_another_learners_key() -> None:
    keys = Keys()
    sealed = seal(group_work(), keys.key_of)
    swapped = {sealed[SEALED][0]: keys.made[BOB].secret}
    with pytest.raises(InvalidTag):
        unseal(sealed, swapped)


def test_stored_is_kept_outside_the_seal_and_put_back_when_opened() -> None:
    keys = Keys()
    body = orjson.dumps({**group_work(), "object": {"id": "https://example.org/a"}, "context": {}})
    sealed = orjson.loads(with_stored(seal_statement(body, ADA, keys.key_of),
                                      "2026-12-02T10:00:00.000000Z", has_timestamp=False))
    assert sealed[SEALED][4:] == ["2026-12-02T10:00:00.000000Z", True]
    opened = unseal(sealed, keys.table())
    assert opened is not None
    assert opened["stored"] == opened["timestamp"] == "2026-12-02T10:00:00.000000Z"
    assert open_body(sealed, keys.table()) == orjson.dumps(opened)


def test_a_statement_sealed_before_compression_and_with_stored_inside_still_opens() -> None:
    """The form events were sealed in before: four fields, the stamped statement sealed as
    plain JSON."""
    keys = Keys()
    key = keys.key_of(ADA)
    statement = {**group_work(), "object": {"id": "https://example.org/a"},
                 "context": {}, "stored": "2026-11-30T09:00:00Z", "timestamp": "2026-11-30T08:00:00Z"}
    old = {SEALED: [key.key_id, key.pseudonym, _encrypt(key, orjson.dumps(statement)), []]}
    assert unseal(old, keys.table()) == statement
    assert open_body(old, keys.table()) == orjson.dumps(statement)


def test_sealed_statement_json_is_compressed_before_it_is_sealed() -> None:
    keys = Keys()
    body = orjson.dumps({**group_work(), "object": {"id": "https://example.org/a"}, "context": {},
                         "result": {"response": "the same words " * 40}})
    sealed = seal_alone(body, keys.key_of(ADA))
    assert len(sealed) < len(body) / 2


def test_a_statement_packed_with_deflate_still_opens() -> None:
    """The packing of events sealed before zstd: a mark byte, then deflate with the dictionary."""
    keys = Keys()
    key = keys.key_of(ADA)
    statement = {**group_work(), "object": {"id": "https://example.org/a"}, "context": {}}
    packer = zlib.compressobj(1, zdict=_DICTIONARY_V1)
    packed = b"\x01" + packer.compress(orjson.dumps(statement)) + packer.flush()
    old = {SEALED: [key.key_id, key.pseudonym, _encrypt(key, packed), [],
                    "2026-11-30T09:00:00Z", True]}
    opened = unseal(old, keys.table())
    assert opened == {**statement, "stored": "2026-11-30T09:00:00Z",
                      "timestamp": "2026-11-30T09:00:00Z"}


def test_statements_sealed_on_many_threads_at_once_each_open_to_their_own() -> None:
    """Requests seal ahead on several threads; each thread packs with its own compressor."""
    keys = Keys()
    key = keys.key_of(ADA)
    bodies = [orjson.dumps({**group_work(), "object": {"id": f"https://example.org/a/{n}"},
                            "context": {}, "result": {"response": f"answer {n} " * (n % 50)}})
              for n in range(2_000)]
    with ThreadPoolExecutor(8) as pool:
        sealed = list(pool.map(lambda body: seal_alone(body, key), bodies))
        opened = list(pool.map(lambda s: open_body(orjson.loads(s), keys.table()), sealed))
    assert opened == bodies
