"""`lrs sql` and `lrs simulate` against a real `lrs serve`, as a person types them.

`--url` takes the xAPI endpoint `lrs serve` prints as well as the server's root, and every
expected failure is one line on stderr naming the URL, with exit 1 (or 2 for a wrong command
line), never a traceback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CREDENTIAL = "admin:admin-secret-for-urls"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LRS_URL", "LRS_CREDENTIAL")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The root URL of a running `lrs serve` (with its projections, so /api/sql answers)."""
    port = free_port()
    env = environment(LRS_DATA_DIR=str(tmp_path_factory.mktemp("serve")), LRS_PORT=str(port),
                      LRS_BOOTSTRAP_CREDENTIAL=CREDENTIAL)
    process = subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).json()["projections"].get("state"):
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            assert process.poll() is None, process.communicate()[1][-2000:]
            time.sleep(0.1)
        else:
            raise AssertionError("lrs serve did not start within 30 s")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def lrs(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lrs.cli.main", *argv], env=environment(),
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("path", ["/xAPI/", ""], ids=["xapi-endpoint", "server-root"])
def test_sql_takes_the_xapi_endpoint_serve_prints_or_the_server_root(root: str, path: str) -> None:
    result = lrs("sql", "SELECT 41 + 1 AS answer", "--url", root + path, "--credential", CREDENTIAL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["answer", "------", "42"]


def test_lrs_url_takes_the_xapi_endpoint_serve_prints(root: str) -> None:
    result = subprocess.run([sys.executable, "-m", "lrs.cli.main", "sql", "SELECT 1 AS one"],
                            env=environment(LRS_URL=f"{root}/xAPI/", LRS_CREDENTIAL=CREDENTIAL),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_simulate_takes_the_xapi_endpoint_serve_prints(root: str, tmp_path: Path) -> None:
    result = lrs("simulate", "--learners", "3", "--days", "7", "--url", f"{root}/xAPI/",
                 "--credential", CREDENTIAL, "--truth", str(tmp_path / "truth.json"))
    assert result.returncode == 0, result.stderr
    assert "statements; ground truth in" in result.stdout
    assert result.stderr == ""  # not a terminal: no progress bar
    statements = httpx.get(f"{root}/xAPI/statements", params={"limit": "1"}, auth=tuple(
        CREDENTIAL.split(":")), headers={"X-Experience-API-Version": "1.0.3"}).json()["statements"]
    assert statements


def test_a_refused_connection_is_one_line_naming_the_url_and_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}/xAPI/"
    result = lrs("sql", "SELECT 1", "--url", url, "--credential", CREDENTIAL)
    assert result.returncode == 1
    line = one_line(result)
    assert url in line and "lrs serve" in line


def test_a_bad_credential_is_one_line_naming_the_url_and_exit_1(root: str) -> None:
    result = lrs("sql", "SELECT 1", "--url", f"{root}/xAPI/", "--credential", "admin:wrong-secret")
    assert result.returncode == 1
    line = one_line(result)
    assert f"{root}/xAPI/" in line and "credential admin" in line and "wrong-secret" not in line


def test_a_malformed_url_is_one_line_naming_it_and_exit_1(root: str) -> None:
    url = root.replace("http://", "http//") + "/xAPI/"
    result = lrs("sql", "SELECT 1", "--url", url, "--credential", CREDENTIAL)
    assert result.returncode == 1
    assert url in one_line(result)


def test_a_url_where_no_lrs_answers_is_one_line_naming_it_and_exit_1(root: str) -> None:
    result = lrs("sql", "SELECT 1", "--url", f"{root}/not-the-lrs/", "--credential", CREDENTIAL)
    assert result.returncode == 1
    assert f"{root}/not-the-lrs/" in one_line(result)


def test_a_missing_option_is_one_line_and_exit_2(root: str) -> None:
    result = lrs("sql", "--url", f"{root}/xAPI/", "--credential", CREDENTIAL)
    assert result.returncode == 2
    assert "required: query" in one_line(result)
