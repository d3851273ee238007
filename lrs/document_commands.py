"""State, Activity Profile and Agent Profile documents: each write or delete is an event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent

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
from lrs.key_ring import KeyBatch, KeyRing
from lrs.request_loop import answered, fits_inline, on_loop_if
from lrs.sealing import open_bytes, seal_bytes, seal_text, sealed_key_id
from lrs.store.documents import DocumentChange, DocumentFilter, DocumentViewReads
from lrs.store.learner_key_reads import LearnerKeyReads
from lrs.store.learner_keys import KeyGenerationChanged

_T = TypeVar("_T")


class DocumentCommands(Application[UUID]):
    """The document use cases of the LRS application.

    A document scoped to an agent (State, Agent Profile) is recorded in the log with its content
    and agent sealed under that agent's key, like their statements: forgetting the agent makes
    the log's copies unreadable, and deletes the current state the reads are served from."""

    key_ring: KeyRing
    seal_statements: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.document_writes: DocumentWriter = DocumentWrites(self.recorder)

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

        The writer's answer is awaited on the request's loop, where a thread of the pool was
        held for the length of the commit; the read, the checks and the sealing run there too
        when they are small and local (``_on_loop``)."""
        for _ in range(3):
            write = await self._on_loop(
                len(content) if not merge else None, self._prepared_write, key, content,
                content_type, merge, conditions, must_be_conditional, new_must_be_conditional)
            try:
                return await self._written(write)
            except IntegrityError as exc:
                _, now = await self._on_loop(0, self.document_view.document, key)
                if now == write.version:  # nobody wrote it meanwhile
                    raise StoreRefused(f"the event store refused this document write ({exc});"
                                       " nothing of it was stored") from exc
                if conditions.given:
                    raise PreconditionFailed("the document changed while this request was being"
                                             " handled; fetch it again and retry") from None
        raise Conflict("the document is being changed by other requests; retry")

    async def read_document(self, key: DocumentKey) -> StoredDocument:
        """One document by its key, for a request's loop (``_on_loop``)."""
        return await self._on_loop(0, self.document, key)

    async def _on_loop(self, body_bytes: int | None, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on the calling loop when its read is local (SQLite) and its body small
        (None: unknown, as a merge's stored document), else in a thread (lrs/request_loop.py)."""
        inline = self.document_view.reads_are_local and fits_inline(body_bytes)
        return await on_loop_if(inline, fn, *args)

    def delete_documents(self, documents: Sequence[StoredDocument], conditions: Preconditions) -> None:
        """Delete each document as an event of its own, all in one write."""
        now = datetime.now(UTC)
        events, changes = [], []
        for doc in documents:
            check_preconditions(doc, conditions, must_be_conditional=False)
            doc_uuid = doc.key.aggregate_id
            events.append(self.mapper.to_stored_event(Document.Deleted(
                originator_id=doc_uuid, originator_version=doc.version + 1, timestamp=now)))
            changes.append(DocumentChange.of(doc.key, None, doc.content_type, doc.etag,
                                             format_stored(now), doc.version + 1, doc_uuid))
        if events:
            try:
                self.document_writes.put(events, changes)
            except IntegrityError:
                raise PreconditionFailed("a document changed while it was being deleted;"
                                         " fetch it again and retry") from None

    def _prepared_write(self, key: DocumentKey, content: bytes, content_type: str, merge: bool,
                        conditions: Preconditions, must_be_conditional: bool,
                        new_must_be_conditional: bool) -> _DocumentWrite:
        existing, version = self.document_view.document(key)
        check_preconditions(existing, conditions, must_be_conditional and not merge,
                            new_must_be_conditional and not merge)
        if not merge:
            check_json_document(content, content_type)
        body = merge_documents(existing, content, content_type) if merge else content
        return self._sealed(_DocumentWrite(key, body, JSON_TYPE if merge else content_type,
                                           version, "post" if merge else "put"))

    def _sealed(self, write: _DocumentWrite) -> _DocumentWrite:
        """The write's event, its content and agent sealed under the agent's key when it has one."""
        key, content, version = write.key, write.content, write.version
        doc_uuid = key.aggregate_id
        etag = etag_of(content)
        write.stored = StoredDocument(key, content, write.content_type, etag,
                                      format_stored(write.now), version + 1)
        write.changes = [DocumentChange.of(key, content, write.content_type, etag,
                                           write.stored.updated, version + 1, doc_uuid)]
        if key.agent is None or not self.seal_statements:
            write.events = [self._document_event(doc_uuid, key, content, key.scope(),
                                                 write.content_type, etag, version,
                                                 write.operation, write.now)]
            return write
        batch = write.batch = self.key_ring.batch(write.stored.updated[:10])
        sealing = batch.key_of(key.agent)
        scope = dict(key.scope(), agent=seal_text(sealing, key.agent))
        write.events = [self._document_event(doc_uuid, key, seal_bytes(sealing, content), scope,
                                             write.content_type, etag, version, write.operation,
                                             write.now)]
        return write

    def _sealed_again(self, write: _DocumentWrite) -> _DocumentWrite:
        self.key_ring.reload()  # a learner was erased meanwhile: every cached key may be gone
        return self._sealed(write)

    async def _written(self, write: _DocumentWrite) -> StoredDocument:
        for _ in range(20):
            batch = write.batch
            keys, generation = ((), None) if batch is None else (list(batch.new.values()),
                                                                 batch.generation)
            try:
                await answered(self.document_writes.submit(
                    write.events, write.changes, keys, generation))
            except KeyGenerationChanged:
                write = await self._on_loop(len(write.content), self._sealed_again, write)
                continue
            if batch is not None:
                self.key_ring.committed(batch)
            assert write.stored is not None  # set by _sealed
            return write.stored
        raise StoreRefused("learners kept being erased while this document was written; retry")

    def _document_event(self, doc_uuid: UUID, key: DocumentKey, content: bytes,
                        scope: dict[str, str], content_type: str, etag: str, version: int,
                        operation: str, now: datetime) -> StoredEvent:
        """Mapped here, where the request is read: the single writer only writes it."""
        if version == 0:
            return self.mapper.to_stored_event(Document.Created(  # type: ignore[call-arg]
                originator_id=doc_uuid, originator_version=1, timestamp=now,
                originator_topic=DOCUMENT_TOPIC, resource=key.resource, scope=scope,
                content=content, content_type=content_type, etag=etag))
        return self.mapper.to_stored_event(Document.Written(  # type: ignore[call-arg]
            originator_id=doc_uuid, originator_version=version + 1, timestamp=now,
            content=content, content_type=content_type, etag=etag, operation=operation))


@dataclass(slots=True)
class _DocumentWrite:
    """One request's document write, as it goes to the writer."""

    key: DocumentKey
    content: bytes
    content_type: str
    version: int  # the version it replaces (0: a new document)
    operation: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[StoredEvent] = field(default_factory=list)
    changes: list[DocumentChange] = field(default_factory=list)
    batch: KeyBatch | None = None
    stored: StoredDocument | None = None
