"""Kafka ingest against a real broker: exactly-once storage, redelivery, dead letters, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from eventsourcing.utils import get_topic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ingest.kafka_consumer import KafkaIngestConfig, KafkaIngester, MessageIngest
from lrs.application import LearningRecordStore
from lrs.auth import CredentialDirectory
from lrs.config import Settings
from lrs.domain import StoredStatement
from tests.kafka_broker import create_topic, kafka_bootstrap, new_topic, read_topic  # noqa: F401
from tests.statements import agent, statement, with_id
from tests.waiting import wait_until

STORED = get_topic(StoredStatement.Stored)
TOOL = [("lrs-credential", b"tool-key"), ("lrs-source", b"quiz-app")]


@pytest.fixture
def store(sqlite_store: LearningRecordStore) -> LearningRecordStore:
    # Kafka's guarantees do not depend on the event store, which has its own suite on both.
    sqlite_store.issue_credential("tool", ["statements/write"], key="tool-key")
    return sqlite_store


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:  # noqa: F811
    name = new_topic(kafka_bootstrap, "statements")
    create_topic(kafka_bootstrap, f"{name}.dead-letter", partitions=1)
    return name


POLL = 0.2  # seconds between looks, as before the shared helper: most read and open every statement


def stored_ids(store: LearningRecordStore) -> list[str]:
    notifications = store.recorder.select_notifications(1, 1_000_000, topics=[STORED])
    sealed = [store.mapper.to_domain_event(n).statement for n in notifications]  # type: ignore[attr-defined]
    return [s["id"] for s in store.open_statements(sealed) if s is not None]


class RunningIngester:
    def __init__(self, store: LearningRecordStore, bootstrap: str, topic: str,
                 group: str = "lrs-test", commit_interval_ms: int = 1_000) -> None:
        config = KafkaIngestConfig(bootstrap=bootstrap, topic=topic, group_id=group,
                                   max_message_bytes=50_000, commit_interval_ms=commit_interval_ms)
        ingest = MessageIngest(store, CredentialDirectory(store, "urn:lrs:credentials"), config)
        self.ingester = KafkaIngester(ingest, config)
        self.thread = threading.Thread(target=self.ingester.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.ingester.stop.set()
        self.thread.join(timeout=30)


def produce(bootstrap: str, topic: str, values: list[bytes],
            headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for n, value in enumerate(values):
        producer.send(topic, key=str(n % 17).encode(), value=value,
                      headers=TOOL if headers is None else headers)
    producer.flush()
    producer.close()


def test_statements_from_several_producers_land_exactly_once(
    store: LearningRecordStore, kafka_bootstrap: str, topic: str  # noqa: F811
) -> None:
    expected: list[str] = []
    batches = []
    for producer_number in range(3):
        values = []
        for n in range(100):
            docs = [with_id(statement(actor=agent(f"p{producer_number}-{n % 7}")))
                    for _ in range(1 + n % 3)]
            expected += [d["id"] for d in docs]
            values.append(orjson.dumps(docs if len(docs) > 1 else docs[0]))
        batches.append(values)
    threads = [threading.Thread(target=produce, args=(kafka_bootstrap, topic, v)) for v in batches]
    running = RunningIngester(store, kafka_bootstrap, topic)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: len(stored_ids(store)) >= len(expected), seconds=60, interval=POLL)
    time.sleep(1)
    running.stop()
    ids = stored_ids(store)
    assert sorted(ids) == sorted(expected)


def test_redelivered_messages_store_nothing_twice(
    store: LearningRecordStore, kafka_bootstrap: str, topic: str  # noqa: F811
) -> None:
    produce(kafka_bootstrap, topic, [orjson.dumps(statement()) for _ in range(50)])
    first = RunningIngester(store, kafka_bootstrap, topic, group="first")
    wait_until(lambda: len(stored_ids(store)) == 50, seconds=60, interval=POLL)
    first.stop()
    # A second group reads every message again: as if every offset commit had been lost.
    second = RunningIngester(store, kafka_bootstrap, topic, group="second")
    wait_until(lambda: second.ingester.stored == 50, seconds=60, interval=POLL)
    second.stop()
    assert len(stored_ids(store)) == 50


def committed(bootstrap: str, topic: str, group: str) -> int:
    """How many messages the group's committed offsets cover, over all partitions."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions)
    finally:
        consumer.close()


def test_offsets_are_committed_after_the_append_on_the_interval(
    store: LearningRecordStore, kafka_bootstrap: str, topic: str  # noqa: F811
) -> None:
    produce(kafka_bootstrap, topic, [orjson.dumps(statement()) for _ in range(60)])
    running = RunningIngester(store, kafka_bootstrap, topic, group="often", commit_interval_ms=200)
    wait_until(lambda: committed(kafka_bootstrap, topic, "often") == 60, seconds=60, interval=POLL)
    assert len(stored_ids(store)) == 60  # nothing is committed before it is in the log
    running.stop()


def test_offsets_not_yet_due_are_committed_when_the_ingester_stops(
    store: LearningRecordStore, kafka_bootstrap: str, topic: str  # noqa: F811
) -> None:
    produce(kafka_bootstrap, topic, [orjson.dumps(statement()) for _ in range(60)])
    running = RunningIngester(store, kafka_bootstrap, topic, group="rarely",
                              commit_interval_ms=600_000)
    wait_until(lambda: running.ingester.stored == 60, seconds=60, interval=POLL)
    assert committed(kafka_bootstrap, topic, "rarely") == 0
    running.stop()
    assert committed(kafka_bootstrap, topic, "rarely") == 60


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_poison_messages_reach_the_dead_letter_topic_and_do_not_stall_the_partition(
    store: LearningRecordStore, kafka_bootstrap: str, topic: str  # noqa: F811
) -> None:
    clash = with_id(statement())
    store_clash = {**clash, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    poison = [
        (b'{"actor": ', TOOL, "malformed-json"),
        (orjson.dumps({"hello": "world"}), TOOL, "invalid-statement"),
        (orjson.dumps(statement(result={"response": "x" * 60_000})), TOOL, "too-large"),
        (orjson.dumps(statement()), [("lrs-credential", b"nobody")], "unknown-credential"),
        (orjson.dumps(statement()), [], "unknown-credential"),
        (orjson.dumps(statement(result={"extensions": {"https://example.org/x": _nested(100)}})),
         TOOL, "too-deep"),
        (orjson.dumps(statement(actor={"mbox": "mailto:a\u0000b@example.org"})), TOOL,
         "invalid-statement"),
    ]
    for value, headers, _ in poison:
        producer.send(topic, key=b"same-partition", value=value, headers=headers)
    producer.send(topic, key=b"same-partition", value=orjson.dumps(clash), headers=TOOL)
    producer.send(topic, key=b"same-partition", value=orjson.dumps(store_clash), headers=TOOL)
    good = with_id(statement())
    producer.send(topic, key=b"same-partition", value=orjson.dumps(good), headers=TOOL)
    producer.flush()
    running = RunningIngester(store, kafka_bootstrap, topic)
    wait_until(lambda: good["id"] in stored_ids(store), seconds=60, interval=POLL)
    running.stop()
    letters = read_topic(kafka_bootstrap, f"{topic}.dead-letter", expected=len(poison) + 1)
    categories = [dict(r.headers)["lrs-dead-letter-category"].decode() for r in letters]
    assert categories == [why for _, _, why in poison] + ["conflict"]
    for (value, _, _), letter in zip(poison, letters, strict=False):
        assert letter.value == value
        assert dict(letter.headers)["lrs-source-topic"].decode() == topic
        assert dict(letter.headers)["lrs-dead-letter-reason"]
    offsets = [int(dict(r.headers)["lrs-source-offset"]) for r in letters]
    assert offsets == sorted(offsets)


def test_a_consumer_joining_and_leaving_loses_and_duplicates_nothing(
    store: LearningRecordStore, kafka_bootstrap: str, topic: str  # noqa: F811
) -> None:
    docs = [with_id(statement(actor=agent(f"l{n % 40}"))) for n in range(3000)]
    first = RunningIngester(store, kafka_bootstrap, topic)
    producer = threading.Thread(target=produce, args=(
        kafka_bootstrap, topic, [orjson.dumps(d) for d in docs]))
    producer.start()
    wait_until(lambda: len(stored_ids(store)) > 300, seconds=60, interval=POLL)
    second = RunningIngester(store, kafka_bootstrap, topic)  # joins: the group rebalances
    time.sleep(3)
    first.stop()  # leaves: its partitions move to the second consumer
    producer.join()
    wait_until(lambda: len(stored_ids(store)) >= len(docs), seconds=120, interval=POLL)
    time.sleep(1)
    second.stop()
    assert sorted(stored_ids(store)) == sorted(d["id"] for d in docs)


def test_a_consumer_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic: str, tmp_path: Path  # noqa: F811
) -> None:
    settings = Settings(data_dir=tmp_path)
    store = LearningRecordStore(env=settings.event_store_env())
    store.issue_credential("tool", ["statements/write"], key="tool-key")
    # Half the statements have no id: redelivery must derive the same ids again.
    docs = [statement(actor=agent(f"l{n % 50}")) if n % 2 else with_id(statement())
            for n in range(20_000)]
    produce(kafka_bootstrap, topic, [orjson.dumps(d) for d in docs])
    command = [sys.executable, "-m", "lrs.cli.main", "ingest", "kafka", "--bootstrap",
               kafka_bootstrap, "--topic", topic, "--group", "crash-test", "--data-dir",
               str(tmp_path), "--instance-id", "ingester-0"]
    env = {**os.environ, "LRS_MAX_BATCH_STATEMENTS": "1000"}
    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(stored_ids(store)) > 2000, seconds=120, interval=POLL)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = len(stored_ids(store))
    assert killed_at < len(docs)
    survivor_log = (tmp_path / "survivor.log").open("w")
    survivor = subprocess.Popen(command, env=env, stdout=survivor_log, stderr=survivor_log)
    try:
        wait_until(lambda: len(stored_ids(store)) >= len(docs), seconds=180, interval=POLL)
        time.sleep(2)
    finally:
        survivor.terminate()
        survivor.wait(timeout=60)
        print((tmp_path / "survivor.log").read_text()[-3000:])
    ids = stored_ids(store)
    assert len(ids) == len(docs) == len(set(ids))
    store.close()
