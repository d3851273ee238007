"""The relay: follows the event log from its saved position and publishes every accepted
statement and document event to Kafka, keyed by learner so each learner's events stay in order.

The position is the library's tracking record, saved only after the producer has flushed, so a
restart resumes where it left off and nothing is skipped (at-least-once; each message carries
its log position so consumers can drop what they have seen).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification, Tracking, TrackingRecorder
from eventsourcing.utils import get_topic
from kafka import KafkaProducer

from lrs.application import LearningRecordStore
from lrs.config import DEFAULT_STORE
from lrs.domain import AlignmentSet, Document, ParameterFit, Roster, StoredStatement
from lrs.sealing import open_bytes, open_text, sealed_key_id
from projections.facts import actor_key

log = logging.getLogger("lrs.relay")

RELAYED_TOPICS = [get_topic(StoredStatement.Stored), get_topic(Document.Created),
                  get_topic(Document.Written), get_topic(Document.Deleted),
                  get_topic(AlignmentSet.Loaded), get_topic(Roster.Loaded),
                  get_topic(ParameterFit.Fitted)]


@dataclass(frozen=True)
class OutboundMessage:
    position: int
    key: bytes
    value: bytes


def learner_key(statement: dict[str, Any]) -> str:
    """The actor's IFI key (as the views name learners): whose events must stay in order."""
    return actor_key(statement.get("actor")) or "anonymous"


class LogFollower:
    """Reads the statement and document events after a position, in pages, in log order."""

    def __init__(self, store: LearningRecordStore, page_size: int = 1000) -> None:
        self.store = store
        self.page_size = page_size
        self._identities: dict[UUID, tuple[str, dict[str, str]]] = {}

    def pages(self, after: int) -> Iterator[list[Notification]]:
        while True:
            page = self.store.recorder.select_notifications(
                after + 1, self.page_size, topics=RELAYED_TOPICS)
            if not page:
                return
            yield list(page)
            after = page[-1].id

    def message(self, notification: Notification) -> OutboundMessage:
        event: Any = self.store.mapper.to_domain_event(notification)
        if isinstance(event, StoredStatement.Stored):
            statement = self.store.open_statements([event.statement])[0]
            if statement is None:  # its learner was erased before it was relayed: a gap
                body: dict[str, Any] = {"type": "erased"}
                key = "erased"
            else:
                body = {"type": "statement", "statement": statement, "credential": event.credential}
                key = learner_key(statement)
        elif isinstance(event, AlignmentSet.Loaded):
            body = {"type": "alignments", "framework": event.framework,
                    "alignments": event.alignments, "parameters": event.parameters}
            key = "alignments"
        elif isinstance(event, ParameterFit.Fitted):
            body = {"type": "parameters", "method": event.method, "parameters": event.parameters,
                    "through_position": event.through_position}
            key = "alignments"  # in order with the loads: the latest parameters win
        elif isinstance(event, Roster.Loaded):
            body = {"type": "roster", "entries": event.entries}
            key = "roster"
        else:
            resource, scope = self._document_identity(event.originator_id)
            content = None if isinstance(event, Document.Deleted) else event.content
            opened_scope, content = self._opened_document(scope, content)
            if opened_scope is None:  # its agent was erased before it was relayed: a gap
                body, key = {"type": "erased"}, "erased"
            else:
                scope = opened_scope
                body = {"type": "document", "event": type(event).__name__, "resource": resource,
                        "scope": scope, "version": event.originator_version}
                if content is not None:
                    body.update(contentType=event.content_type, etag=event.etag,
                                content=base64.b64encode(content).decode())
                key = scope.get("agent") or scope.get("activityId") or "documents"
        body["position"] = notification.id
        return OutboundMessage(notification.id, key.encode(), orjson.dumps(body))


    def _opened_document(self, scope: dict[str, str], content: bytes | None
                         ) -> tuple[dict[str, str] | None, bytes | None]:
        """A document's scope and content unsealed (lrs/document_commands.py); None: erased."""
        sealed = [k for k in (sealed_key_id(scope.get("agent", "")),
                              sealed_key_id(content) if content is not None else None) if k]
        if not sealed:
            return scope, content
        keys = self.store.keys.learner_keys(sealed)
        agent = open_text(scope["agent"], keys)
        opened = open_bytes(content, keys) if content is not None else None
        if agent is None or (content is not None and opened is None):
            return None, None
        return dict(scope, agent=agent), opened

    def _document_identity(self, document_id: UUID) -> tuple[str, dict[str, str]]:
        """A document's resource and scope never change: read them once from its first event."""
        found = self._identities.get(document_id)
        if found is None:
            created: Any = next(iter(self.store.events.get(document_id, lte=1)))
            found = (created.resource, created.scope)
            if len(self._identities) > 100_000:
                self._identities.clear()
            self._identities[document_id] = found
        return found


STORE_HEADER = "lrs-store"


class KafkaRelay:
    """Publishes one store's log; every message names the store in its `lrs-store` header, so
    the stores of a deployment may share a topic and each projector takes its own."""

    def __init__(self, store: LearningRecordStore, tracking: TrackingRecorder, bootstrap: str,
                 topic: str, name: str = "relay-kafka", store_name: str = DEFAULT_STORE) -> None:
        self.follower = LogFollower(store)
        self.headers = [(STORE_HEADER, store_name.encode())]
        self.tracking = tracking
        self.bootstrap = bootstrap
        self.topic = topic
        self.name = name
        self.stop = threading.Event()
        self.relayed = 0

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.name) or 0

    def relay_available(self, producer: KafkaProducer) -> int:
        """Publish everything after the saved position; return how many were published."""
        published = 0
        for page in self.follower.pages(self.position()):
            messages = [self.follower.message(n) for n in page]
            futures = [producer.send(self.topic, key=m.key, value=m.value, headers=self.headers)
                       for m in messages]
            producer.flush()
            for future in futures:
                future.get(timeout=30)
            self.tracking.insert_tracking(Tracking(self.name, page[-1].id))
            published += len(messages)
            if self.stop.is_set():
                break
        self.relayed += published
        return published

    def run(self, idle_seconds: float = 0.5) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                 enable_idempotence=True, linger_ms=5, client_id="lrs-relay")
        log.info("relaying from position %d to %s", self.position(), self.topic)
        delay = 1.0
        try:
            while not self.stop.is_set():
                try:
                    if self.relay_available(producer) == 0:
                        self.stop.wait(idle_seconds)
                    delay = 1.0
                except Exception as exc:  # nothing after the saved position is lost
                    log.error("relay failed, retrying in %.0fs: %s", delay, exc)
                    self.stop.wait(delay)
                    delay = min(delay * 2, 30.0)
        finally:
            producer.close()
