"""What every `lrs` command shares: settings from flags over LRS_* variables."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from lrs.config import Settings

_FLAG_SETTINGS = ("host", "port", "data_dir", "bootstrap_credential", "event_store")


class UsageError(Exception):
    """The command line cannot work as given (a missing option, a credential without a secret):
    `lrs` prints the message on one line and exits 2, as argparse does."""


class CommandFailed(Exception):
    """The command was right but what it needed was not there (an LRS that does not answer, a
    refused credential, no views yet): one line naming what was tried and what to do, exit 1."""


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name) for name in _FLAG_SETTINGS
                 if getattr(args, name, None) is not None}
    return Settings(**overrides)


def tune_gc() -> None:
    """Ingest allocates many short-lived objects; a larger young generation and frozen start-up
    objects keep the collector from rescanning the same heap on every batch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data folder (LRS_DATA_DIR)")
    parser.add_argument("--event-store", help="postgresql://… or sqlite:///… (LRS_EVENT_STORE)")
