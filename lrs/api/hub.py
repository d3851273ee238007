"""The parent's side of `lrs serve --workers N`: it answers each worker's pipe (lrs/api/links.py).

Statements go to the one group committer, so a write holds every worker's waiting requests and
ids are checked once for all of them; view queries and health go to the projections process.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from lrs.api.links import HEALTH, STORE, VIEWS
from lrs.application import LearningRecordStore
from lrs.committer import GroupCommitter
from lrs.views_process import ViewsProcess

log = logging.getLogger(__name__)


class WorkerHub:
    def __init__(self, store: LearningRecordStore, committer: GroupCommitter,
                 views: ViewsProcess | None, view_threads: int) -> None:
        self.store = store
        self.committer = committer
        self.views = views
        # View queries block on the projections process; they wait here, never in a reader.
        self._pool = ThreadPoolExecutor(max_workers=max(1, view_threads),
                                        thread_name_prefix="lrs-hub-views")

    def serve(self, connection: Connection, name: str) -> threading.Thread:
        """Answer one worker's pipe until it closes."""
        thread = threading.Thread(target=self._read, args=(connection,), name=f"lrs-hub-{name}",
                                  daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _read(self, connection: Connection) -> None:
        send_lock = threading.Lock()

        def answer(number: int, future: Future[Any]) -> None:
            error = future.exception()
            reply = (number, False, error) if error is not None else (number, True, future.result())
            try:
                with send_lock:
                    connection.send(reply)
            except (OSError, ValueError):
                pass  # the worker is gone; its client's connection went with it

        while True:
            try:
                kind, number, *payload = connection.recv()
            except (EOFError, OSError):
                return
            if kind == STORE:
                future: Future[Any] = self.committer.submit(payload[0])
            elif kind == VIEWS and self.views is not None:
                future = self._pool.submit(self.views._ask, *payload)
            elif kind == HEALTH and self.views is not None:
                future = self._pool.submit(self.views.health, self.store)
            else:
                future = Future()
                future.set_exception(RuntimeError(f"the parent cannot answer {kind!r}"))
            future.add_done_callback(partial(answer, number))
