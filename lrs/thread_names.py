"""A thread's name given to the operating system as well as to Python.

Linux shows every thread of the server as "python" otherwise: `top -H`, `ps -L` and
/proc/<pid>/task/<tid>/comm then name the statement writer, the busiest thread of `lrs serve`
and the one every write waits for, only by number. bench/ingest.py finds it by this name to
report how much of the load it ran and how long it waited for a core.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable

_PR_SET_NAME = 15  # prctl(2): the calling thread's name, at most 15 bytes and a NUL
_NAME_BYTES = 15


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


_set = _prctl()


def os_name(name: str) -> bytes:
    """What the kernel keeps of ``name``: at most 15 bytes of UTF-8, whole characters."""
    return name.encode("utf-8", "replace")[:_NAME_BYTES].decode("utf-8", "ignore").encode()


def name_os_thread() -> None:
    """Give the calling thread's Python name to the operating system (Linux; elsewhere
    nothing). A name it cannot take leaves the old one: naming is never worth a failure."""
    if _set is not None:
        _set(_PR_SET_NAME, ctypes.c_char_p(os_name(threading.current_thread().name)), 0, 0, 0)
