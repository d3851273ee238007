"""A server thread is named to the operating system as it is to Python (lrs/thread_names.py)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from lrs.thread_names import name_os_thread, os_name

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names threads on Linux")


def _os_name_of_a_thread_named(name: str) -> str:
    seen: list[str] = []

    def run() -> None:
        name_os_thread()
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    return seen[0]


@linux_only
def test_the_os_shows_a_thread_by_its_python_name() -> None:
    assert _os_name_of_a_thread_named("lrs-writer") == "lrs-writer"


@linux_only
def test_a_long_name_is_cut_to_the_fifteen_bytes_the_kernel_keeps() -> None:
    assert _os_name_of_a_thread_named("lrs-hub-worker-12") == "lrs-hub-worker-"


def test_a_name_is_cut_to_whole_characters_of_utf8() -> None:
    assert os_name("é" * 10) == ("é" * 7).encode()  # 14 bytes: an eighth é would make 16
