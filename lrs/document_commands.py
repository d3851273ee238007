"""State, Activity Profile and Agent Profile documents: each write or delete is an event."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from ingest.enrich import format_stored
from lrs.document_writes import DocumentWriter, DocumentWrites
from lrs.documents import (
    JSON_TYPE,
    DocumentKey,
    Preconditions,
    StoredDocument,
    check_json_document,
    check_preconditions,
    etag_of,
)
from lrs.documents import merge as merge_documents
from lrs.domain import DOCUMENT_TOPIC, Document
from lrs.errors import Conflict, NotFound, PreconditionFailed, StoreRefused
from lrs.key_ring import KeyRing
from lrs.sealing import open_bytes, seal_bytes, seal_text, sealed_key_id
from lrs.store.documents import DocumentChange, DocumentFilter, DocumentViewReads
from lrs.store.learner_key_reads import LearnerKeyReads
from lrs.store.learner_keys import KeyGenerationChanged


class DocumentCommands(Application[UUID]):
    """The document use cases of the LRS application.

    A document scoped to an agent (State, Agent Profile) is recorded in the log with its content
    and agent sealed under that agent's key, like their statements: forgetting the agent makes
    the log's copies unreadable, and deletes the current state the reads are served from."""

    key_ring: KeyRing
    seal_statements: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.document_writes: DocumentWriter = DocumentWrites(self.events)

    def write_documents_through(self, writer: DocumentWriter) -> None:
        """Document events go to ``writer`` instead of this process's own group commit."""
        self.document_writes.close()
        self.document_writes = writer

    def close(self) -> None:
        self.document_writes.close()
        super().close()

    @property
    def keys_table(self) -> LearnerKeyReads:
        return cast(LearnerKeyReads, self.recorder)

    @property
    def document_view(self) -> DocumentViewReads:
        return cast(DocumentViewReads, self.recorder)

    def document(self, key: DocumentKey) -> StoredDocument:
        found, _ = self.document_view.document(key)
        if found is None:
            raise NotFound(f"no {key.resource} document '{key.document_id}' here")
        return found

    def opened_content(self, content: bytes | None) -> bytes | None:
        """A document event's content as it was written (None: deleted, or its agent erased)."""
        if content is None:
            return None
        key_id = sealed_key_id(content)
        if key_id is None:
            return content
        keys = self.keys_table.learner_keys([key_id])
        return open_bytes(content, keys)

    def documents(self, selection: DocumentFilter) -> list[StoredDocument]:
        return self.document_view.matching_documents(selection)

    async def write_document(self, key: DocumentKey, content: bytes, content_type: str, *,
                             merge: bool, conditions: Preconditions, must_be_conditional: bool,
                             new_must_be_conditional: bool = False) -> StoredDocument:
        """PUT replaces and POST merges; a concurrent change in between fails the precondition.

        A coroutine of the request's own event loop: the read and the sealing take microseconds,
        and the writer's answer is awaited, not waited for by a thread (handing a request to a
        thread and back cost it more than its read, its sealing and its share of the commit)."""
        for _ in range(3):
            existing, version = self.document_view.document(key)
            check_preconditions(existing, conditions, must_be_conditional and not merge,
                                new_must_be_conditional and not merge)
            if not merge:
                check_json_document(content, content_type)
            body = merge_documents(existing, content, content_type) if merge else content
            kind = JSON_TYPE if merge else content_type
            try:
                return await self._record_document(key, body, kind, version,
                                                   "post" if merge else "put")
            except IntegrityError as exc:
                if self.document_view.document(key)[1] == version:  # nobody wrote it meanwhile
                    raise StoreRefused(f"the event store refused this document write ({exc});"
                                       " nothing of it was stored") from exc
                if conditions.given:
                    raise PreconditionFailed("the document changed while this request was being"
                                             " handled; fetch it again and retry") from None
        raise Conflict("the document is being changed by other requests; retry")

    def delete_documents(self, documents: Sequence[StoredDocument], conditions: Preconditions) -> None:
        """Delete each document as an event of its own, all in one write."""
        now = datetime.now(UTC)
        events, changes = [], []
        for doc in documents:
            check_preconditions(doc, conditions, must_be_conditional=False)
            events.append(Document.Deleted(
                originator_id=doc.key.aggregate_id, originator_version=doc.version + 1,
                timestamp=now))
            changes.append(DocumentChange(doc.key, None, doc.content_type, doc.etag,
                                          format_stored(now), doc.version + 1))
        if events:
            try:
                self.document_writes.put(events, changes)
            except IntegrityError:
                raise PreconditionFailed("a document changed while it was being deleted;"
                                         " fetch it again and retry") from None

    async def _record_document(self, key: DocumentKey, content: bytes, content_type: str,
                               version: int, operation: str) -> StoredDocument:
        now = datetime.now(UTC)
        etag = etag_of(content)
        updated = format_stored(now)
        changes = [DocumentChange(key, content, content_type, etag, updated, version + 1)]
        if key.agent is None or not self.seal_statements:
            event = self._document_event(key, content, key.scope(), content_type, etag, version,
                                         operation, now)
            await asyncio.wrap_future(self.document_writes.submit([event], changes))
            return StoredDocument(key, content, content_type, etag, updated, version + 1)
        for _ in range(20):
            batch = self.key_ring.batch(updated[:10])
            sealing = batch.key_of(key.agent)
            scope = dict(key.scope(), agent=seal_text(sealing, key.agent))
            event = self._document_event(key, seal_bytes(sealing, content), scope, content_type,
                                         etag, version, operation, now)
            try:
                await asyncio.wrap_future(self.document_writes.submit(
                    [event], changes, list(batch.new.values()), batch.generation))
            except KeyGenerationChanged:
                self.key_ring.reload()  # a learner was erased meanwhile: seal again
                continue
            self.key_ring.committed(batch)
            return StoredDocument(key, content, content_type, etag, updated, version + 1)
        raise StoreRefused("learners kept being erased while this document was written; retry")

    @staticmethod
    def _document_event(key: DocumentKey, content: bytes, scope: dict[str, str], content_type: str,
                        etag: str, version: int, operation: str, now: datetime) -> Any:
        if version == 0:
            return Document.Created(  # type: ignore[call-arg]
                originator_id=key.aggregate_id, originator_version=1, timestamp=now,
                originator_topic=DOCUMENT_TOPIC, resource=key.resource, scope=scope,
                content=content, content_type=content_type, etag=etag)
        return Document.Written(  # type: ignore[call-arg]
            originator_id=key.aggregate_id, originator_version=version + 1, timestamp=now,
            content=content, content_type=content_type, etag=etag, operation=operation)
