"""Domain aggregates and their events: what the log records."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic


class StoredStatement(Aggregate):
    """One accepted xAPI statement; its id is the statement id, so a duplicate cannot be saved."""

    class Stored(Aggregate.Created):
        statement: dict[str, Any]
        credential: str

    @event(Stored)
    def __init__(self, id: UUID, statement: dict[str, Any], credential: str) -> None:
        self.statement = statement
        self.credential = credential

    @classmethod
    def stored(cls, id: UUID, statement: dict[str, Any], credential: str,
               timestamp: datetime) -> StoredStatement.Stored:
        """The event that creates the aggregate, built directly: ingest makes thousands a second."""
        # The library makes event classes dataclasses at run time; mypy cannot see their fields.
        return cls.Stored(  # type: ignore[call-arg]
            originator_id=id, originator_version=1, timestamp=timestamp,
            originator_topic=_STORED_STATEMENT_TOPIC, statement=statement, credential=credential,
        )


_STORED_STATEMENT_TOPIC = get_topic(StoredStatement)


_CREDENTIAL_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrs:credential")


def credential_id(key: str) -> UUID:
    return uuid5(_CREDENTIAL_NAMESPACE, key)


class Credential(Aggregate):
    """An HTTP Basic credential: a public key, a hashed secret and the xAPI scopes it grants."""

    class Issued(Aggregate.Created):
        name: str
        key: str
        secret_hash: str
        scopes: list[str]

    @event(Issued)
    def __init__(self, id: UUID, name: str, key: str, secret_hash: str, scopes: list[str]) -> None:
        self.name = name
        self.key = key
        self.secret_hash = secret_hash
        self.scopes = scopes
        self.revoked = False
        # What a teacher or learner credential is bound to: set by a Bound event after Issued
        # or Reissued (older credentials have none, and no teacher or learner scope).
        self.classes: list[str] = []
        self.learner: str | None = None
        # Which store the credential belongs to, set by a Placed event after Issued (credentials
        # issued before stores existed have none, and belong to `default`), and the stores a
        # district's credential may also read.
        self.store = "default"
        self.reads_stores: list[str] = []

    @event("Placed")
    def place(self, store: str, reads_stores: list[str]) -> None:
        self.store = store
        self.reads_stores = reads_stores

    @event("Bound")
    def bind(self, classes: list[str], learner: str | None) -> None:
        self.classes = classes
        self.learner = learner

    @event("Revoked")
    def revoke(self) -> None:
        self.revoked = True

    @event("Reissued")
    def reissue(self, secret_hash: str, scopes: list[str]) -> None:
        self.secret_hash = secret_hash
        self.scopes = scopes
        self.revoked = False
        self.classes = []
        self.learner = None


_STORE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrs:store")


def store_id(name: str) -> UUID:
    return uuid5(_STORE_NAMESPACE, name)


class Store(Aggregate):
    """A store of this deployment: a school's (or a sandbox's) own LRS, with its own log, views
    and attachments. The catalogue of stores is kept in the `default` store's log."""

    class Created(Aggregate.Created):
        name: str

    @event(Created)
    def __init__(self, id: UUID, name: str) -> None:
        self.name = name
        self.archived = False

    @event("Archived")
    def archive(self) -> None:
        self.archived = True


class Document(Aggregate):
    """One State, Activity Profile or Agent Profile document, with its whole history.

    Events carry the document as it stands after the change, so the log can be replayed and
    audited without the merge rules, and the aggregate's version gives optimistic concurrency.
    """

    class Created(Aggregate.Created):
        resource: str
        scope: dict[str, str]
        content: bytes
        content_type: str
        etag: str

    class Written(Aggregate.Event):
        content: bytes
        content_type: str
        etag: str
        operation: str

    class Deleted(Aggregate.Event):
        pass

    @event(Created)
    def __init__(self, id: UUID, resource: str, scope: dict[str, str], content: bytes,
                 content_type: str, etag: str) -> None:
        self.resource = resource
        self.scope = scope
        self.content: bytes | None = content
        self.content_type = content_type
        self.etag = etag

    @event(Written)
    def write(self, content: bytes, content_type: str, etag: str, operation: str) -> None:
        self.content = content
        self.content_type = content_type
        self.etag = etag

    @event(Deleted)
    def delete(self) -> None:
        self.content = None


DOCUMENT_TOPIC = get_topic(Document)


class AlignmentSet(Aggregate):
    """Activities aligned to competencies (and BKT parameters per competency), as loaded.

    Alignments are events so that mastery stays a pure function of the log: a later load of the
    same activity wins from its position on.
    """

    class Loaded(Aggregate.Created):
        framework: str
        alignments: list[list[str]]  # [activity IRI, competency id]
        parameters: dict[str, dict[str, float]]

    @event(Loaded)
    def __init__(self, framework: str, alignments: list[list[str]],
                 parameters: dict[str, dict[str, float]]) -> None:
        self.framework = framework
        self.alignments = alignments
        self.parameters = parameters


class ParameterFit(Aggregate):
    """BKT parameters estimated from the log (`lrs mastery fit`). Like parameters in a load, the
    latest for a competency wins from its position on, so the views stay a function of the log."""

    class Fitted(Aggregate.Created):
        method: str  # how they were estimated, e.g. "EM (Baum-Welch)"
        through_position: int  # the log position the fit read up to
        # competency -> {prior, learn, guess, slip, items: {kind: {guess, slip}}}
        parameters: dict[str, dict[str, Any]]
        # competency -> {learners, observations, iterations, log_likelihood, ...}
        statistics: dict[str, dict[str, float]]

    @event(Fitted)
    def __init__(self, method: str, through_position: int, parameters: dict[str, dict[str, Any]],
                 statistics: dict[str, dict[str, float]]) -> None:
        self.method = method
        self.through_position = through_position
        self.parameters = parameters
        self.statistics = statistics


class Roster(Aggregate):
    """Which class each learner is in, as a school's roster says; the latest load wins."""

    class Loaded(Aggregate.Created):
        # [learner IFI key, class id] or [learner IFI key, class id, org]: the org is optional.
        entries: list[list[str]]

    @event(Loaded)
    def __init__(self, entries: list[list[str]]) -> None:
        self.entries = entries


class LearnerErasure(Aggregate):
    """A learner forgotten: their keys were deleted, so their sealed events no longer read.

    Names the learner only by the key table's pseudonym, never by an identity."""

    class LearnerErased(Aggregate.Created):
        pseudonym: str
        by: str  # the credential key (or "cli") that asked

    @event(LearnerErased)
    def __init__(self, pseudonym: str, by: str) -> None:
        self.pseudonym = pseudonym
        self.by = by


class Retention(Aggregate):
    """Statements stored before a day forgotten: their day keys were deleted."""

    class RetentionApplied(Aggregate.Created):
        before: str  # a UTC date, YYYY-MM-DD
        by: str

    @event(RetentionApplied)
    def __init__(self, before: str, by: str) -> None:
        self.before = before
        self.by = by
