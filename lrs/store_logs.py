"""Each store's log, opened on first use, for a process that writes for many stores (Kafka
ingest): the credential a message names decides the store, as a request's does over HTTP."""

from __future__ import annotations

import threading
import time

from lrs.application import LearningRecordStore
from lrs.config import DEFAULT_STORE, Settings
from lrs.errors import Forbidden

CATALOGUE_TTL = 30.0  # an archived store's credentials are refused within this time


class StoreLogs:
    def __init__(self, settings: Settings, catalogue: LearningRecordStore) -> None:
        self.settings = settings.for_store(DEFAULT_STORE)
        self.catalogue = catalogue  # the `default` store's log
        self._logs: dict[str, LearningRecordStore] = {}
        self._archived: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def log(self, name: str) -> LearningRecordStore:
        """The store's log; 403 naming the rule if the store is archived."""
        if name == DEFAULT_STORE:
            return self.catalogue
        now = time.monotonic()
        cached = self._archived.get(name)
        if cached is None or cached[0] <= now:
            info = self.catalogue.store_info(name)
            cached = (now + CATALOGUE_TTL, info is None or info.archived)
            self._archived[name] = cached
        if cached[1]:
            raise Forbidden(f"store '{name}' is archived: its credentials may no longer write")
        with self._lock:
            log = self._logs.get(name)
            if log is None:
                log = self._logs[name] = LearningRecordStore(
                    env=self.settings.for_store(name).event_store_env())
            return log

    def close(self) -> None:
        with self._lock:
            logs, self._logs = list(self._logs.values()), {}
        for log in logs:
            log.close()
