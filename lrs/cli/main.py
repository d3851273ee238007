"""The `lrs` command: serve the LRS and manage its credentials."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from lrs.application import LearningRecordStore
from lrs.cli import erasure, export, kafka, mastery, projections
from lrs.cli.common import CommandFailed, UsageError, add_store_options, settings_from, tune_gc
from lrs.config import DEFAULT_STORE
from lrs.credentials import SCOPES
from lrs.errors import LRSError


def _dev_credential(data_dir: Path) -> str:
    """A development credential kept in the data folder, so every `make run` can print it."""
    path = data_dir / "dev-credential"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"dev-{secrets.token_hex(4)}:{secrets.token_urlsafe(18)}\n")
        os.chmod(path, 0o600)
    return path.read_text().strip()


def cmd_serve(args: argparse.Namespace) -> int:
    from contextlib import suppress

    from lrs.api.main import create_app
    from lrs.api.server import build_server

    settings = settings_from(args)
    credential = settings.bootstrap_credential
    if credential is None:
        credential = _dev_credential(settings.data_dir)
        settings = settings.model_copy(update={"bootstrap_credential": credential})
        print(f"development credential (scopes all admin): {credential}")
    print(f"event log: {settings.describe_event_store()}")
    print(f"data folder: {settings.data_dir.resolve()}")
    print(f"xAPI endpoint: http://{settings.host}:{settings.port}/xAPI/")
    if settings.worker_count() > 1:
        from lrs.api.workers import serve_workers

        print(f"workers: {settings.worker_count()} (LRS_WORKERS)")
        return serve_workers(settings.model_copy(update={"workers": settings.worker_count()}))
    server = build_server(create_app(settings), settings)
    tune_gc()
    with suppress(KeyboardInterrupt):  # uvicorn raises the Ctrl-C again once it has shut down
        server.run()
    return 0 if server.started else 1


def _store(args: argparse.Namespace) -> LearningRecordStore:
    """The `default` store's log: it holds the catalogue of stores and every credential."""
    return LearningRecordStore(env=settings_from(args).for_store(DEFAULT_STORE).event_store_env())


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def cmd_credentials_add(args: argparse.Namespace) -> int:
    store = args.store or DEFAULT_STORE
    key, secret = _store(args).issue_credential(
        args.name, args.scopes, key=args.key, classes=args.classes or (), learner=args.learner,
        store=store, reads_stores=_names(args.reads_stores))
    print(f"key: {key}\nsecret: {secret}\nscopes: {' '.join(args.scopes)}")
    if store != DEFAULT_STORE:
        print(f"store: {store}")
    if args.reads_stores:
        print(f"also reads stores: {', '.join(_names(args.reads_stores))}")
    if args.classes:
        print(f"classes: {', '.join(args.classes)}")
    if args.learner:
        print(f"learner: {args.learner}")
    return 0


def cmd_credentials_list(args: argparse.Namespace) -> int:
    rows = _store(args).credentials(args.store)
    print(f"{'key':<24} {'name':<20} {'store':<16} {'status':<8} scopes")
    for c in rows:
        status = "revoked" if c.revoked else "active"
        bound = (f" (classes: {', '.join(c.classes)})" if c.classes
                 else f" (learner: {c.learner})" if c.learner else "")
        reads = f" (also reads: {', '.join(c.reads_stores)})" if c.reads_stores else ""
        print(f"{c.key:<24} {c.name:<20} {c.store:<16} {status:<8} {' '.join(c.scopes)}{bound}"
              f"{reads}")
    return 0


def cmd_stores_create(args: argparse.Namespace) -> int:
    info = _store(args).create_store(args.name)
    print(f"created store {info.name}; issue its credentials with"
          f" lrs credentials add NAME --store {info.name}")
    return 0


def cmd_stores_list(args: argparse.Namespace) -> int:
    print(f"{'store':<42} status")
    for info in _store(args).stores():
        print(f"{info.name:<42} {'archived' if info.archived else 'active'}")
    return 0


def cmd_stores_archive(args: argparse.Namespace) -> int:
    _store(args).archive_store(args.name)
    print(f"archived store {args.name}: its credentials are refused (within 30 s in a running"
          f" server); its data is kept for lrs export --store {args.name}")
    return 0


def cmd_credentials_revoke(args: argparse.Namespace) -> int:
    _store(args).revoke_credential(args.key)
    print(f"revoked {args.key}")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong command line is one line (what is wrong, where the help is) instead
    of the usage block; subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lrs", description="An event-sourced xAPI LRS")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP xAPI server")
    serve.add_argument("--host", help="address to listen on (LRS_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (LRS_PORT)")
    serve.add_argument("--bootstrap-credential", help="key:secret with scopes all and admin"
                       " (LRS_BOOTSTRAP_CREDENTIAL)")
    add_store_options(serve, tenant=False)
    serve.set_defaults(func=cmd_serve)

    credentials = commands.add_parser("credentials", help="manage HTTP Basic credentials")
    actions = credentials.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a credential and print its key and secret")
    add.add_argument("name")
    add.add_argument("--scopes", nargs="+", default=["statements/write", "statements/read/mine"],
                     choices=SCOPES, metavar="SCOPE", help=f"any of: {', '.join(SCOPES)}")
    add.add_argument("--key", help="choose the key instead of a random one")
    add.add_argument("--classes", nargs="+", metavar="CLASS", help="with scope teacher: the"
                     " classes the teacher sees (class ids as in GET /api/classes, e.g. 'team:7B')")
    add.add_argument("--learner", help="with scope learner: the learner it belongs to (an email"
                     " or an IFI key such as account:https://school.example.org/sis|s00001)")
    add.add_argument("--reads-stores", metavar="A,B", help="a district's: other stores whose"
                     " statements it may read (comma-separated; needs a statement-reading scope)")
    add_store_options(add)
    add.set_defaults(func=cmd_credentials_add)
    listing = actions.add_parser("list", help="list credentials (secrets are never shown)")
    add_store_options(listing)
    listing.set_defaults(func=cmd_credentials_list)
    revoke = actions.add_parser("revoke", help="revoke a credential by key")
    revoke.add_argument("key")
    add_store_options(revoke, tenant=False)
    revoke.set_defaults(func=cmd_credentials_revoke)

    stores = commands.add_parser("stores", help="manage stores (each school's own LRS)")
    store_actions = stores.add_subparsers(dest="action", required=True)
    for action, func, text in (("create", cmd_stores_create, "create a store"),
                               ("archive", cmd_stores_archive, "archive a store: its credentials"
                                " are refused, its data kept for export")):
        parser_ = store_actions.add_parser(action, help=text)
        parser_.add_argument("name")
        add_store_options(parser_, tenant=False)
        parser_.set_defaults(func=func)
    store_list = store_actions.add_parser("list", help="list stores")
    add_store_options(store_list, tenant=False)
    store_list.set_defaults(func=cmd_stores_list)
    kafka.add_commands(commands, add_store_options)
    projections.add_commands(commands, add_store_options)
    mastery.add_commands(commands, add_store_options)
    export.add_commands(commands, add_store_options)
    erasure.add_commands(commands, add_store_options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "kafka"):  # one line per request or fetch is noise here
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (UsageError, LRSError, OSError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _one_line(exc: Exception) -> str:
    """A refused setting as the variable that set it and the rule it broke, on one line; its
    value is left out (LRS_EVENT_STORE, for one, may hold a password)."""
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return "; ".join(f"LRS_{'_'.join(str(part) for part in error['loc']).upper()}:"
                         f" {error['msg']}" for error in exc.errors())
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
