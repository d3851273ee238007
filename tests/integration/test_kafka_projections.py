"""`lrs project --source kafka`: the relay's topic gives the same views as the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from lrs.application import LearningRecordStore
from lrs.relay import KafkaRelay
from projections.kafka_source import KafkaProjectionSource
from projections.runner import ProjectionRunner
from tests.integration.test_projection_runner import FRACTIONS, answer, append, tables
from tests.kafka_broker import kafka_bootstrap, new_topic  # noqa: F401
from tests.statements import agent


@pytest.fixture
def relayed(sqlite_store: LearningRecordStore, kafka_bootstrap: str) -> str:  # noqa: F811
    first = append(sqlite_store, [answer(name, day, (day + n) % 3 != 0, hour=9 + n)
                                  for day in range(1, 9) for n, name in enumerate(["ada", "bob"])])
    append(sqlite_store, [{"actor": agent("teacher"),
                           "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
                           "object": {"objectType": "StatementRef", "id": first[0]}}])
    sqlite_store.load_alignments("f", [("https://example.org/q/3", FRACTIONS)],
                                 {FRACTIONS: {"prior": 0.3, "learn": 0.2, "guess": 0.2, "slip": 0.1}})
    sqlite_store.load_roster([("mbox:mailto:ada@example.org", "sis:7B")])
    topic = new_topic(kafka_bootstrap, "lrs-events")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    KafkaRelay(sqlite_store, sqlite_store.factory.tracking_recorder(), kafka_bootstrap,
               topic).relay_available(producer)
    producer.close()
    return topic


def project_from_kafka(runner: ProjectionRunner, bootstrap: str, topic: str, group: str) -> None:
    source = KafkaProjectionSource(runner, bootstrap, topic, group)
    quiet = 0
    while quiet < 3:  # three empty polls in a row: the topic is drained
        quiet = quiet + 1 if source.poll_once(timeout_ms=1000) == 0 else 0
    source.consumer.close()


def test_views_from_kafka_equal_views_from_the_log(
    sqlite_store: LearningRecordStore, relayed: str, kafka_bootstrap: str, tmp_path: Path  # noqa: F811
) -> None:
    from_log = ProjectionRunner(sqlite_store, tmp_path / "log.duckdb")
    from_log.catch_up()
    from_kafka = ProjectionRunner(sqlite_store, tmp_path / "kafka.duckdb")
    project_from_kafka(from_kafka, kafka_bootstrap, relayed, "projector")
    expected: dict[str, Any] = tables(from_log.con)
    assert tables(from_kafka.con) == expected
    assert from_kafka.con.execute("SELECT class_id FROM learner_class WHERE learner LIKE '%ada%'"
                                  ).fetchone() == ("sis:7B",)


def test_a_redelivered_topic_changes_nothing(
    sqlite_store: LearningRecordStore, relayed: str, kafka_bootstrap: str, tmp_path: Path  # noqa: F811
) -> None:
    runner = ProjectionRunner(sqlite_store, tmp_path / "kafka.duckdb")
    project_from_kafka(runner, kafka_bootstrap, relayed, "first")
    once = tables(runner.con)
    project_from_kafka(runner, kafka_bootstrap, relayed, "second")  # every message again
    assert tables(runner.con) == once
