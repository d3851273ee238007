"""`lrs forget LEARNER` and `lrs retention --before DATE`: erasure from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

from lrs.application import LearningRecordStore
from lrs.cli.common import settings_from
from lrs.erasure import forget, learner_of, retention
from lrs.errors import BadRequest
from lrs.store.attachments import attachment_store


def _services(args: argparse.Namespace) -> tuple[LearningRecordStore, Any]:
    settings = settings_from(args)
    store = LearningRecordStore(env=settings.event_store_env())
    return store, attachment_store(settings.attachment_store, settings.store_dir, settings.store)


def cmd_forget(args: argparse.Namespace) -> int:
    learner = learner_of(args.learner)  # a bad learner is refused before anything else
    if not args.yes:
        if not sys.stdin.isatty():
            raise BadRequest("forgetting cannot be undone: confirm with --yes")
        answer = input(f"forget {learner} for good (their statements, documents and views)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing forgotten")
            return 1
    store, attachments = _services(args)
    try:
        report = forget(store, attachments, learner, "cli")
    finally:
        store.close()
    print(f"forgotten: learner {report.learner} (pseudonym)")
    print(f"statements: {report.statements} (of which {report.plaintext_statements} written before"
          " sealing: their bytes stay in the log)")
    print(f"documents: {report.documents}  attachments: {report.attachments}  keys: {report.keys}")
    print(f"database: {report.scrub}")
    print("views: the learner leaves them when the projections next catch up")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    try:
        before = date.fromisoformat(args.before)
    except ValueError:
        raise BadRequest(f"--before {args.before!r}: a date is YYYY-MM-DD") from None
    store, attachments = _services(args)
    try:
        report = retention(store, attachments, before, "cli", args.dry_run)
    finally:
        store.close()
    verb = "would forget" if report.dry_run else "forgot"
    print(f"{verb}: {report.statements} statements stored before {report.before},"
          f" of {report.learners} learners; documents untouched")
    if not report.dry_run:
        print(f"keys: {report.keys}  attachments: {report.attachments}  database: {report.scrub}")
    return 0


def add_commands(commands: Any, add_store_options: Callable[[argparse.ArgumentParser], None]) -> None:
    forget_cmd = commands.add_parser("forget", help="make one learner's data unrecoverable")
    forget_cmd.add_argument("learner", help="an email or an IFI key (mbox:mailto:…, account:HOME|NAME)")
    forget_cmd.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_store_options(forget_cmd)
    forget_cmd.set_defaults(func=cmd_forget)
    keep = commands.add_parser("retention", help="forget every statement stored before a day")
    keep.add_argument("--before", required=True, metavar="DATE", help="YYYY-MM-DD (UTC)")
    keep.add_argument("--dry-run", action="store_true", help="report what would go; change nothing")
    add_store_options(keep)
    keep.set_defaults(func=cmd_retention)
