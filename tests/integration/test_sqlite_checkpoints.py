"""SQLite's WAL is copied into the database file by a thread, not by the commit that a request
waits for, where the SQLite library is free of the WAL-reset bug; the writer's own checkpoint
still bounds the WAL (lrs/store/sqlite_checkpoints.py). Elsewhere, no thread checkpoints.

The tests that exercise the thread turn it on whatever the library: their stores are theirs."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lrs.store.sqlite as lrs_sqlite
import lrs.store.sqlite_checkpoints as checkpoints
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.committer import GroupCommitter
from lrs.config import Settings
from lrs.store.sqlite_checkpoints import BackgroundCheckpoints, checkpoint
from tests.statements import statement
from tests.waiting import wait_until, within

WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(store: LearningRecordStore, count: int) -> None:
    batch = prepare_statements([statement() for _ in range(count)], WRITER, "1.0.3", count)
    assert len(store.store_batches([batch])[0]) == count  # type: ignore[arg-type]


@pytest.fixture
def enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "ENABLED", True)


@pytest.fixture
def held_checkpoints(monkeypatch: pytest.MonkeyPatch,
                     enabled: None) -> Iterator[tuple[threading.Event, list[Any]]]:
    """The stores' background checkpoints, held back until the test lets them go; what each
    one returned is recorded."""
    release, done = threading.Event(), []

    def held(db_name: str) -> Any:
        release.wait(30)
        result = checkpoint(db_name)
        done.append((db_name, result))
        return result

    background = BackgroundCheckpoints(every=0.01, run=held)
    monkeypatch.setattr(lrs_sqlite, "CHECKPOINTS", background)
    try:
        yield release, done
    finally:
        release.set()
        background.close()


def db_file(store: LearningRecordStore) -> Path:
    return Path(store.recorder.datastore.pool.db_name)  # type: ignore[attr-defined]


def test_a_commit_leaves_its_pages_in_the_wal_for_the_background_thread_to_copy(
        held_checkpoints: tuple[threading.Event, list[Any]],
        sqlite_store: LearningRecordStore) -> None:
    release, done = held_checkpoints
    store, db = sqlite_store, db_file(sqlite_store)
    write(store, 1)  # the key ring's first write, and the pool's writer configured
    release.set()
    wait_until(lambda: bool(done), "a background checkpoint after a write", seconds=10)
    release.clear()
    before, count = digest(db), len(done)
    write(store, 200)
    assert digest(db) == before, "the commit copied its pages into the database file itself"
    release.set()
    wait_until(lambda: len(done) > count and digest(db) != before,
               "another checkpoint copying the new write", seconds=10)
    name, (busy, in_wal, copied) = done[-1]
    assert name == str(db) and busy == 0 and in_wal == copied > 0


def test_the_writer_still_bounds_the_wal_when_no_background_checkpoint_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        held_checkpoints: tuple[threading.Event, list[Any]]) -> None:
    """A restart of the WAL from its beginning shows in its header's checkpoint sequence."""
    monkeypatch.setattr(lrs_sqlite, "CHECKPOINT_PAGES", 100)  # read when the writer is configured
    env = Settings(data_dir=tmp_path).event_store_env()
    store = LearningRecordStore(env=env)
    wal = Path(f"{env['SQLITE_DBNAME']}-wal")
    try:
        sequences, largest = set(), 0
        for _ in range(30):
            write(store, 50)
            sequences.add(wal.read_bytes()[12:16])
            largest = max(largest, wal.stat().st_size)
        _, done = held_checkpoints
        assert done == [], "a background checkpoint ran although held back"
        assert len(sequences) >= 3, "the WAL was not started again from its beginning"
        assert largest < 4 * 100 * 4096, "the WAL grew past the writer's bound and one commit"
    finally:
        held_checkpoints[0].set()  # else closing waits for the held checkpoint
        store.close()


def test_closing_a_store_waits_for_its_checkpoint_and_drops_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: None) -> None:
    """Else the thread opens the file after the store closed, and makes its -wal and -shm
    again for a moment: removing the store's folder then fails."""
    entered, leave, ran = threading.Event(), threading.Event(), []

    def slow(db_name: str) -> None:
        ran.append(db_name)
        entered.set()
        leave.wait(10)

    background = BackgroundCheckpoints(every=0.01, run=slow)
    monkeypatch.setattr(lrs_sqlite, "CHECKPOINTS", background)
    env = Settings(data_dir=tmp_path).event_store_env()
    store = LearningRecordStore(env=env)
    try:
        write(store, 5)
        assert entered.wait(10)
        write(store, 5)  # its checkpoint waits for the next round
        closing = threading.Thread(target=store.close)
        closing.start()
        closing.join(0.3)
        assert closing.is_alive(), "the store closed while its checkpoint ran"
        leave.set()
        closing.join(10)
        assert not closing.is_alive()
        time.sleep(0.1)
        assert ran == [env["SQLITE_DBNAME"]], "a checkpoint of the store ran after it closed"
    finally:
        leave.set()
        background.close()


def test_the_wal_file_keeps_its_size_while_the_wal_starts_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The WAL starts again over blocks the file has: extending it cost ext4 zeroed pages and a
    change of size for every sync to record."""
    monkeypatch.setattr(lrs_sqlite, "CHECKPOINT_PAGES", 200)  # read when the writer is configured
    env = Settings(data_dir=tmp_path).event_store_env()
    store = LearningRecordStore(env=env)
    wal = Path(f"{env['SQLITE_DBNAME']}-wal")
    try:
        sizes, sequences = [], set()
        for _ in range(30):
            write(store, 50)
            sizes.append(wal.stat().st_size)
            sequences.add(wal.read_bytes()[12:16])
        assert len(sequences) >= 3, "the WAL was not started again from its beginning"
        limit = lrs_sqlite.wal_file_bytes(200, 4096)
        full = next(i for i, size in enumerate(sizes) if size >= limit)
        # A commit that crosses the bound runs past it; the next start cuts it back to the bound.
        assert min(sizes[full:]) == limit, f"the WAL file was cut back below its bound: {sizes}"
        assert max(sizes) <= limit + 50 * 4 * 4120, f"the WAL outgrew its bound: {sizes}"
    finally:
        store.close()


def test_a_store_gone_quiet_cuts_its_wal_file_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound lets the WAL reach 256 MiB while written; a quiet store must not keep that size.
    The writer's thread cuts it back, so no write waits for it; a later write grows it again."""
    monkeypatch.setattr(lrs_sqlite, "CHECKPOINT_PAGES", 200)  # read when the writer is configured
    env = Settings(data_dir=tmp_path).event_store_env()
    store = LearningRecordStore(env=env)
    committer = GroupCommitter(store, quiet_after=0.3)
    wal = Path(f"{env['SQLITE_DBNAME']}-wal")
    try:
        for round_ in range(2):
            batch = prepare_statements([statement() for _ in range(50)], WRITER, "1.0.3", 50)
            assert len(committer.store(batch)) == 50
            assert wal.stat().st_size > 0
            wait_until(lambda: wal.stat().st_size == 0, f"the WAL file cut back (round {round_})",
                       seconds=10)
        with sqlite3.connect(env["SQLITE_DBNAME"]) as reader:
            count = reader.execute("SELECT count(*) FROM xapi_statement").fetchone()[0]
        assert count == 100, "what the WAL held did not reach the database"
    finally:
        committer.close()
        store.close()


def test_cutting_the_wal_back_gives_up_at_once_while_a_reader_holds_a_snapshot(
        sqlite_store: LearningRecordStore) -> None:
    """Waiting for the reader (the projections catching up) would hold every write behind the
    writer's turn for as long as SQLite's busy timeout."""
    write(sqlite_store, 5)
    db = sqlite_store.recorder.datastore.pool.db_name  # type: ignore[attr-defined]
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM xapi_statement").fetchone()
        write(sqlite_store, 5)  # the reader's snapshot is now an older one
        started = time.monotonic()
        assert sqlite_store.recorder.cut_back_wal() is False  # type: ignore[attr-defined]
        assert time.monotonic() - started < 1.0, "it waited for the reader"
        reader.execute("COMMIT")
        assert sqlite_store.recorder.cut_back_wal() is True  # type: ignore[attr-defined]
        assert Path(f"{db}-wal").stat().st_size == 0
        write(sqlite_store, 5)  # the writer's busy timeout is as it was: writes go on
    finally:
        reader.close()


def test_a_postgresql_store_going_quiet_is_left_as_it_is(postgres_database: str,
                                                         tmp_path: Path) -> None:
    """PostgreSQL's WAL is its server's to recycle."""
    store = LearningRecordStore(env=Settings(data_dir=tmp_path,
                                             event_store=postgres_database).event_store_env())
    try:
        write(store, 3)
        store.went_quiet()
        batch = prepare_statements([statement()], WRITER, "1.0.3", 1)
        ids = store.store_batches([batch])[0]
        assert isinstance(ids, list)
        assert store.statement(ids[0])[0]["id"] == ids[0]
    finally:
        store.close()


def test_a_store_removed_meanwhile_is_not_created_again_by_its_checkpoint(tmp_path: Path) -> None:
    gone = tmp_path / "removed" / "events.sqlite"
    assert checkpoint(str(gone)) is None
    assert not gone.exists() and not gone.parent.exists()


def test_no_thread_checkpoints_beside_the_writer_where_sqlite_has_the_wal_reset_bug(
        monkeypatch: pytest.MonkeyPatch, sqlite_store: LearningRecordStore) -> None:
    monkeypatch.setattr(checkpoints, "ENABLED", False)
    background = BackgroundCheckpoints(every=0.01)
    monkeypatch.setattr(lrs_sqlite, "CHECKPOINTS", background)
    store = sqlite_store
    write(store, 20)
    assert background._thread is None
    with store.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
        c.execute("PRAGMA wal_autocheckpoint")
        assert c.fetchone()[0] == lrs_sqlite.CHECKPOINT_PAGES


@pytest.mark.parametrize(("version", "fixed"), [
    ((3, 40, 1), False), ((3, 44, 5), False), ((3, 44, 6), True), ((3, 45, 0), False),
    ((3, 50, 6), False), ((3, 50, 7), True), ((3, 51, 2), False), ((3, 51, 3), True),
    ((3, 52, 0), True), ((4, 0, 0), True)])
def test_the_wal_reset_fix_is_known_by_version(version: tuple[int, int, int], fixed: bool) -> None:
    assert checkpoints.wal_reset_fixed(version) is fixed


def test_an_in_memory_store_gets_no_background_checkpoint(enabled: None) -> None:
    background = BackgroundCheckpoints(every=0.01)
    background.written(":memory:")
    background.written("file:shared?mode=memory&cache=shared")
    assert background._thread is None
    background.close()


def test_closed_checkpoints_start_no_thread(tmp_path: Path, enabled: None) -> None:
    background = BackgroundCheckpoints(every=0.01)
    background.close()
    background.written(str(tmp_path / "events.sqlite"))
    assert background._thread is None


def wal_store(path: Path, rows: int) -> sqlite3.Connection:
    """A WAL-mode file with ``rows`` rows, none of them checkpointed while the connection that
    wrote them (returned) stays open."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE t (v BLOB)")
    connection.executemany("INSERT INTO t VALUES (?)", [(os.urandom(500),) for _ in range(rows)])
    return connection


def test_a_forked_child_checkpoints_with_a_thread_of_its_own(tmp_path: Path, enabled: None) -> None:
    """The parent's thread is not in a forked child: the process's checkpoints start one there."""
    background = checkpoints.CHECKPOINTS
    parents = wal_store(tmp_path / "parent.sqlite", 100)
    background.written(str(tmp_path / "parent.sqlite"))
    assert background._thread is not None and background._thread.is_alive()
    child = tmp_path / "child.sqlite"
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if a thread copied its WAL
        code = 1
        try:
            childs = wal_store(child, 100)
            size = child.stat().st_size
            background.written(str(child))
            if within(lambda: child.stat().st_size > size, seconds=10):
                code = 0
            childs.close()
        finally:
            os._exit(code)
    status, deadline = None, time.monotonic() + 30
    while status is None and time.monotonic() < deadline:
        ended, code = os.waitpid(pid, os.WNOHANG)
        status = code if ended else time.sleep(0.05)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    parents.close()
    assert status is not None, "the child hung: it waited on what the parent's thread held"
    assert os.WEXITSTATUS(status) == 0, "the child's write was never checkpointed"


CHECKPOINT_LOCK_BYTE = 121  # SQLite's unix VFS: the -shm file's lock bytes start at 120, CKPT is 1


def test_an_erasures_scrub_waits_out_a_checkpoint_under_way(
        enabled: None, sqlite_store: LearningRecordStore, tmp_path: Path) -> None:
    """The erasure's own commit starts a background checkpoint; a TRUNCATE checkpoint that
    finds one under way is refused at once, and the WAL would keep the erased rows' pages."""
    store, db = sqlite_store, db_file(sqlite_store)
    write(store, 5)
    held = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(db) + '-shm'!r}, os.O_RDWR)\n"
        f"fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, {CHECKPOINT_LOCK_BYTE})\n"
        f"open({str(held)!r}, 'w').close()\n"
        "time.sleep(1.0)\n")])
    try:
        wait_until(held.exists, "the other process holding the checkpoint lock", seconds=10)
        started = time.monotonic()
        assert store.scrub() == "checkpointed"
        assert time.monotonic() - started > 0.2, "the checkpoint lock was not in the way"
        assert Path(f"{db}-wal").stat().st_size == 0
    finally:
        holder.wait(10)


def test_a_fork_waits_until_the_thread_is_out_of_sqlite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: None) -> None:
    """A child forked while the thread is inside SQLite would inherit SQLite's mutexes held by a
    thread it does not have: its first SQLite call would wait for ever."""
    entered, leave = threading.Event(), threading.Event()

    def inside_sqlite(db_name: str) -> None:
        entered.set()
        leave.wait(10)

    monkeypatch.setattr(checkpoints.CHECKPOINTS, "run", inside_sqlite)
    checkpoints.CHECKPOINTS.written(str(tmp_path / "events.sqlite3"))
    assert entered.wait(10)
    threading.Timer(0.3, leave.set).start()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    waited = time.monotonic() - started
    os.waitpid(pid, 0)
    assert waited >= 0.25, f"the fork went ahead while the thread was inside SQLite ({waited:.3f} s)"
