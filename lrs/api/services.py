"""The objects a running LRS is made of, built once at start-up and shared by the routes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lrs.application import LearningRecordStore
from lrs.auth import Authenticator
from lrs.committer import GroupCommitter
from lrs.config import Settings
from lrs.store.attachments import AttachmentStore, attachment_store
from projections.runner import ProjectionRunner


@dataclass
class Services:
    settings: Settings
    store: LearningRecordStore
    committer: GroupCommitter
    authenticator: Authenticator
    attachments: AttachmentStore
    projections: ProjectionRunner | None = None
    _projection_thread: threading.Thread | None = None

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
        )
        if settings.projections == "embedded":
            services.start_projections()
        return services

    def start_projections(self) -> None:
        """The embedded default: the runner follows the log inside this process."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.projections = ProjectionRunner(self.store, self.settings.projections_path)
        self._projection_thread = threading.Thread(target=self.projections.run,
                                                   name="lrs-projections", daemon=True)
        self._projection_thread.start()

    @property
    def attachments_tmp(self) -> Path:
        """Where incoming parts are written while a request is read."""
        path = self.settings.data_dir / "attachments" / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        if self.projections is not None and self._projection_thread is not None:
            self.projections.stop.set()
            self._projection_thread.join(timeout=10)
            self.projections.close()
        self.committer.close()
        self.store.close()
        self.attachments.close()
