"""WAL checkpoints off the writer's path: one thread per process copies what the writers of its
SQLite stores committed into their database files.

SQLite checkpoints in the connection that commits, once the WAL passes its threshold: that
commit copies every page written since the last checkpoint into the database file and syncs
it, while every request of the group commit (and every one queued behind it) waits. Onto a
store of 1M statements that was 170-200 ms every 1.6 s at batch 1 (a p95 of 86-106 ms).

Here a thread runs a PASSIVE checkpoint (it waits for no reader and no writer) soon after a
store is written, at most once per ``every`` seconds, so a hot page is copied once for many
commits. The writer's own checkpoint stays as the bound on the WAL's size (CHECKPOINT_PAGES in
lrs/store/sqlite.py): a checkpoint that copies the last frame truncates the database file to
its size and syncs it, and the next write starts the WAL again from its beginning. Under
steady writes only the writer's checkpoint gets that far (another connection's always finds
a newer frame by the time it has copied), and the sync after the truncate is a journal commit
of the file system (70-220 ms under load): the bound is four times what it was (16,384
pages), so that stall comes a quarter as often.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from urllib.parse import quote

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 0.25  # seconds between one store's background checkpoints


def checkpointable(db_name: str) -> bool:
    """A file the thread can open on its own: not an in-memory or shared-cache database."""
    return bool(db_name) and ":memory:" not in db_name and not db_name.startswith("file:")


class BackgroundCheckpoints:
    def __init__(self, every: float = CHECKPOINT_EVERY) -> None:
        self.every = every
        self._written: set[str] = set()  # stores written since their last checkpoint
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def written(self, db_name: str) -> None:
        """Called after a commit: the store gets a checkpoint within ``every`` seconds."""
        if not checkpointable(db_name):
            return
        with self._changed:
            if db_name in self._written or self._closed:
                return
            self._written.add(db_name)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lrs-sqlite-checkpoints",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()

    def forked(self) -> None:
        """In a forked child: the parent's thread is not there, and its lock may be held."""
        self._written = set()
        self._changed = threading.Condition()
        self._thread = None

    def close(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._written or self._closed)
                if self._closed:
                    return
                stores, self._written = sorted(self._written), set()
            for db_name in stores:
                checkpoint(db_name)
            with self._changed:  # what is written meanwhile waits for the next turn
                self._changed.wait_for(lambda: self._closed, self.every)

    def __enter__(self) -> BackgroundCheckpoints:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def checkpoint(db_name: str) -> tuple[int, int, int] | None:
    """A PASSIVE checkpoint of the store: (busy, frames in the WAL, frames copied), None if it
    could not run. A connection of its own for each, opened read-write only: a store whose
    folder was removed meanwhile is not created again, and none is held open between turns."""
    try:
        connection = sqlite3.connect(f"file:{quote(db_name)}?mode=rw", uri=True, timeout=0,
                                     isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row else None
    except sqlite3.Error as exc:  # the store is busy being opened or changed; the writer's own
        log.debug("background checkpoint of %s: %s", db_name, exc)  # checkpoint still bounds it
        return None
    finally:
        connection.close()


CHECKPOINTS = BackgroundCheckpoints()  # the process's one thread, started by the first write
os.register_at_fork(after_in_child=CHECKPOINTS.forked)
