"""The projections' child process: follows the log into the views and answers view queries.

Started by lrs/views_process.py. Its DuckDB instance is sandboxed for analysts' SQL (external
access off, options locked, memory bounded) and every query runs on a cursor of its own within
a time limit. Its priority is lowered: on a small machine an analyst's query would otherwise take
the cores the server needs for xAPI traffic.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import resource
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from lrs.config import Settings
from lrs.errors import LRSError
from lrs.interrupts import ignore_interrupts
from lrs.views_process import LAG, RETRY_VIEWS, PublishedLag, ViewsBusy, ViewsUnavailable

if TYPE_CHECKING:
    from lrs.application import LearningRecordStore
    from projections.runner import ProjectionRunner

log = logging.getLogger("lrs.projections")

PUBLISH_EVERY = 0.1  # how often the lag is published for /api/health, the views caught up
# ... and while they are behind, when reading the lag costs DuckDB's and the log's reads
PUBLISH_BEHIND_EVERY = 0.5
NICENESS = 10
STOP_WAIT = 10.0  # for interrupted queries to end before the views file is closed


class QueryGate:
    """The child's queries under way: counted, so that the connection is closed only after they
    ended (DuckDB refuses to close it under them), and interrupted when the child stops."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._cursors: set[Any] = set()
        self._busy = 0
        self.closing = False

    @contextmanager
    def entered(self) -> Iterator[None]:
        with self._changed:
            self._enter()
        try:
            yield
        finally:
            self._leave(None)

    @contextmanager
    def cursor(self, runner: ProjectionRunner) -> Iterator[Any]:
        """A cursor of its own for one query (reads never block the runner), interruptible
        from the moment it exists."""
        with self._changed:
            self._enter()
            try:
                cursor = runner.con.cursor()
            except BaseException:
                self._busy -= 1
                raise
            self._cursors.add(cursor)
        try:
            yield cursor
        finally:
            self._leave(cursor)

    def _enter(self) -> None:
        if self.closing:
            raise ViewsUnavailable("the projections process is stopping; retry shortly")
        self._busy += 1

    def _leave(self, cursor: Any) -> None:
        with self._changed:
            if cursor is not None:
                self._cursors.discard(cursor)
                cursor.close()
            self._busy -= 1
            self._changed.notify_all()

    def close(self, timeout: float) -> bool:
        """Refuse new queries, interrupt those under way; whether they all ended in time."""
        with self._changed:
            self.closing = True
            for cursor in self._cursors:
                cursor.interrupt()
            return self._changed.wait_for(lambda: self._busy == 0, timeout)

    @contextmanager
    def paused(self, timeout: float) -> Iterator[None]:
        """No query while the views file is swapped for a compacted copy (after an erasure):
        those under way are interrupted, new ones answered 503 until it is back."""
        if not self.close(timeout):
            with self._changed:
                self.closing = False
            raise ViewsUnavailable("view queries did not end for the compaction; it is retried")
        try:
            yield
        finally:
            with self._changed:
                self.closing = False


def memory_bytes(limit: str) -> int:
    """A DuckDB memory size ('2GB', '512MiB', '1.5 GB') in bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(I?)B?\s*", limit.upper())
    if match is None:
        raise ValueError(f"LRS_VIEWS_MEMORY_LIMIT: '{limit}' is not a size such as '2GB'")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** " KMGT".index(unit or " "))


def _cap_memory(limit: str) -> None:
    """DuckDB's memory limit does not cover every allocation (the strings of one vector, the
    Python copies of a result): a query of a thousand 15 MB strings grew this process to 20 GB
    and the kernel killed whatever it chose. The data segment is capped at twice the views'
    limit and 2 GiB more, so such a query fails with an out-of-memory error instead."""
    cap = 2 * memory_bytes(limit) + (2 << 30)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


def serve(settings: Settings, connections: list[Connection], ready: Connection,
          stop: Connection, published: PublishedLag) -> None:
    """The child: follow the log into the views, and answer queries until told to stop.

    Ctrl-C is ignored: the server stops this child itself, after its own requests
    (lrs/interrupts.py)."""
    ignore_interrupts()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.nice(NICENESS)
    _cap_memory(settings.views_memory_limit)
    import duckdb

    from lrs.application import LearningRecordStore
    from lrs.cli.common import tune_gc

    gate = QueryGate()
    try:
        store = LearningRecordStore(env=settings.event_store_env())
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        runner = open_sandboxed_runner(store, settings)
    except Exception as exc:  # told to the parent, which fails to start with the reason
        ready.send(f"{type(exc).__name__}: {exc}")
        return
    # After an erasure the runner compacts its file; queries wait, and the copy is sandboxed too.
    runner.reopen = lambda: _sandboxed_connection(settings)
    runner.compacting = lambda: gate.paused(STOP_WAIT)
    _publish_once(runner, gate, published, failing=False)  # health has a lag from the start
    ready.send("")
    ready.close()
    tune_gc()
    for connection in connections:
        threading.Thread(target=_answer, args=(runner, gate, connection), daemon=True,
                         name="lrs-views-query").start()
    threading.Thread(target=_publish, args=(runner, gate, published), daemon=True,
                     name="lrs-views-lag").start()

    def watch() -> None:
        # Stop with the parent, however it ended (a killed server must not leave a child behind).
        parent = multiprocessing.parent_process()
        while not stop.poll(1.0):  # a message, or the end of the pipe when the parent is gone
            if parent is not None and not parent.is_alive():
                break
        runner.stop.set()

    threading.Thread(target=watch, daemon=True, name="lrs-views-watch").start()
    try:
        runner.run(interval=0.1)
    finally:
        runner.stop.set()
        runner.reached_head.set()  # the lag's publisher, if waiting, sees the stop now
        if not gate.close(STOP_WAIT):
            log.warning("view queries still running %s s after the stop", STOP_WAIT)
        try:
            runner.close()
        except duckdb.Error as exc:  # a query that ignored its interrupt; the exit ends it
            log.warning("closing the views file: %s", exc)
        store.close()


def _sandboxed_connection(settings: Settings) -> Any:
    import duckdb

    from projections.queries import lock_sandbox, sandbox_config
    from projections.runner import create_schema

    con = duckdb.connect(str(settings.projections_path),
                         config=sandbox_config(settings.views_memory_limit,
                                               settings.views_threads))
    create_schema(con)
    lock_sandbox(con)
    return con


def open_sandboxed_runner(store: LearningRecordStore, settings: Settings) -> ProjectionRunner:
    """The runner on a DuckDB instance analysts' SQL can share: it reads its own file and
    nothing else, and its options are locked once the runner has set its time zone.

    The runner needs no file of its own beyond the database: a page reaches DuckDB as a
    registered Arrow table, which external access does not govern, and spilling goes to the
    temp directory, which DuckDB allows whatever the setting.
    """
    import duckdb

    from projections.queries import lock_sandbox, sandbox_config
    from projections.runner import ProjectionRunner

    con = duckdb.connect(str(settings.projections_path),
                         config=sandbox_config(settings.views_memory_limit,
                                               settings.views_threads))
    try:
        runner = ProjectionRunner(store, settings.projections_path, connection=con,
                                  threads=settings.views_threads)
        lock_sandbox(con)
    except BaseException:
        con.close()
        raise
    return runner


def _publish(runner: ProjectionRunner, gate: QueryGate, published: PublishedLag) -> None:
    """Caught up, the lag is one read of the log's head, published ten times a second. Behind,
    a read costs 2.5-4 ms of CPU (the views' position and dirty learners from DuckDB, the events
    behind from the log), which ten times a second was an eighth of the views' CPU at batch 1:
    it is published every PUBLISH_BEHIND_EVERY then, and at once when a catch-up reaches the
    head, so that health says "caught up" as soon as it is true."""
    failing, behind = False, False
    while not runner.stop.is_set():
        if behind:
            runner.reached_head.wait(PUBLISH_BEHIND_EVERY)
        else:
            runner.stop.wait(PUBLISH_EVERY)
        runner.reached_head.clear()  # before the read: a later arrival is seen next time
        failing, behind = _publish_once(runner, gate, published, failing)


def _publish_once(runner: ProjectionRunner, gate: QueryGate, published: PublishedLag,
                  failing: bool) -> tuple[bool, bool]:
    """Publish the lag; whether reading it failed (logged once per outage, not ten times a
    second), and whether the views are behind."""
    try:
        with gate.entered():
            lag = runner.lag()
            published.write(lag)
    except ViewsUnavailable:  # stopping
        return failing, False
    except Exception:
        if not failing:
            log.exception("reading the projection lag failed")
        return True, False
    return False, bool(lag["events_behind"] or lag["learners_to_refresh"])


def _answer(runner: ProjectionRunner, gate: QueryGate, connection: Connection) -> None:
    while True:
        try:
            fn, args, limit = connection.recv()
        except (EOFError, OSError):
            return
        reply = _run(runner, gate, fn, args, limit)
        try:
            connection.send(reply)
        except (EOFError, OSError):
            return


def _run(runner: ProjectionRunner, gate: QueryGate, fn: Callable[..., Any] | str,
         args: tuple[Any, ...], limit: float | None) -> tuple[bool, Any]:
    import duckdb

    from projections.queries import time_limit

    try:
        if fn == LAG:
            with gate.entered():
                return True, runner.lag()
        assert callable(fn)
        with gate.cursor(runner) as cursor:
            if limit is None:  # the function keeps its own limit (read_only_sql)
                return True, fn(cursor, *args)
            with time_limit(cursor, limit):
                return True, fn(cursor, *args)
    except duckdb.InterruptException:
        if gate.closing:
            return False, ViewsUnavailable("the projections process is stopping; retry shortly")
        return False, ViewsBusy(f"the view query ran longer than {limit or 0:g} s"
                                " (LRS_VIEW_QUERY_TIMEOUT_SECONDS); retry shortly", RETRY_VIEWS)
    except LRSError as exc:
        if gate.closing and not isinstance(exc, ViewsUnavailable):  # interrupted by the stop
            return False, ViewsUnavailable("the projections process is stopping; retry shortly")
        return False, exc
    except Exception as exc:  # the parent answers 500 with this; the child goes on
        log.exception("view query failed")
        return False, RuntimeError(f"view query failed: {type(exc).__name__}: {exc}")
