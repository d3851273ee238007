"""The objects a running LRS is made of, built at start-up and shared by the routes.

Each store (a school's own LRS inside the deployment) has services of its own: its log, its
committer, its attachments, its views and its key for `more` links. The `default` store's are
built at start-up; another store's on the first request of one of its credentials. Routes get
the caller's store's services from the credential (lrs/api/deps.py), so a credential reaches
its own store's data and no other by construction.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lrs.api.statement_params import MoreTokens, more_key
from lrs.application import LearningRecordStore
from lrs.auth import Authenticator, CredentialChanges, Principal
from lrs.committer import GroupCommitter, InFlightBoard
from lrs.config import DEFAULT_STORE, Settings
from lrs.errors import Forbidden, NotFound
from lrs.request_loop import answered
from lrs.statement_events import PreparedStatement
from lrs.store.attachments import AttachmentStore, attachment_store
from lrs.views_process import PIPE_WAIT, ViewsProcess, ViewsUnavailable

if TYPE_CHECKING:
    from lrs.api.links import ParentLink

# How long a store's archived-or-not is trusted: archiving through the server takes effect at
# once (it bumps the credential changes), through the CLI within this time, as a revocation.
CATALOGUE_TTL = 30.0
# How long a worker waits for the parent's Consistent-Through: it may first open the store.
CONSISTENT_WAIT = PIPE_WAIT + 30


class Committer(Protocol):
    """Appends prepared statements: the group committer, or a worker's link to the parent's."""

    def submit(self, batch: Sequence[PreparedStatement]) -> Future[list[str]]: ...
    def store(self, batch: Sequence[PreparedStatement]) -> list[str]: ...
    def consistent_through(self) -> str: ...
    def consistent_through_later(self) -> Future[str]: ...
    def close(self) -> None: ...

    @property
    def consistency_in_memory(self) -> bool:
        """Whether consistent_through() reads memory (else it asks another process)."""


async def consistent_through(committer: Committer) -> str:
    """The committer's Consistent-Through. A worker's non-default store asks the parent (which
    may first have to open the store); the answer is awaited on the loop: a thread to wait in
    cost each request to such a store a fifth of its throughput at batch 1."""
    if not committer.consistency_in_memory:
        try:
            return await asyncio.wait_for(
                answered(committer.consistent_through_later()), CONSISTENT_WAIT)
        except TimeoutError:
            raise ViewsUnavailable(f"the store's writer did not answer within {CONSISTENT_WAIT:.0f}"
                                   " s; retry shortly") from None
    return committer.consistent_through()


@dataclass
class StoreServices:
    """One store's services: ``settings`` are the store's own (lrs.config.Settings.for_store)."""

    settings: Settings
    store: LearningRecordStore
    committer: Committer
    authenticator: Authenticator
    attachments: AttachmentStore
    more_links: MoreTokens
    views: ViewsProcess | None = None

    @property
    def name(self) -> str:
        return self.settings.store

    def start_projections(self) -> None:
        """The embedded default: the runner follows the log in a child process of this one."""
        self.views = ViewsProcess(self.settings)

    @property
    def attachments_tmp(self) -> Path:
        """Where incoming parts are written while a request is read."""
        path = self.settings.store_dir / "attachments" / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        if self.views is not None:
            self.views.close()
        self.committer.close()
        self.store.close()
        self.attachments.close()


def more_tokens(settings: Settings) -> MoreTokens:
    """A store's key for `more` links: the server key for `default` (today's links stay valid),
    derived from it and the store's name for another, so one store's link fails in another."""
    key = more_key(settings.secret_key, settings.data_dir)
    if not settings.is_default_store:
        key = key + b"\0store\0" + settings.store.encode()
    return MoreTokens(key, settings.max_page_statements)


def _open_store(settings: Settings, authenticator: Authenticator,
                board: InFlightBoard) -> StoreServices:
    store = LearningRecordStore(env=settings.event_store_env())
    services = StoreServices(
        settings=settings, store=store,
        committer=GroupCommitter(store, in_flight=board.for_store(settings.store)),
        authenticator=authenticator,
        attachments=attachment_store(settings.attachment_store, settings.store_dir, settings.store),
        more_links=more_tokens(settings))
    if settings.projections == "embedded":
        services.start_projections()
    return services


@dataclass
class Services(StoreServices):
    """The `default` store's services (its log also holds the catalogue of stores and every
    credential), and the registry of every other store's, opened when first used."""

    opener: Callable[[Settings], StoreServices] | None = None
    # Each store's write under way, shared with `lrs serve`'s workers (lrs/api/workers.py).
    in_flight_board: InFlightBoard = field(default_factory=InFlightBoard)
    _stores: dict[str, StoreServices] = field(default_factory=dict)
    _archived: dict[str, tuple[float, bool]] = field(default_factory=dict)
    _changes_seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _opening: dict[str, threading.Lock] = field(default_factory=dict)  # one opening per store

    @classmethod
    def start(cls, settings: Settings) -> Services:
        settings = settings.for_store(DEFAULT_STORE)
        store = LearningRecordStore(env=settings.event_store_env())
        if settings.bootstrap_credential:
            key, _, secret = settings.bootstrap_credential.partition(":")
            store.ensure_credential(key, secret, ["all", "admin"], name="bootstrap")
        authenticator = Authenticator(store, settings.authority_home_page)
        board = InFlightBoard()
        services = cls(
            settings=settings,
            store=store,
            committer=GroupCommitter(store, in_flight=board.for_store(DEFAULT_STORE)),
            authenticator=authenticator,
            attachments=attachment_store(settings.attachment_store, settings.data_dir),
            more_links=more_tokens(settings),
            opener=lambda s: _open_store(s, authenticator, board),
            in_flight_board=board,
        )
        if settings.projections == "embedded":
            services.start_projections()
        return services

    @classmethod
    def for_worker(cls, settings: Settings, link: ParentLink, board: InFlightBoard,
                   changes: CredentialChanges) -> Services:
        """A worker of `lrs serve --workers N`: reads here; appends (statements and documents)
        and views through the parent (lrs/api/workers.py), each message naming its store."""
        from lrs.api.links import DocumentWritesLink, ViewsLink, WriterLink

        settings = settings.for_store(DEFAULT_STORE)
        store = LearningRecordStore(env=settings.event_store_env())
        store.write_documents_through(DocumentWritesLink(link, DEFAULT_STORE))
        authenticator = Authenticator(store, settings.authority_home_page, changes=changes)

        def open_linked(store_settings: Settings) -> StoreServices:
            store_app = LearningRecordStore(env=store_settings.event_store_env())
            store_app.write_documents_through(DocumentWritesLink(link, store_settings.store))
            return StoreServices(
                settings=store_settings, store=store_app,
                committer=WriterLink(link, None, store_settings.store, board),
                authenticator=authenticator,
                attachments=attachment_store(store_settings.attachment_store,
                                             store_settings.store_dir, store_settings.store),
                more_links=more_tokens(store_settings),
                views=(ViewsLink(store_settings, link)
                       if store_settings.projections == "embedded" else None))

        return cls(
            settings=settings,
            store=store,
            committer=WriterLink(link, board.for_store(DEFAULT_STORE), DEFAULT_STORE, board),
            authenticator=authenticator,
            attachments=attachment_store(settings.attachment_store, settings.data_dir),
            more_links=more_tokens(settings),
            views=ViewsLink(settings, link) if settings.projections == "embedded" else None,
            opener=open_linked,
            in_flight_board=board,
        )

    def of(self, principal: Principal) -> StoreServices:
        """The services of the caller's own store; 403 naming the rule if it is archived."""
        return self.named(principal.store)

    def named(self, name: str, *, archived: bool = False) -> StoreServices:
        """A store's services, opened on first use. An archived store's only when asked for
        (its data is kept read-only for an administrator's export)."""
        if name == DEFAULT_STORE:
            return self
        if not archived:
            self.require_active(name)
        with self._lock:
            opened = self._stores.get(name)
            if opened is not None:
                return opened
            opening = self._opening.setdefault(name, threading.Lock())
        # Opened outside the registry's lock: it takes seconds (a projections process starts),
        # and every other store's request, and the parent's pipe to each worker, reads it.
        with opening:
            with self._lock:
                opened = self._stores.get(name)
            if opened is None:
                assert self.opener is not None, "a store's services need an opener"
                opened = self.opener(self.settings.for_store(name))
                with self._lock:
                    self._stores[name] = opened
            return opened

    def require_active(self, name: str) -> None:
        """403 naming the rule if the store is archived: its credentials read and write
        nothing, a district's reads of the stores it was granted included."""
        if name != DEFAULT_STORE and self._is_archived(name):
            raise Forbidden(f"store '{name}' is archived: its credentials may no longer read or"
                            " write (its data is kept for an administrator's export)")

    def is_open(self, name: str) -> bool:
        with self._lock:
            return name == DEFAULT_STORE or name in self._stores

    def ready(self, name: str) -> StoreServices | None:
        """A store's services when handing them out reads nothing: open, and known active
        within the last CATALOGUE_TTL seconds. A request's loop takes them itself; None
        sends it to ``named`` in a thread (a catalogue read, an opening, or the 403)."""
        if name == DEFAULT_STORE:
            return self
        if not self.known_active(name):
            return None
        with self._lock:
            return self._stores.get(name)

    def known_active(self, name: str) -> bool:
        """Read as not archived in the last CATALOGUE_TTL seconds (False: not known)."""
        return name == DEFAULT_STORE or self._cached_archived(name) is False

    def _cached_archived(self, name: str) -> bool | None:
        """Whether the store is archived, as read in the last CATALOGUE_TTL seconds (None: not
        read since, or a store was archived through the server meanwhile)."""
        changes = self.authenticator.changes.count
        with self._lock:
            if changes != self._changes_seen:  # a store was archived through the server
                self._changes_seen = changes
                self._archived.clear()
            cached = self._archived.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def _is_archived(self, name: str) -> bool:
        cached = self._cached_archived(name)
        if cached is not None:
            return cached
        info = self.store.store_info(name)
        if info is None:  # a credential names only a store that exists: never reached by one
            raise NotFound(f"no store named '{name}'")
        with self._lock:
            self._archived[name] = (time.monotonic() + CATALOGUE_TTL, info.archived)
        return info.archived

    def opened(self) -> list[StoreServices]:
        """The stores whose services are open, `default` first."""
        with self._lock:
            return [self, *self._stores.values()]

    def close(self) -> None:
        with self._lock:
            openings = list(self._opening.values())
        for opening in openings:  # a store being opened is closed with the others
            with opening:
                pass
        with self._lock:
            others, self._stores = list(self._stores.values()), {}
        for services in others:
            services.close()
        super().close()
