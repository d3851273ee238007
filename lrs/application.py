"""The LRS application: the one place where events are appended to the log."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, Transcoder

from ingest.enrich import format_stored
from lrs.config import MAX_WRITE_STATEMENTS
from lrs.credentials import CredentialCommands
from lrs.document_commands import DocumentCommands
from lrs.domain import (
    AlignmentSet,
    LearnerErasure,
    ParameterFit,
    Retention,
    Roster,
)
from lrs.errors import BadRequest, Conflict, Forbidden, NotFound, StoreRefused
from lrs.key_ring import KeyRing
from lrs.sealing import SEALED, SEALED_MARK, is_sealed, needed_keys, open_body, unseal
from lrs.statement_events import PreparedStatement, StatementEventEncoder, seal_ahead
from lrs.store.erasure import ErasedRows, ErasureSQL
from lrs.store.index import ExistingStatements, IndexedStatement, StatementIndexReads, StatementQuery
from lrs.store.learner_key_reads import LearnerKeyReads
from lrs.store.learner_keys import KeyGenerationChanged, LearnerKey
from lrs.transcoder import OrjsonTranscoder
from projections.bkt import parameters_from
from schemas.actor import IFI_PROPERTIES, Agent, Group, ifi_key
from schemas.compare import same_statement

log = logging.getLogger(__name__)

COLLISION_RETRIES = 20
# How stale a worker's idea of the erasure generation may get: until it reads the new one, the
# writer seals that worker's statements again itself (correct, only slower).
KEY_GENERATION_MAX_AGE = 1.0
# The store could not be reached: a batch is not at fault, so none is singled out.
UNAVAILABLE = (InterfaceError, OperationalError)


class LearningRecordStore(CredentialCommands, DocumentCommands):
    """Statements, documents and credentials, kept as events in one append-only log.

    Each aggregate's use cases live beside it (lrs/credentials.py, lrs/document_commands.py);
    statements, alignments and rosters are here."""

    name = "lrs"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statement_events = StatementEventEncoder(self.mapper)
        # LRS_SEAL_STATEMENTS=false writes statements in plaintext (they cannot then be erased):
        # for measuring what sealing costs, not for a deployment.
        self.seal_statements = str(self.env.get("LRS_SEAL_STATEMENTS", "true")).lower() not in (
            "false", "0", "no", "off")
        self.key_ring = KeyRing(lambda: self.keys.key_ring(), lambda: self.keys.key_generation(),
                                lambda: self.index.index.forget_key_hashes())

    def construct_transcoder(self) -> Transcoder:
        """Encode event state with orjson."""
        return OrjsonTranscoder()

    @property
    def index(self) -> StatementIndexReads:
        return cast(StatementIndexReads, self.recorder)

    @property
    def keys(self) -> LearnerKeyReads:
        return cast(LearnerKeyReads, self.recorder)

    def open_statements(self, statements: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Statements as the log holds them, unsealed; None where the learner was erased."""
        keys = self.keys.learner_keys(needed_keys(statements))
        return [unseal(s, keys) for s in statements]

    def open_statement_states(self, states: Sequence[bytes]) -> list[bytes | None]:
        """Statement event states as ``{"statement": ...}`` JSON with the statement unsealed,
        for readers that page the log raw; None where the learner was erased."""
        plain = self.plain_states
        envelopes: list[dict[str, Any] | None] = []
        for state in states:
            if plain and SEALED_MARK not in state:
                envelopes.append(None)  # written before sealing: used as it is
            else:
                envelopes.append(self.decode_state(state)["statement"])
        keys = self.keys.learner_keys(needed_keys(e for e in envelopes if e is not None))
        opened: list[bytes | None] = []
        for state, envelope in zip(states, envelopes, strict=True):
            if envelope is None:
                opened.append(state)
            elif not is_sealed(envelope):
                opened.append(orjson.dumps({"statement": envelope}))
            elif not envelope[SEALED][3]:  # no other agent inside: the body is the statement
                body = open_body(envelope, keys)
                opened.append(None if body is None else b'{"statement":' + body + b"}")
            else:
                statement = unseal(envelope, keys)
                opened.append(None if statement is None else orjson.dumps({"statement": statement}))
        return opened

    @property
    def plain_states(self) -> bool:
        """Event states are stored as plain JSON (no cipher, no compression)."""
        return self.mapper.cipher is None and self.mapper.compressor is None

    def decode_state(self, state: bytes) -> dict[str, Any]:
        """An event's attributes from its stored state, for readers that page the log raw."""
        if self.mapper.cipher is not None:
            state = self.mapper.cipher.decrypt(state)
        if self.mapper.compressor is not None:
            state = self.mapper.compressor.decompress(state)
        decoded: dict[str, Any] = self.mapper.transcoder.decode(state)
        return decoded

    # --- statements ------------------------------------------------------------------------

    def store_batches(
        self, batches: Sequence[Sequence[PreparedStatement]], now: datetime | None = None
    ) -> list[list[str] | Exception]:
        """Append several requests' batches in one write, or in several of at most
        MAX_WRITE_STATEMENTS statements each when they hold more (a Kafka poll of many small
        statements); each batch is all or nothing.

        Returns, per batch, the ids of its statements or the error that rejected it.
        """
        now = now or datetime.now(UTC)
        outcomes: list[list[str] | Exception] = []
        for write in _writes(batches):
            outcomes += self._store_write(write, now)
        return outcomes

    def _store_write(self, batches: Sequence[Sequence[PreparedStatement]],
                     now: datetime) -> list[list[str] | Exception]:
        stored = format_stored(now)
        try:
            outcomes, new = self._check_batches(batches)
            self._append(new, stored, now, _carried(batches, outcomes))
            return outcomes
        except UNAVAILABLE:
            raise  # the store itself is down: every batch hears it, and may be sent again
        except Exception:
            # Another writer stored one of these ids meanwhile (IntegrityError), or one batch holds
            # something the store refused: the write rolled back whole, so each batch is decided
            # again on its own, and only the batch that fails alone fails.
            return [self._store_isolated(batch, stored, now) for batch in batches]

    def _store_isolated(self, batch: Sequence[PreparedStatement], stored: str,
                        now: datetime) -> list[str] | Exception:
        try:
            return self._store_alone(batch, stored, now)
        except UNAVAILABLE:
            raise
        except StoreRefused as exc:
            log.error("%s", exc)
            return exc
        except Exception as exc:
            log.exception("the event store refused a batch")
            return StoreRefused(f"the event store refused this batch ({type(exc).__name__}: {exc});"
                                " nothing of it was stored")

    def _store_alone(self, batch: Sequence[PreparedStatement], stored: str,
                     now: datetime) -> list[str] | Exception:
        """Check and append one batch, checking again while other writers keep storing some of
        its ids first (two ingesters reading the same messages across a rebalance): each round
        sees their commits, so the same content becomes a duplicate, never a conflict."""
        tried: set[str] | None = None
        for _ in range(COLLISION_RETRIES):
            outcome, new = self._check_batches([batch])
            if isinstance(outcome[0], Exception):
                return outcome[0]
            try:
                self._append(new, stored, now, _carried([batch], outcome))
                return outcome[0]
            except IntegrityError as exc:
                ids = {p.statement_id for p in new}
                if ids == tried:  # nobody stored any of them meanwhile: not a collision
                    erased = self._erased_ids(ids)
                    if erased:
                        return Conflict(
                            f"statement {erased[0]} names a statement whose learner was erased;"
                            " a statement id names one statement, so it is not used again")
                    raise StoreRefused(f"the event store refused this batch ({exc});"
                                       " nothing of it was stored") from exc
                tried = ids
        return Conflict("statement ids in this batch kept being stored by other writers at the"
                        " same time; retry to compare")

    def _erased_ids(self, ids: set[str]) -> list[str]:
        """Ids the log holds an event of but the index does not: an erased learner's statements
        (their events stay, sealed under keys that are gone). Read only when an append was
        refused twice for the same ids."""
        return [i for i in sorted(ids) if self.recorder.select_events(UUID(i), limit=1)]

    def _check_batches(
        self, batches: Sequence[Sequence[PreparedStatement]]
    ) -> tuple[list[list[str] | Exception], list[PreparedStatement]]:
        wanted = {p.statement_id for b in batches for p in b}
        wanted |= {p.voids for b in batches for p in b if p.voids}
        existing = self.index.existing_statements(wanted)
        ids = list(existing.events)
        opened = self.open_statements([self._raw_statement(existing.events[sid]) for sid in ids])
        stored_docs = {sid: doc for sid, doc in zip(ids, opened, strict=True) if doc is not None}
        accepted: dict[str, PreparedStatement] = {}
        outcomes: list[list[str] | Exception] = []
        for batch in batches:
            try:
                fresh = self._check_batch(batch, stored_docs, existing, accepted)
            except (Conflict, BadRequest, Forbidden) as exc:
                outcomes.append(exc)
                continue
            accepted.update(fresh)
            outcomes.append([p.statement_id for p in batch])
        return outcomes, list(accepted.values())

    @staticmethod
    def _check_batch(
        batch: Sequence[PreparedStatement], stored_docs: dict[str, dict[str, Any]],
        existing: ExistingStatements, accepted: dict[str, PreparedStatement],
    ) -> dict[str, PreparedStatement]:
        fresh: dict[str, PreparedStatement] = {}
        for p in batch:
            earlier = stored_docs.get(p.statement_id)
            if earlier is None:
                pending = fresh.get(p.statement_id) or accepted.get(p.statement_id)
                earlier = pending.document() if pending is not None else None
            if earlier is not None:
                if not same_statement(earlier, p.document()):
                    raise Conflict(f"statement {p.statement_id} is already stored with different"
                                   " content (a statement id names one statement)")
                continue
            target = p.voids
            if target is not None:
                pending = fresh.get(target) or accepted.get(target)
                owner = pending.credential if pending is not None else existing.credentials.get(target)
                # Whose it is before what it is: one answer whether another's target exists or
                # not, and whether it is a voiding statement or not; a 403 must not tell which.
                if owner != p.credential and not p.can_void_any:
                    raise Forbidden(
                        f"statement {p.statement_id} voids {target}, which this credential did not"
                        " store; only a credential with scope all may void it (Data 2.3.2)")
                if target in existing.voiding or (pending is not None and pending.voids):
                    raise BadRequest(f"statement {p.statement_id} voids {target}, which is itself"
                                     " a voiding statement; voiding statements cannot be voided")
            fresh[p.statement_id] = p
        return fresh

    def _append(self, statements: Sequence[PreparedStatement], stored: str, now: datetime,
                carried: Sequence[tuple[str, LearnerKey]] = ()) -> None:
        """``carried``: the keys accepted requests were sealed ahead under, duplicates' too
        (the request's process keeps them once acknowledged), written whatever else is."""
        if not statements and not carried:
            return
        # New aggregates only, so the events go straight to the recorder in one write (the event
        # store's put would also build a recording per event, which nothing here reads).
        rows = [p.row for p in statements]
        if not self.seal_statements:
            self.recorder.insert_events(self.statement_events.events(list(statements), stored, now),
                                        statement_index=rows, stored=stored)
            return
        for _ in range(COLLISION_RETRIES):
            batch = self.key_ring.batch(stored[:10])
            batch.carry(carried)
            events = self.statement_events.events(list(statements), stored, now, batch)
            try:
                self.recorder.insert_events(events, statement_index=rows, stored=stored,
                                            learner_keys=batch.keys_to_write(),
                                            key_generation=batch.generation)
            except KeyGenerationChanged:
                self.key_ring.reload()  # a learner was erased meanwhile: seal again, under keys
                continue  # that exist
            self.key_ring.committed(batch)
            return
        raise StoreRefused("learners kept being erased while this batch was written; retry")

    def work_ahead(self, statements: list[PreparedStatement],
                   on_loop: bool = False) -> list[PreparedStatement]:
        """What the write needs that can be done where the request is read, done there: in
        `lrs serve --workers N` by several processes at once instead of the single writer. The
        index keys hashed; the statements sealed (lrs/statement_events.py).

        ``on_loop``: called on a request's event loop, which never reads the store (see
        ``work_ahead_reads``). A generation that came due since the caller looked is read by a
        later request, in a thread; meanwhile the writer seals again what a newer one needs."""
        if not statements:
            return statements
        index = self.index.index
        if not self.seal_statements:
            return [p.worked_ahead(index.hashed_ahead(p.row), p.sealed) for p in statements]
        if not on_loop:
            self.key_ring.refresh(KEY_GENERATION_MAX_AGE)
        sealed = seal_ahead(statements, self.key_ring.batch(format_stored(datetime.now(UTC))[:10]))
        return [p.worked_ahead(index.hashed_ahead(p.row), s)
                for p, s in zip(statements, sealed, strict=True)]

    def work_ahead_reads(self) -> bool:
        """Whether ``work_ahead`` would now read the store: a worker's loop hands it to a
        thread then (lrs/request_loop.py). It reads the erasure generation once a second, and
        the keys again after an erasure, in a write transaction that waits its turn behind the
        writer's (SQLite) or over a network (PostgreSQL)."""
        return self.seal_statements and self.key_ring.due(KEY_GENERATION_MAX_AGE)

    def sealed_ahead_stored(self, statements: Sequence[PreparedStatement]) -> None:
        """Their write was acknowledged, so the keys they were sealed under ahead are stored
        (the writer writes them even for duplicates): this process's later requests use them."""
        sealed = [p.sealed for p in statements if p.sealed is not None]
        if sealed:
            self.key_ring.remember(sealed[0].generation, sealed[0].day,
                                   [pair for s in sealed for pair in s.keys])

    def _raw_statement(self, stored_event: Any) -> dict[str, Any]:
        event = self.mapper.to_domain_event(stored_event)
        return cast(dict[str, Any], event.statement)  # type: ignore[attr-defined]

    def _statement_of(self, stored_event: Any) -> dict[str, Any] | None:
        return self.open_statements([self._raw_statement(stored_event)])[0]

    def statement(self, statement_id: str, *, voided: bool = False,
                  credential: str | None = None) -> tuple[dict[str, Any], str]:
        """One statement by id, with its stored time; voided ones only when asked for."""
        found = self.index.statement(statement_id, voided=voided, credential=credential)
        statement = None if found is None else self._statement_of(found.event)
        if found is None or statement is None:
            raise NotFound(f"no {'voided ' if voided else ''}statement with id {statement_id}")
        return statement, found.stored

    def statements(self, query: StatementQuery) -> list[tuple[IndexedStatement, dict[str, Any]]]:
        hits = self.index.statements(query)
        opened = self.open_statements([self._raw_statement(hit.event) for hit in hits])
        return [(hit, doc) for hit, doc in zip(hits, opened, strict=True) if doc is not None]

    def last_statement_seq(self) -> int:
        return self.index.max_statement_seq()

    def activity(self, activity_id: str) -> dict[str, Any]:
        """The canonical Activity object (Communication 2.5)."""
        definition = self.index.activity_definition(activity_id)
        if definition is None:
            raise NotFound(f"no statement has mentioned activity {activity_id}")
        activity: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
        if definition:
            activity["definition"] = definition
        return activity

    def person(self, actor: Agent | Group) -> dict[str, Any]:
        """The Person object: what this LRS knows of the agent (Communication 2.6)."""
        ifi = ifi_key(actor)
        person: dict[str, Any] = {"objectType": "Person"}
        names = self.index.agent_names(ifi) if ifi else []
        if names:
            person["name"] = names
        for prop in IFI_PROPERTIES:
            value = getattr(actor, prop)
            if value is not None:
                person[prop] = [value.model_dump() if prop == "account" else value]
        return person

    # --- erasure ------------------------------------------------------------------------------

    @property
    def _erasure(self) -> ErasureSQL:
        return cast(ErasureSQL, self.recorder.erasure)  # type: ignore[attr-defined]

    def erase_learner(self, learner: str, by: str) -> tuple[str, ErasedRows]:
        """Forget a learner (an IFI key): a LearnerErased event and the deletion of their keys,
        index rows, agent names and documents, in one transaction. Returns their pseudonym and
        what was deleted."""
        pseudonym = self.key_ring.pseudonym(learner)
        erased: list[ErasedRows] = []
        self.save(LearnerErasure(pseudonym=pseudonym, by=by), also=lambda c: erased.append(
            self._erasure.forget(c, learner, pseudonym, self.decode_state)))
        self.key_ring.reload()
        return pseudonym, erased[0]

    def apply_retention(self, before: str, by: str) -> ErasedRows:
        """Forget every statement stored before a UTC day (YYYY-MM-DD): a RetentionApplied event
        and the deletion of those days' keys and the statements' index rows, in one transaction."""
        erased: list[ErasedRows] = []
        self.save(Retention(before=before, by=by),
                  also=lambda c: erased.append(self._erasure.retain_from(c, before)))
        self.key_ring.reload()
        return erased[0]

    def retention_preview(self, before: str) -> tuple[int, int]:
        """(statements, learners) a retention before the day would forget; changes nothing."""
        with self.recorder._read_transaction() as c:  # type: ignore[attr-defined]
            return self._erasure.statements_before(c, before)

    def went_quiet(self) -> None:
        """Nothing was written for a while: a SQLite store cuts its WAL file back (what the WAL
        holds goes into the database); PostgreSQL's WAL is its server's."""
        self.recorder.cut_back_wal()  # type: ignore[attr-defined]

    def scrub(self) -> str:
        """Make what erasures deleted leave the database's files; says what it did."""
        return str(self.recorder.scrub())  # type: ignore[attr-defined]

    # --- alignments ---------------------------------------------------------------------------

    def load_alignments(self, framework: str, alignments: Sequence[tuple[str, str]],
                        parameters: dict[str, dict[str, Any]]) -> int:
        """Record activity-to-competency alignments (and BKT parameters) as one event."""
        if not alignments and not parameters:
            raise BadRequest("the alignment file holds no alignments and no parameters")
        # BadRequest names the competency and the rule; recorded as numbers, with every item kind.
        checked = {c: parameters_from(c, values).to_event() for c, values in parameters.items()}
        self.save(AlignmentSet(framework=framework, alignments=[list(a) for a in alignments],
                               parameters=checked))
        return len(alignments)

    def record_parameter_fit(self, method: str, through_position: int,
                             parameters: dict[str, dict[str, Any]],
                             statistics: dict[str, dict[str, float]]) -> None:
        """Record fitted BKT parameters as one event; they follow the same rules as a load."""
        if not parameters:
            raise BadRequest("the fit holds no parameters")
        checked = {c: parameters_from(c, values).to_event() for c, values in parameters.items()}
        self.save(ParameterFit(method=method, through_position=through_position,
                               parameters=checked, statistics=statistics))

    def load_roster(self, entries: Sequence[tuple[str, ...]]) -> int:
        """Record learner-to-class assignments (and each class's org, where given) as one event."""
        if not entries:
            raise BadRequest("the roster file holds no learners")
        self.save(Roster(entries=[list(e) for e in entries]))
        return len(entries)


def _carried(batches: Sequence[Sequence[PreparedStatement]],
             outcomes: Sequence[list[str] | Exception]) -> list[tuple[str, LearnerKey]]:
    return [pair for batch, outcome in zip(batches, outcomes, strict=True)
            if not isinstance(outcome, Exception)
            for p in batch if p.sealed is not None for pair in p.sealed.keys]


def _writes(batches: Sequence[Sequence[PreparedStatement]]) -> list[list[Sequence[PreparedStatement]]]:
    """Consecutive batches, as many as fit in MAX_WRITE_STATEMENTS (a larger batch alone)."""
    writes: list[list[Sequence[PreparedStatement]]] = []
    count = 0
    for batch in batches:
        if not writes or (writes[-1] and count + len(batch) > MAX_WRITE_STATEMENTS):
            writes.append([])
            count = 0
        writes[-1].append(batch)
        count += len(batch)
    return writes
