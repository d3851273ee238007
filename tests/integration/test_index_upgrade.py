"""A store made before the index held its keys as hashes is upgraded when opened.

The key table held each filter key's text (an IFI or an IRI and a prefix) and each attachment's;
now it holds a keyed hash of each filter key, and attachments have a table of their own. Checked on
both stores: what a store made with text keys found, it finds once opened, and no text is left.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest

from lrs.application import LearningRecordStore
from lrs.config import Settings
from lrs.store.index import StatementQuery
from lrs.store.keys import ACTIVITY, AGENT, key_hasher, statement_keys
from lrs.store.postgres import KEY_HASH_SQL
from schemas.statement import Statement
from tests.integration.test_erasure import files_holding, relation_files_holding
from tests.integration.test_statement_filters import WRITER, write
from tests.statements import activity, agent, statement, with_id

SHA2 = "5e3a0c1f" * 8  # an attachment whose bytes came with the target


def with_text_keys(store: LearningRecordStore, target: dict[str, Any], ref: dict[str, Any],
                   carried_column: bool = True) -> int:
    """The key table as a store made before keys were hashed held it: each key's text, the
    attachment's key among them, and the target's keys carried to the reference (or, made
    before keys were marked carried, no mark at all). Returns how many rows it holds."""
    recorder: Any = store.index  # either store's recorder: its own connection pool
    sql = recorder.index.sql
    with recorder.datastore.transaction(commit=True) as c:
        c.execute(sql("SELECT statement_id, seq FROM xapi_statement"))
        seqs = {row["statement_id"]: row["seq"] for row in c.fetchall()}
        own = {sid: statement_keys(Statement.model_validate(doc), None)
               for sid, doc in ((target["id"], target), (ref["id"], ref))}
        rows = [(key, seqs[target["id"]], False) for key in own[target["id"]]]
        rows += [(f"h:{SHA2}", seqs[target["id"]], False), (f"h:{SHA2}", seqs[ref["id"]], True)]
        rows += [(key, seqs[ref["id"]], False) for key in own[ref["id"]]]
        rows += [(key, seqs[ref["id"]], True) for key in own[target["id"]] - own[ref["id"]]]
        c.execute("DROP TABLE xapi_statement_key")
        c.execute("CREATE TABLE xapi_statement_key (key TEXT NOT NULL, seq BIGINT NOT NULL,"
                  " carried BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (key, seq))")
        c.execute("CREATE INDEX xapi_statement_key_seq ON xapi_statement_key (seq)")
        c.executemany(sql("INSERT INTO xapi_statement_key (key, seq, carried) VALUES (?,?,?)"), rows)
        c.execute("DELETE FROM xapi_statement_attachment")
        if not carried_column:
            c.execute("ALTER TABLE xapi_statement_key DROP COLUMN carried")
    store.close()
    return len(rows) - 1  # the reference's copy of the attachment's key never let it have them


def ids(store: LearningRecordStore, key: str, credential: str | None = None) -> list[str]:
    return [doc["id"] for _, doc in store.statements(StatementQuery(keys=(key,),
                                                                    credential=credential))]


def test_a_store_made_when_the_index_held_key_text_finds_the_same_statements_once_opened(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    target = with_id(statement(actor=agent("bob"), object=activity("essay")))
    ref = with_id(statement(object={"objectType": "StatementRef", "id": target["id"]}))
    store = LearningRecordStore(env=settings.event_store_env())
    write(store, [target, ref])
    rows = with_text_keys(store, target, ref)
    with caplog.at_level(logging.WARNING):
        store = LearningRecordStore(env=settings.event_store_env())
    assert f"upgraded the statement index: {rows} key rows rewritten" in caplog.text
    try:
        bob, essay = f"{AGENT}:mbox:mailto:bob@example.org", f"{ACTIVITY}:{activity('essay')['id']}"
        ada = f"{AGENT}:mbox:mailto:ada@example.org"
        for key in (bob, essay):  # the reference matches its target's filters (Comm. 2.1.3)
            assert ids(store, key) == [ref["id"], target["id"]], key
            assert ids(store, key, WRITER.key) == [target["id"]], key  # carried: not its own
        assert ids(store, ada) == ids(store, ada, WRITER.key) == [ref["id"]]
        recorder: Any = store.index
        assert recorder.carried_attachments([target["id"]], [SHA2]) == {SHA2}
        assert recorder.carried_attachments([ref["id"]], [SHA2]) == set()
        with recorder.datastore.transaction(commit=False) as c:
            c.execute("SELECT key_hash FROM xapi_statement_key")
            hashed = {recorder.index.key_hash(bob), recorder.index.key_hash(ada)}
            assert {row["key_hash"] for row in c.fetchall()} >= hashed
    finally:
        store.close()


def test_a_store_made_before_carried_keys_were_marked_counts_every_key_of_a_ref_as_carried(
        settings: Settings) -> None:
    target = with_id(statement(actor=agent("bob")))
    ref = with_id(statement(object={"objectType": "StatementRef", "id": target["id"]}))
    store = LearningRecordStore(env=settings.event_store_env())
    write(store, [target, ref])
    with_text_keys(store, target, ref, carried_column=False)
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        ada = f"{AGENT}:mbox:mailto:ada@example.org"
        assert ids(store, ada) == [ref["id"]]
        assert ids(store, ada, WRITER.key) == []  # found by time, not by a filter
        assert ids(store, f"{AGENT}:mbox:mailto:bob@example.org", WRITER.key) == [target["id"]]
    finally:
        store.close()


def test_a_key_hash_is_the_same_in_python_and_in_postgresql(postgres_database: str) -> None:
    """Keys a PostgreSQL store had as text are hashed in SQL when it is opened: the same
    8 bytes of SHA-256 of the store's secret and the key, signed, as every key since."""
    keys = ["", "a:mbox:mailto:ada@example.org", "v:\u00e9\U0001F600 'q\"\\", "c:" + "x" * 5000,
            "r:6fbd600f-d17c-4c74-801a-2ec2e53231c7"]
    secret = bytes(range(32))
    key_hash = key_hasher(secret)
    with psycopg.connect(postgres_database) as conn:
        for key in keys:
            [(hashed,)] = conn.execute(f"SELECT {KEY_HASH_SQL} FROM (SELECT %s::text AS key) AS k",
                                       [secret, key]).fetchall()
            assert hashed == key_hash(key), key
    assert {key_hash(key) < 0 for key in keys} == {True, False}  # both signs occur


def test_two_stores_hash_the_same_key_apart(settings: Settings, tmp_path: Any) -> None:
    """Each store keys its hashes with a secret of its own: a key's hash in one tells nothing
    of it in another, and nobody without the database can make a key that shares another's."""
    first = LearningRecordStore(env=settings.event_store_env())
    other = LearningRecordStore(env=Settings(data_dir=tmp_path / "other").event_store_env())
    try:
        key = f"{AGENT}:mbox:mailto:ada@example.org"
        first_index: Any = first.index
        other_index: Any = other.index
        assert first_index.index.key_hash(key) != other_index.index.key_hash(key)
        reopened = LearningRecordStore(env=settings.event_store_env())
        again: Any = reopened.index
        assert again.index.key_hash(key) == first_index.index.key_hash(key)  # kept in the store
        reopened.close()
    finally:
        first.close()
        other.close()


def test_an_opened_store_keeps_no_key_text_in_its_files(settings: Settings) -> None:
    """The text table's pages held IFIs in the clear: once the store is opened they are gone
    from its files, not only unlinked (an erased learner's address would otherwise stay)."""
    target = with_id(statement(actor=agent("bob")))
    ref = with_id(statement(object={"objectType": "StatementRef", "id": target["id"]}))
    store = LearningRecordStore(env=settings.event_store_env())
    write(store, [target, ref])
    with_text_keys(store, target, ref)
    bob = "bob@example.org"
    assert stored_traces(settings, bob)  # the scan sees the text before
    LearningRecordStore(env=settings.event_store_env()).close()
    assert not stored_traces(settings, bob)


def stored_traces(settings: Settings, trace: str) -> dict[str, list[str]]:
    if settings.event_store:
        return relation_files_holding(settings.event_store, [trace])
    return files_holding(settings.data_dir, [trace])
