"""The relay publishes the log to Kafka: everything, in order per learner, resuming after a stop."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.documents import STATE, DocumentKey, Preconditions
from lrs.relay import KafkaRelay, learner_key
from tests.kafka_broker import kafka_bootstrap, new_topic, read_topic  # noqa: F401
from tests.loops import run
from tests.statements import agent, statement


@pytest.fixture
def store(sqlite_store: LearningRecordStore) -> LearningRecordStore:
    return sqlite_store


@pytest.fixture
def outbound(kafka_bootstrap: str) -> str:  # noqa: F811
    return new_topic(kafka_bootstrap, "lrs-events")


WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")


def append(store: LearningRecordStore, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        store.store_batches([prepare_statements(doc, WRITER, "1.0.3", 100)])


def relay_once(store: LearningRecordStore, bootstrap: str, topic: str) -> int:
    relay = KafkaRelay(store, store.factory.tracking_recorder(), bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        return relay.relay_available(producer)
    finally:
        producer.close()


def test_relay_output_matches_the_log_in_order_per_learner(
    store: LearningRecordStore, kafka_bootstrap: str, outbound: str  # noqa: F811
) -> None:
    docs = [statement(actor=agent(f"learner{n % 9}")) for n in range(300)]
    append(store, docs)
    assert relay_once(store, kafka_bootstrap, outbound) == 300
    records = read_topic(kafka_bootstrap, outbound, 300)
    assert len(records) == 300
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        body = orjson.loads(record.value)
        assert record.key == learner_key(body["statement"]).encode()
        per_key[record.key].append(body["position"])
    assert len(per_key) == 9
    for positions in per_key.values():
        assert positions == sorted(positions)
    log_positions = [n.id for n in store.recorder.select_notifications(1, 1000)]
    assert sorted(p for ps in per_key.values() for p in ps) == log_positions


def test_relay_resumes_from_its_saved_position_and_skips_nothing(
    store: LearningRecordStore, kafka_bootstrap: str, outbound: str  # noqa: F811
) -> None:
    append(store, [statement() for _ in range(40)])
    assert relay_once(store, kafka_bootstrap, outbound) == 40
    append(store, [statement() for _ in range(25)])
    assert relay_once(store, kafka_bootstrap, outbound) == 25  # a restarted relay
    positions = [orjson.loads(r.value)["position"] for r in read_topic(kafka_bootstrap, outbound, 65)]
    assert sorted(positions) == [n.id for n in store.recorder.select_notifications(1, 1000)]


def test_document_events_are_relayed_keyed_by_agent(
    store: LearningRecordStore, kafka_bootstrap: str, outbound: str  # noqa: F811
) -> None:
    key = DocumentKey(STATE, "bookmark", "https://example.org/a", "mbox:mailto:ada@example.org")
    run(store.write_document(key, b'{"page": 1}', "application/json", merge=False,
                                     conditions=Preconditions(), must_be_conditional=False))
    store.delete_documents([store.document(key)], Preconditions())
    assert relay_once(store, kafka_bootstrap, outbound) == 2
    bodies = [orjson.loads(r.value) for r in read_topic(kafka_bootstrap, outbound, 2)]
    assert [b["event"] for b in bodies] == ["Created", "Deleted"]
    assert bodies[0]["scope"]["agent"] == "mbox:mailto:ada@example.org"
