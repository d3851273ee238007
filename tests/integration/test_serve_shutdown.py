"""`lrs serve` stops as a person stops it: Ctrl-C in its terminal, or SIGTERM from a supervisor.

Ctrl-C reaches every process of the terminal's group, the projections child included; the
server must still stop promptly, with its child, and say nothing alarming on the way out.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

NOISE = ("Traceback", "leaked semaphore", "nanobind: leaked")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "LRS_DATA_DIR": str(data_dir), "LRS_PORT": str(port),
           "LRS_BOOTSTRAP_CREDENTIAL": "admin:admin-secret"}
    process = subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # a terminal's process group of its own
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/health", timeout=1).json()["projections"].get("state"):
                return process, url
        except (httpx.TransportError, ValueError, KeyError, AttributeError):
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"lrs serve did not start: {process.communicate()[1][-2000:]}")


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_lrs_serve_stops_promptly_with_its_child_and_without_noise(tmp_path: Path, how: str) -> None:
    process, _ = start_server(tmp_path)
    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    stopped_quietly(process)


def stopped_quietly(process: subprocess.Popen[str]) -> str:
    """Waits for the server to stop; its stderr, which must say nothing alarming."""
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("lrs serve did not stop within 60 s") from None
    for word in NOISE:
        assert word not in stderr, stderr[-3000:]
    assert group_ends(process.pid), "a process of lrs serve's group outlived it"
    return stderr


def group_ends(group: int, seconds: float = 15.0) -> bool:
    """Whether every process of the group has exited (the resource tracker follows the server)."""
    for _ in range(int(seconds / 0.1)):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)
    return False


@pytest.mark.parametrize("starting", [1, 3])
def test_ctrl_c_while_the_children_start_stops_lrs_serve_quietly(tmp_path: Path,
                                                                 starting: int) -> None:
    """Ctrl-C the moment ``starting`` child processes exist (the projections process first,
    then the workers), each still importing its modules: a child interrupted there printed a
    KeyboardInterrupt traceback, and the parent then failed to start the projections."""
    import psutil

    env = {**os.environ, "LRS_DATA_DIR": str(tmp_path / "data"), "LRS_PORT": str(free_port()),
           "LRS_BOOTSTRAP_CREDENTIAL": "admin:admin-secret", "LRS_WORKERS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "lrs.cli.main", "serve"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 60
    while True:
        with suppress(psutil.Error):
            spawned = [c for c in parent.children()
                       if "spawn_main" in " ".join(c.cmdline())]
            if len(spawned) >= starting:
                break
        assert process.poll() is None and time.monotonic() < deadline, "no child started"
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGINT)
    stderr = stopped_quietly(process)
    assert process.returncode in (0, 130), stderr[-3000:]
