"""The embedded projections run in a child process of the server and answer its view queries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from lrs import views_process
from lrs.application import LearningRecordStore
from lrs.config import Settings
from lrs.errors import NotFound
from lrs.views_process import ViewsProcess, ViewsUnavailable
from projections import queries
from tests.integration.test_projection_runner import answer, append
from tests.waiting import wait_until

ADA = "mbox:mailto:ada@example.org"  # tests.statements.agent("ada")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not yet reaped is a zombie, not alive.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsProcess]:
    handle = ViewsProcess(settings)
    yield handle
    handle.close()


def caught_up(views: ViewsProcess) -> bool:
    lag = views.lag()
    return bool(lag["events_behind"] == 0 and lag["learners_to_refresh"] == 0)


def test_the_child_follows_the_log_the_parent_appends_to(settings: Settings,
                                                        views: ViewsProcess) -> None:
    store = LearningRecordStore(env=settings.event_store_env())
    append(store, [answer("ada", 1, True), answer("ada", 2, False)])
    wait_until(lambda: caught_up(views) and views.lag()["position"] > 0)
    assert views.call(queries.learner_profile, ADA)["statements"] == 2
    assert views.process.pid != os.getpid()


def duckdb_threads(cursor: duckdb.DuckDBPyConnection) -> int:
    """The threads of a DuckDB instance (run in the child: of the views')."""
    row = cursor.execute("SELECT current_setting('threads')").fetchone()
    assert row is not None
    return int(row[0])


def duckdb_default_threads() -> int:
    """DuckDB's own default: the cores, or a container's CPU quota, which os.cpu_count ignores."""
    return duckdb_threads(duckdb.connect())


@pytest.mark.parametrize(("setting", "expected"), [(None, 1), (3, 3), (0, duckdb_default_threads())])
def test_the_views_run_on_one_duckdb_thread_unless_lrs_views_threads_says_otherwise(
        tmp_path: Path, setting: int | None, expected: int) -> None:
    """On a server the views mostly apply a few statements at a time, where DuckDB's threads
    cost more than they save; analysts with cores to spare may give them more (0: DuckDB's default)."""
    settings = Settings(data_dir=tmp_path, **({} if setting is None else {"views_threads": setting}))
    views = ViewsProcess(settings)
    try:
        assert views.call(duckdb_threads) == expected
    finally:
        views.close()


def test_a_query_error_in_the_child_is_raised_in_the_parent(views: ViewsProcess) -> None:
    with pytest.raises(NotFound, match="no learner"):
        views.call(queries.learner_profile, "mbox:mailto:nobody@example.org")


def test_closing_the_handle_stops_the_child(settings: Settings) -> None:
    handle = ViewsProcess(settings)
    pid = handle.process.pid
    assert pid is not None and alive(pid)
    handle.close()
    assert not alive(pid)


def test_a_child_that_died_is_started_again(views: ViewsProcess,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views_process, "RESTART_AFTER", 0.0)
    first = views.process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    views.process.join(timeout=10)
    assert views.lag()["position"] == 0  # answered by a new child
    assert views.process.pid != first


def test_a_query_while_the_child_is_down_says_so(views: ViewsProcess,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views_process, "RESTART_AFTER", 3600.0)
    assert views.process.pid is not None
    os.kill(views.process.pid, signal.SIGKILL)
    views.process.join(timeout=10)
    with pytest.raises(ViewsUnavailable, match="projections process stopped"):
        views.lag()


def test_a_views_file_another_process_holds_fails_the_start_with_the_reason(
        settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('open', flush=True); time.sleep(60)", str(settings.projections_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(RuntimeError, match=r"could not start: .*lock"):
            ViewsProcess(settings)
    finally:
        holder.kill()
        holder.wait()
    duckdb.connect(str(settings.projections_path)).close()  # the file itself is intact


def test_the_child_exits_when_the_server_process_is_killed(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pathlib import Path\n"
         "from lrs.config import Settings\n"
         "from lrs.views_process import ViewsProcess\n"
         "views = ViewsProcess(Settings(data_dir=Path(sys.argv[1])))\n"
         "print(views.process.pid, flush=True)\n"
         "time.sleep(120)\n", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert server.stdout is not None
    child = int(server.stdout.readline())
    assert alive(child)
    server.kill()
    server.wait()
    wait_until(lambda: not alive(child), seconds=15)
