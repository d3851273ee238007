"""The embedded projections in a process of their own, beside `lrs serve`.

Folding statements into the views is Python work. Run as a thread of the server it competed with
request handling for the interpreter lock, and at 1,000 statements/s a statement took 2.6 s (p50)
to 9 s (p95) to reach the views. In a child process it has an interpreter of its own. DuckDB lets
one process open a views file, so the child also answers the API's view queries, over pipes.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING, Any

from lrs.config import Settings
from lrs.errors import LRSError

if TYPE_CHECKING:  # only the child process runs one
    from projections.runner import ProjectionRunner

log = logging.getLogger("lrs.projections")

CONNECTIONS = 8  # concurrent view queries; more wait for a free pipe
READY_TIMEOUT = 300.0  # opening a views file of an older schema drops it first
RESTART_AFTER = 5.0
LAG = "lag"  # the request for the runner's lag, beside query functions


class ViewsUnavailable(LRSError):
    status = 503


class ViewsProcess:
    """The parent's handle: starts the child, sends it queries, restarts it if it died."""

    def __init__(self, settings: Settings, connections: int = CONNECTIONS) -> None:
        self.settings = settings
        self.connections = connections
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._started = 0.0
        self._start()

    def _start(self) -> None:
        pairs = [self._context.Pipe() for _ in range(self.connections)]
        ready_parent, ready_child = self._context.Pipe(duplex=False)
        self._stop: Event = self._context.Event()
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self.process = self._context.Process(
            target=serve, name="lrs-projections", daemon=True,
            args=(self.settings, [child for _, child in pairs], ready_child, self._stop))
        self.process.start()
        self._started = time.monotonic()
        ready_child.close()
        for parent, child in pairs:
            child.close()
            self._free.put(parent)
        if not ready_parent.poll(READY_TIMEOUT):
            raise RuntimeError("the projections process did not open its views file in time")
        try:
            error = ready_parent.recv()
        except EOFError:
            error = f"it exited with code {self.process.exitcode}"
        if error:
            self.process.join(timeout=10)
            raise RuntimeError(f"the projections process could not start: {error}")

    def call(self, fn: Callable[..., Any] | str, *args: Any) -> Any:
        """Run a query function of ``projections.queries`` (or LAG) in the child."""
        self._ensure_running()
        free = self._free  # a restart replaces the pool; a pipe goes back to the one it came from
        connection = free.get()
        try:
            connection.send((fn, args))
            ok, value = connection.recv()
        except (EOFError, OSError):
            raise ViewsUnavailable("the projections process stopped; it is being restarted,"
                                   " retry shortly") from None
        finally:
            free.put(connection)
        if not ok:
            raise value
        return value

    def lag(self) -> dict[str, Any]:
        return dict(self.call(LAG))

    def _ensure_running(self) -> None:
        if self.process.is_alive():
            return
        with self._lock:
            if self.process.is_alive():
                return
            if time.monotonic() - self._started < RESTART_AFTER:
                raise ViewsUnavailable("the projections process stopped; retry shortly")
            log.error("the projections process exited (code %s); starting it again",
                      self.process.exitcode)
            self._start()

    def close(self) -> None:
        self._stop.set()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)


def serve(settings: Settings, connections: list[Connection], ready: Connection,
          stop: Event) -> None:
    """The child: follow the log into the views, and answer queries until told to stop."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from lrs.application import LearningRecordStore
    from lrs.cli.common import tune_gc
    from projections.runner import ProjectionRunner

    try:
        store = LearningRecordStore(env=settings.event_store_env())
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        runner = ProjectionRunner(store, settings.projections_path)
    except Exception as exc:  # told to the parent, which fails to start with the reason
        ready.send(f"{type(exc).__name__}: {exc}")
        return
    ready.send("")
    ready.close()
    tune_gc()
    for connection in connections:
        threading.Thread(target=_answer, args=(runner, connection), daemon=True,
                         name="lrs-views-query").start()

    def watch() -> None:
        # Stop with the parent, however it ended (a killed server must not leave a child behind).
        parent = multiprocessing.parent_process()
        while not stop.wait(1.0):
            if parent is not None and not parent.is_alive():
                break
        runner.stop.set()

    threading.Thread(target=watch, daemon=True, name="lrs-views-watch").start()
    try:
        runner.run(interval=0.1)
    finally:
        runner.close()
        store.close()


def _answer(runner: ProjectionRunner, connection: Connection) -> None:
    while True:
        try:
            fn, args = connection.recv()
        except (EOFError, OSError):
            return
        try:
            if fn == LAG:
                reply: tuple[bool, Any] = (True, runner.lag())
            else:
                cursor = runner.con.cursor()  # a cursor per request: reads never block the runner
                try:
                    reply = (True, fn(cursor, *args))
                finally:
                    cursor.close()
        except LRSError as exc:
            reply = (False, exc)
        except Exception as exc:  # the parent answers 500 with this; the child goes on
            log.exception("view query failed")
            reply = (False, RuntimeError(f"view query failed: {type(exc).__name__}: {exc}"))
        try:
            connection.send(reply)
        except (EOFError, OSError):
            return
