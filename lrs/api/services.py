"""The objects a running LRS is made of, built once at start-up and shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrs.api.statement_params import MoreTokens, more_key
from lrs.application import LearningRecordStore
from lrs.auth import Authenticator
from lrs.committer import GroupCommitter
from lrs.config import Settings
from lrs.store.attachments import AttachmentStore, attachment_store
from lrs.views_process import ViewsProcess


@dataclass
class Services:
    settings: Settings
    store: LearningRecordStore
    committer: GroupCommitter
    authenticator: Authenticator
    attachments: AttachmentStore
    more_links: MoreTokens
    views: ViewsProcess | None = None

    @classmethod
    def start(cls, settings: Settings) -> Services:
        store = LearningRecordStore(env=settings.event_store_env())
        if settings.bootstrap_credential:
            key, _, secret = settings.bootstrap_credential.partition(":")
            store.ensure_credential(key, secret, ["all"], name="bootstrap")
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
