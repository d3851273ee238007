"""Kafka ingest: a consumer group whose messages take the same path as HTTP requests.

Each message holds one statement or an array and is its own all-or-nothing batch. All good
messages of a poll are appended in one write; offsets are committed only after that write and
the dead-letter sends are durable. A redelivered message is harmless: its statements keep their
ids (ids the producer left out are derived from topic, partition and offset), so the same
content is ignored and different content is a conflict. That is also why offsets are committed
asynchronously on an interval (and synchronously on stop) rather than waited for after every
poll: a crash or a rebalance can only make the group read again, and ignore, about one interval
of what is already in the log.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import CredentialDirectory, Principal
from lrs.config import DEFAULT_STORE
from lrs.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    LRSError,
    PayloadTooLarge,
    StoreRefused,
    Unauthorized,
)
from lrs.statement_events import PreparedStatement
from lrs.store_logs import StoreLogs
from schemas.validate import NestedTooDeep, StatementInvalid, parse_json
from schemas.version import UnsupportedVersion, negotiate

log = logging.getLogger("lrs.ingest.kafka")

CREDENTIAL_HEADER = "lrs-credential"
SOURCE_HEADER = "lrs-source"
VERSION_HEADER = "x-experience-api-version"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:lrs:kafka-offset")


@dataclass(frozen=True)
class KafkaIngestConfig:
    bootstrap: str
    topic: str
    group_id: str = "lrs-ingest"
    dead_letter_topic: str = ""
    max_message_bytes: int = 1024 * 1024
    max_batch_statements: int = 1000
    poll_records: int = 2000
    # A poll's batch is appended in well under a second, so a member that has not polled for
    # 30 s is gone: the group rebalances without it instead of waiting the default 5 minutes.
    max_poll_interval_ms: int = 30_000
    session_timeout_ms: int = 10_000
    # Static membership (KIP-345): a restarted ingester with the same instance id takes its
    # partitions back at once, without waiting for its old session to time out.
    instance_id: str | None = None
    # Offsets of appended messages are committed at most this often, without waiting for the
    # broker (as Kafka's own auto-commit does); waiting for a commit after every poll took a
    # quarter of an ingester's time.
    commit_interval_ms: int = 1_000

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dead-letter"


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class DeadLetter:
    record: Record
    category: str
    reason: str

    @classmethod
    def of(cls, record: Record, exc: Exception) -> DeadLetter:
        return cls(record, _CATEGORIES.get(type(exc), "rejected"), str(exc))


_CATEGORIES: dict[type[Exception], str] = {
    StatementInvalid: "malformed-json", NestedTooDeep: "too-deep", BadRequest: "invalid-statement",
    UnsupportedVersion: "invalid-statement", PayloadTooLarge: "too-large",
    Unauthorized: "unknown-credential", Forbidden: "forbidden", Conflict: "conflict",
    StoreRefused: "store-refused",
}


def _header(record: Record, name: str) -> str | None:
    for key, value in record.headers or []:
        if key.lower() == name:
            return value.decode("utf-8", "replace")
    return None


class MessageIngest:
    """Turns polled records into appended statements and dead letters; knows nothing of Kafka I/O."""

    def __init__(self, store: LearningRecordStore, credentials: CredentialDirectory,
                 config: KafkaIngestConfig, logs: StoreLogs | None = None) -> None:
        self.store = store
        self.credentials = credentials
        self.config = config
        # The credential in a message's header decides its store, as over HTTP. Without the
        # other stores' logs, only the `default` store's credentials are taken.
        self.logs = logs

    def _log_of(self, principal: Principal) -> LearningRecordStore:
        if self.logs is not None:
            return self.logs.log(principal.store)
        if principal.store != DEFAULT_STORE:
            raise Forbidden(f"credential '{principal.key}' belongs to store '{principal.store}';"
                            " this consumer writes store 'default' only")
        return self.store

    def prepare(self, record: Record) -> list[PreparedStatement]:
        return self._prepare(record)[1]

    def _prepare(self, record: Record) -> tuple[LearningRecordStore, list[PreparedStatement]]:
        size = len(record.value or b"")
        if size > self.config.max_message_bytes:
            raise PayloadTooLarge(f"message of {size} bytes exceeds the limit of"
                                  f" {self.config.max_message_bytes} bytes")
        key = _header(record, CREDENTIAL_HEADER)
        if not key:
            raise Unauthorized(f"message has no {CREDENTIAL_HEADER} header naming its credential")
        principal = self.credentials.principal(key)
        principal.require_write()
        log = self._log_of(principal)
        version = negotiate(_header(record, VERSION_HEADER) or "1.0.3")
        payload = parse_json(record.value or b"")

        def id_for(index: int) -> str:
            return str(uuid.uuid5(_ID_NAMESPACE,
                                  f"{record.topic}/{record.partition}/{record.offset}/{index}"))

        return log, prepare_statements(payload, principal, version,
                                       self.config.max_batch_statements, id_for=id_for)

    def ingest(self, records: Iterable[Record]) -> tuple[int, list[DeadLetter]]:
        """Append every good message in one write; return the count stored and the dead letters."""
        by_store: dict[int, tuple[LearningRecordStore, list[tuple[Record, list[PreparedStatement]]]]] = {}
        dead: list[DeadLetter] = []
        for record in records:
            try:
                log, batch = self._prepare(record)
            except (LRSError, StatementInvalid, UnsupportedVersion) as exc:
                dead.append(DeadLetter.of(record, exc))
                continue
            by_store.setdefault(id(log), (log, []))[1].append((record, batch))
        stored = 0
        for log, batches in by_store.values():  # one write per store
            outcomes = log.store_batches([batch for _, batch in batches])
            for (record, batch), outcome in zip(batches, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    dead.append(DeadLetter.of(record, outcome))
                else:
                    stored += len(batch)
        return stored, dead


def _dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    r = letter.record
    extra = [("lrs-dead-letter-category", letter.category),
             ("lrs-dead-letter-reason", letter.reason), ("lrs-source-topic", r.topic),
             ("lrs-source-partition", str(r.partition)), ("lrs-source-offset", str(r.offset))]
    return list(r.headers or []) + [(k, v.encode()) for k, v in extra]


def _log_failed_commit(offsets: dict[TopicPartition, OffsetAndMetadata], result: Any) -> None:
    if isinstance(result, Exception):  # e.g. a rebalance took the partitions: harmless
        log.warning("offsets not committed (%s); those messages will be read again and ignored,"
                    " as their statements are stored", result)


def _connect(factory: Callable[[], Any], what: str, stop: threading.Event) -> Any:
    """Keep trying with back-off while the broker is unreachable; never crash-loop."""
    delay = 1.0
    while not stop.is_set():
        try:
            return factory()
        except KafkaError as exc:
            log.warning("%s: broker unreachable (%s); retrying in %.0fs", what, exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
    return None


class KafkaIngester:
    def __init__(self, ingest: MessageIngest, config: KafkaIngestConfig) -> None:
        self.ingest = ingest
        self.config = config
        self.stop = threading.Event()
        self.stored = 0
        self.dead_lettered = 0
        # Offsets of messages whose statements are durably appended, not yet committed.
        self._appended: dict[TopicPartition, OffsetAndMetadata] = {}
        self._committed_at = time.monotonic()

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            self.config.topic, bootstrap_servers=self.config.bootstrap, group_id=self.config.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.config.poll_records, client_id="lrs-ingest",
            max_poll_interval_ms=self.config.max_poll_interval_ms,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.session_timeout_ms // 3,
            group_instance_id=self.config.instance_id)

    def commit(self, consumer: KafkaConsumer, wait: bool) -> None:
        """Commit the offsets of everything appended so far, for the partitions still ours."""
        owned = consumer.assignment()
        offsets = {tp: offset for tp, offset in self._appended.items() if tp in owned}
        self._appended.clear()
        self._committed_at = time.monotonic()
        if not offsets:
            return
        if not wait:
            consumer.commit_async(offsets, callback=_log_failed_commit)
            return
        try:
            consumer.commit(offsets)
        except KafkaError as exc:
            _log_failed_commit(offsets, exc)

    def _producer(self) -> KafkaProducer:
        return KafkaProducer(bootstrap_servers=self.config.bootstrap, acks="all",
                             enable_idempotence=True, client_id="lrs-ingest-dead-letters")

    def run(self) -> None:
        consumer = _connect(self._consumer, "consumer", self.stop)
        producer = _connect(self._producer, "dead-letter producer", self.stop)
        if consumer is None or producer is None:
            return
        log.info("consuming %s as group %s", self.config.topic, self.config.group_id)
        delay = 1.0
        interval = self.config.commit_interval_ms / 1000
        try:
            while not self.stop.is_set():
                polled = consumer.poll(timeout_ms=500)
                try:
                    if polled:
                        self._handle(producer, polled)
                        delay = 1.0
                    if time.monotonic() - self._committed_at >= interval:
                        self.commit(consumer, wait=False)
                except Exception as exc:  # the store or the broker failed: nothing of this poll counts
                    log.error("batch failed, will be read again in %.0fs: %s", delay, exc)
                    for tp, records in polled.items():
                        consumer.seek(tp, records[0].offset)
                    self.stop.wait(delay)
                    delay = min(delay * 2, 30.0)
            self.commit(consumer, wait=True)
        finally:
            consumer.close(autocommit=False, timeout_ms=10_000)
            producer.close(timeout=10)

    def _handle(self, producer: KafkaProducer, polled: dict[TopicPartition, list[Record]]) -> None:
        records = [r for batch in polled.values() for r in batch]
        stored, dead = self.ingest.ingest(records)
        futures = [producer.send(self.config.dead_letters, key=d.record.key, value=d.record.value,
                                 headers=_dead_letter_headers(d)) for d in dead]
        producer.flush()
        for future in futures:
            future.get(timeout=30)  # raises if a dead letter was not durably written
        for letter in dead:
            log.warning("dead-lettered %s[%d]@%d (%s): %s", letter.record.topic,
                        letter.record.partition, letter.record.offset, letter.category,
                        letter.reason)
        self._appended.update({tp: OffsetAndMetadata(batch[-1].offset + 1, "", -1)
                               for tp, batch in polled.items()})
        self.stored += stored
        self.dead_lettered += len(dead)
