"""WAL checkpoints off the writer's path: one thread per process copies what the writers of its
SQLite stores committed into their database files, where the SQLite library allows it.

SQLite checkpoints in the connection that commits, once the WAL passes its threshold: that
commit copies every page written since the last checkpoint into the database file and syncs
it, while every request of the group commit (and every one queued behind it) waits. Onto a
store of 1M statements that was 170-200 ms every 1.6 s at batch 1 (a p95 of 86-106 ms).

Here a thread runs a PASSIVE checkpoint (it waits for no reader and no writer) soon after a
store is written, at most once per ``every`` seconds, so a hot page is copied once for many
commits. The writer's own checkpoint stays as the bound on the WAL's size (CHECKPOINT_PAGES in
lrs/store/sqlite.py, 256 MiB): a checkpoint that copies the last frame truncates the database
file to its size and syncs it, and the next write starts the WAL again from its beginning.
Under steady writes only the writer's checkpoint gets that far (another connection's always
finds a newer frame by the time it has copied). SQLite syncs the database file only in such a
checkpoint, so that one still flushes every page copied since the last (70-220 ms under load);
syncing after each background checkpoint instead halved batch 1's p99 onto 1M but cost 5-20 %
of the throughput, and was left out.

Only with a SQLite free of the WAL-reset bug (https://sqlite.org/wal.html#walresetbug): from
3.7.0 to 3.51.2, a checkpoint that starts while another connection's commit starts the WAL
again can leave committed pages out of the database file. A checkpoint beside the writer is
that case; without the thread, every checkpoint runs in the writer's turn (the lock file), as
every commit does, and the two never overlap. Debian 12's SQLite is 3.40.1: there the store
checkpoints in the commit, as before.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from urllib.parse import quote

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 0.25  # seconds between one store's background checkpoints


def wal_reset_fixed(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> bool:
    """Whether this SQLite has the WAL-reset fix: 3.51.3 and later, or the 3.50.7 and 3.44.6
    backports."""
    return (version >= (3, 51, 3) or (3, 50, 7) <= version < (3, 51)
            or (3, 44, 6) <= version < (3, 45))


ENABLED = wal_reset_fixed()  # read at each write, so a test may turn it on


def file_backed(db_name: str) -> bool:
    """A file that another connection, or another process, can open on its own: not an
    in-memory or shared-cache database."""
    return bool(db_name) and ":memory:" not in db_name and not db_name.startswith("file:")


class BackgroundCheckpoints:
    def __init__(self, every: float = CHECKPOINT_EVERY,
                 run: Callable[[str], object] | None = None) -> None:
        self.every = every
        self.run = run or checkpoint  # one store's checkpoint
        # Held while the thread is inside SQLite, and by os.fork: a child forked meanwhile
        # would find SQLite's own mutexes held by a thread it does not have, and hang.
        self.inside = threading.Lock()
        self._written: set[str] = set()  # stores written since their last checkpoint
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._round: list[str] = []  # stores of the checkpoints under way, in turn
        self._current: str | None = None  # the store being checkpointed
        self._closed = False

    def written(self, db_name: str) -> None:
        """Called after a commit: the store gets a checkpoint within ``every`` seconds."""
        if not ENABLED or not file_backed(db_name):
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

    def forget(self, db_name: str) -> None:
        """The store is closing: no checkpoint of it is left to come, and none runs on return
        (one would open the file again, and make its -wal and -shm again for a moment, under a
        caller about to remove its folder)."""
        with self._changed:
            self._written.discard(db_name)
            if db_name in self._round:
                self._round.remove(db_name)
            self._changed.wait_for(lambda: self._current != db_name)

    def before_fork(self) -> None:
        self.inside.acquire()

    def after_fork_in_parent(self) -> None:
        self.inside.release()

    def after_fork_in_child(self) -> None:
        """The parent's thread is not here, and its condition's lock may have been held."""
        self._written, self._round, self._current = set(), [], None
        self._changed = threading.Condition()
        self._thread = None
        self.inside = threading.Lock()

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
                self._round, self._written = sorted(self._written), set()
            while True:
                with self._changed:
                    if not self._round:
                        break
                    db_name = self._current = self._round.pop(0)
                try:
                    with self.inside:
                        self.run(db_name)
                finally:
                    with self._changed:
                        self._current = None
                        self._changed.notify_all()
            with self._changed:  # what is written meanwhile waits for the next turn
                self._changed.wait_for(lambda: self._closed, self.every)


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
os.register_at_fork(before=CHECKPOINTS.before_fork, after_in_parent=CHECKPOINTS.after_fork_in_parent,
                    after_in_child=CHECKPOINTS.after_fork_in_child)
