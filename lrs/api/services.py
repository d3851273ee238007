"""The objects a running LRS is made of, built once at start-up and shared by the routes."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lrs.api.statement_params import MoreTokens, more_key
from lrs.application import LearningRecordStore
from lrs.auth import Authenticator, CredentialChanges
from lrs.committer import GroupCommitter
from lrs.config import Settings
from lrs.statement_events import PreparedStatement
from lrs.store.attachments import AttachmentStore, attachment_store
from lrs.views_process import ViewsProcess

if TYPE_CHECKING:
    from lrs.api.links import ParentLink
    from lrs.committer import InFlight


class Committer(Protocol):
    """Appends prepared statements: the group committer, or a worker's link to the parent's."""

    def submit(self, batch: Sequence[PreparedStatement]) -> Future[list[str]]: ...
    def store(self, batch: Sequence[PreparedStatement]) -> list[str]: ...
    def consistent_through(self) -> str: ...
    def close(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    store: LearningRecordStore
    committer: Committer
    authenticator: Authenticator
    attachments: AttachmentStore
    more_links: MoreTokens
    views: ViewsProcess | None = None

    @classmethod
    def start(cls, settings: Settings) -> Services:
        store = LearningRecordStore(env=settings.event_store_env())
        if settings.bootstrap_credential:
            key, _, secret = settings.bootstrap_credential.partition(":")
            store.ensure_credential(key, secret, ["all", "admin"], name="bootstrap")
        services = cls(
            settings=settings,
            store=store,
            committer=GroupCommitter(store),
            authenticator=Authenticator(store, settings.authority_home_page),
            attachments=attachment_store(settings.attachment_store, settings.data_dir),
            more_links=MoreTokens(more_key(settings.secret_key, settings.data_dir),
                                  settings.max_page_statements),
        )
        if settings.projections == "embedded":
            services.start_projections()
        return services

    @classmethod
    def for_worker(cls, settings: Settings, link: ParentLink, in_flight: InFlight,
                   changes: CredentialChanges) -> Services:
        """A worker of `lrs serve --workers N`: reads and documents here; appends and views
        through the parent (lrs/api/workers.py)."""
        from lrs.api.links import ViewsLink, WriterLink

        store = LearningRecordStore(env=settings.event_store_env())
        return cls(
            settings=settings,
            store=store,
            committer=WriterLink(link, in_flight),
            authenticator=Authenticator(store, settings.authority_home_page, changes=changes),
            attachments=attachment_store(settings.attachment_store, settings.data_dir),
            more_links=MoreTokens(more_key(settings.secret_key, settings.data_dir),
                                  settings.max_page_statements),
            views=ViewsLink(settings, link) if settings.projections == "embedded" else None,
        )

    def start_projections(self) -> None:
        """The embedded default: the runner follows the log in a child process of this one."""
        self.views = ViewsProcess(self.settings)

    @property
    def attachments_tmp(self) -> Path:
        """Where incoming parts are written while a request is read."""
        path = self.settings.data_dir / "attachments" / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        if self.views is not None:
            self.views.close()
        self.committer.close()
        self.store.close()
        self.attachments.close()
