"""What every `lrs` command shares: settings from flags over LRS_* variables."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from lrs.config import DEFAULT_STORE, Settings, check_store_name

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
    store = getattr(args, "store", None)
    if store is None:
        return Settings(**overrides)
    try:
        check_store_name(store)
    except ValueError as exc:
        raise UsageError(f"--store {exc}") from None
    settings = Settings(**overrides).for_store(store)
    if not settings.is_default_store:
        from lrs.application import LearningRecordStore

        catalogue = LearningRecordStore(env=settings.for_store(DEFAULT_STORE).event_store_env())
        try:
            if catalogue.store_info(store) is None:
                raise UsageError(f"--store {store}: no such store (lrs stores list)")
        finally:
            catalogue.close()
    return settings


def tune_gc() -> None:
    """Ingest allocates many short-lived objects; a larger young generation and frozen start-up
    objects keep the collector from rescanning the same heap on every batch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def add_store_options(parser: argparse.ArgumentParser, tenant: bool = True) -> None:
    """Where the data is; with ``tenant``, also which store (school) of it to act on."""
    parser.add_argument("--data-dir", type=Path, help="data folder (LRS_DATA_DIR)")
    parser.add_argument("--event-store", help="postgresql://… or sqlite:///… (LRS_EVENT_STORE)")
    if tenant:
        parser.add_argument("--store", metavar="NAME", help="the store (a school's own LRS in"
                            " this deployment) to act on (LRS_STORE; default: default)")
