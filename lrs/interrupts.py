"""Ctrl-C and the processes of `lrs serve`.

Ctrl-C reaches every process of the terminal's group. The parent stops its children itself (the
workers through uvicorn's graceful shutdown, the projections process after its own requests),
so a child ignores the interrupt. A child still starting (Python importing its modules) printed
a KeyboardInterrupt traceback instead: a child is started with the interrupt blocked, which
fork and exec keep, and its first step ignores it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def children_start_deaf() -> Iterator[None]:
    """Start child processes inside this. The parent's own Ctrl-C waits the instant and is not
    lost: a blocked signal stays pending until the mask is restored."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_interrupts() -> None:
    """A child's first step: ignore Ctrl-C (a pending one is dropped), then take it off the
    mask it was started with, so a handler installed later (uvicorn's) receives it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
