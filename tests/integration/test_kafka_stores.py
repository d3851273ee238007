"""Stores over Kafka, against a real broker, on SQLite and PostgreSQL: the credential a message's
header names decides the store it is written to, and the relay's messages name their store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from ingest.kafka_consumer import KafkaIngestConfig, KafkaIngester, MessageIngest
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import CredentialDirectory, Principal
from lrs.config import Settings
from lrs.relay import KafkaRelay
from lrs.store_logs import StoreLogs
from projections.kafka_source import KafkaProjectionSource
from projections.runner import ProjectionRunner
from tests.integration.test_kafka_ingest import POLL, RunningIngester, produce, stored_ids
from tests.kafka_broker import create_topic, kafka_bootstrap, new_topic, read_topic
from tests.statements import agent, statement, with_id
from tests.waiting import wait_until

__all__ = ["kafka_bootstrap"]


@pytest.fixture
def catalogue(settings: Settings) -> Iterator[LearningRecordStore]:
    """The `default` store's log with stores north, south and archived old, a writer in each."""
    app = LearningRecordStore(env=settings.event_store_env())
    for name in ("north", "south", "old"):
        app.create_store(name)
        app.issue_credential(name, ["statements/write"], key=f"{name}-tool", store=name)
    app.issue_credential("default", ["statements/write"], key="default-tool")
    app.archive_store("old")
    yield app
    app.close()


@pytest.fixture
def logs(settings: Settings, catalogue: LearningRecordStore) -> Iterator[StoreLogs]:
    opened = StoreLogs(settings, catalogue)
    yield opened
    opened.close()


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = new_topic(kafka_bootstrap, "statements")
    create_topic(kafka_bootstrap, f"{name}.dead-letter", partitions=1)
    return name


def headers(key: str) -> list[tuple[str, bytes]]:
    return [("lrs-credential", key.encode())]


def produce_for(bootstrap: str, topic: str, key: str, count: int) -> list[str]:
    docs = [with_id(statement(actor=agent(f"{key}-{n}"))) for n in range(count)]
    produce(bootstrap, topic, [orjson.dumps(d) for d in docs], headers=headers(key))
    return [d["id"] for d in docs]


class StoreIngester(RunningIngester):
    """The ingester `lrs ingest kafka` runs: every store's log at hand."""

    def __init__(self, catalogue: LearningRecordStore, logs: StoreLogs | None, bootstrap: str,
                 topic: str) -> None:
        config = KafkaIngestConfig(bootstrap=bootstrap, topic=topic, group_id="stores",
                                   max_message_bytes=50_000, commit_interval_ms=500)
        ingest = MessageIngest(catalogue, CredentialDirectory(catalogue, "urn:lrs:credentials"),
                               config, logs)
        self.ingester = KafkaIngester(ingest, config)
        self.thread = threading.Thread(target=self.ingester.run, daemon=True)
        self.thread.start()


def test_the_credential_in_the_header_decides_the_store(
        catalogue: LearningRecordStore, logs: StoreLogs, kafka_bootstrap: str,
        topic: str) -> None:
    sent = {name: produce_for(kafka_bootstrap, topic, f"{name}-tool", 20)
            for name in ("north", "south", "default")}
    running = StoreIngester(catalogue, logs, kafka_bootstrap, topic)
    try:
        wait_until(lambda: running.ingester.stored >= 60, seconds=60, interval=POLL)
    finally:
        running.stop()
    for name in ("north", "south", "default"):
        assert sorted(stored_ids(logs.log(name))) == sorted(sent[name])


def test_an_archived_stores_credential_is_dead_lettered_naming_the_rule(
        catalogue: LearningRecordStore, logs: StoreLogs, kafka_bootstrap: str,
        topic: str) -> None:
    produce_for(kafka_bootstrap, topic, "old-tool", 3)
    running = StoreIngester(catalogue, logs, kafka_bootstrap, topic)
    try:
        letters = read_topic(kafka_bootstrap, f"{topic}.dead-letter", expected=3)
    finally:
        running.stop()
    assert [dict(r.headers)["lrs-dead-letter-category"] for r in letters] == [b"forbidden"] * 3
    assert b"store 'old' is archived" in dict(letters[0].headers)["lrs-dead-letter-reason"]


def test_a_consumer_without_the_stores_never_writes_a_stores_message_to_default(
        catalogue: LearningRecordStore, kafka_bootstrap: str, topic: str) -> None:
    produce_for(kafka_bootstrap, topic, "north-tool", 2)
    running = StoreIngester(catalogue, None, kafka_bootstrap, topic)
    try:
        letters = read_topic(kafka_bootstrap, f"{topic}.dead-letter", expected=2)
    finally:
        running.stop()
    assert len(letters) == 2
    assert stored_ids(catalogue) == []


def test_the_relays_messages_carry_their_store_and_a_projector_takes_its_own(
        settings: Settings, logs: StoreLogs, kafka_bootstrap: str,
        tmp_path: Path) -> None:
    outbound = new_topic(kafka_bootstrap, "lrs-events")
    writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for name, count in (("north", 3), ("south", 2)):
            log = logs.log(name)
            docs = [statement(actor=agent(f"{name}-{n}")) for n in range(count)]
            log.store_batches([prepare_statements(docs, writer, "1.0.3", 100)])
            relay = KafkaRelay(log, log.factory.tracking_recorder(), kafka_bootstrap, outbound,
                               store_name=name)
            assert relay.relay_available(producer) == count
    finally:
        producer.close()
    records = read_topic(kafka_bootstrap, outbound, 5)
    assert sorted(dict(r.headers)["lrs-store"] for r in records) == [b"north"] * 3 + [b"south"] * 2
    runner = ProjectionRunner(logs.log("south"), tmp_path / "south.duckdb")
    source = KafkaProjectionSource(runner, kafka_bootstrap, outbound, "south-projector",
                                   store="south")
    try:
        wait_until(lambda: source.poll_once() >= 0 and runner.con.execute(
            "SELECT count(*) FROM statement_facts").fetchone() == (2,), seconds=30, interval=POLL)
        learners = runner.con.execute(
            "SELECT DISTINCT learner FROM statement_facts ORDER BY 1").fetchall()
    finally:
        source.consumer.close()
        runner.close()
    assert learners == [("mbox:mailto:south-0@example.org",), ("mbox:mailto:south-1@example.org",)]
