"""Erasure figures (issue 14): forgetting one learner among many stored statements, what is left
of them on disk, and what sealing costs ingest.

    python bench/erasure.py --statements 1000000 --data-dir /tmp/lrs-erasure [--event-store postgresql://…]

1. Ingest: the writer's append (``store_batches``) of batches of 100 prepared statements, into a
   fresh store, with sealing and with LRS_SEAL_STATEMENTS=false; rounds alternate, best kept.
   The disk makes these rates vary from run to run by more than sealing costs, so the CPU the
   writer spends sealing is also measured apart (building the events, with and without), and
   set against the plaintext writer's time per statement.
2. Forget: seed ``--statements`` through the ingest pipeline (bench/seed.py), add one learner
   with an email and a name (and other learners' statements naming them), build the views, then
   time ``lrs forget`` and the views' catch-up (with the compaction of their file), and count the
   bytes of the learner's email and name left in any file of the data folder (and, on
   PostgreSQL, in any row).
"""

from __future__ import annotations

import argparse
import mmap
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import CREDENTIAL
from bench.ingest import make_statement
from bench.seed import seed_store

EMAIL = "erase.me.please@example.org"
NAME = "Erasmus Forgettable"
BATCH = 100


def _principal(store: Any, settings: Any) -> Any:
    from lrs.auth import Authenticator

    key, _, secret = CREDENTIAL.partition(":")
    store.ensure_credential(key, secret, ["all"], name="bench")
    return Authenticator(store, settings.authority_home_page).verify(key, secret)


def ingest_rate(settings: Any, statements: int, mode: str) -> tuple[float, float, float]:
    """Statements a second the writer appends, in batches of 100, into a fresh store, and the
    microseconds a statement's sealing ahead took where the request was read.

    ``mode``: ``plain`` (LRS_SEAL_STATEMENTS=false), ``writer`` (sealed by the writer: the Kafka
    and CLI path) or ``ahead`` (sealed before the writer, as `lrs serve` does in the process
    that read the request; with several workers, in parallel with the writer). Also the events'
    bytes on disk per statement."""
    from ingest.pipeline import prepare_statements
    from lrs.application import LearningRecordStore
    from schemas.validate import parse_json

    env = settings.event_store_env() | {"LRS_SEAL_STATEMENTS": "false" if mode == "plain" else "true"}
    store = LearningRecordStore(env=env)
    principal = _principal(store, settings)
    rng = random.Random(7)
    writing = sealing = 0.0
    for _ in range(statements // BATCH):
        # Prepared untimed, one batch at a time as requests come: holding every prepared batch
        # made the collector's passes, not the writer, the difference between the modes.
        batch = prepare_statements(parse_json(orjson.dumps(
            [make_statement(rng, 1000, 500) for _ in range(BATCH)])), principal, "1.0.3", BATCH)
        if mode == "ahead":  # each batch as its request would: after the writes before it
            started = time.perf_counter()
            batch = store.work_ahead(batch)
            sealing += time.perf_counter() - started
        started = time.perf_counter()
        outcome = store.store_batches([batch])[0]
        writing += time.perf_counter() - started
        if isinstance(outcome, Exception):
            raise outcome
        if mode == "ahead":
            store.sealed_ahead_stored(batch)
    events_bytes = _events_bytes(store, settings)
    store.close()
    return statements / writing, sealing / statements * 1e6, events_bytes / statements


def writer_sealing_us(settings: Any, batches: int = 50, rounds: int = 15) -> tuple[float, float]:
    """The writer's CPU per statement to build events, plaintext and sealed (every learner's key
    already made), medians of rounds that alternate: the sealing a writer does itself, measured
    apart from the disk, which varies from one run to the next more than sealing costs."""
    from datetime import UTC, datetime

    from ingest.pipeline import prepare_statements
    from lrs.application import LearningRecordStore
    from schemas.validate import parse_json

    store = LearningRecordStore(env=settings.event_store_env())
    principal = _principal(store, settings)
    rng = random.Random(7)
    prepared = [prepare_statements(parse_json(orjson.dumps(
        [make_statement(rng, 1000, 500) for _ in range(BATCH)])), principal, "1.0.3", BATCH)
        for _ in range(batches)]
    now = datetime.now(UTC)
    stored = now.isoformat()
    encoder, ring = store.statement_events, store.key_ring
    made = ring.batch(stored[:10])
    for batch in prepared:
        encoder.events(batch, stored, now, made)
    ring.committed(made)  # as after a write: the keys are cached

    def per_statement(sealed: bool) -> float:
        started = time.process_time()
        for batch in prepared:
            encoder.events(batch, stored, now, ring.batch(stored[:10]) if sealed else None)
        return (time.process_time() - started) / (batches * BATCH) * 1e6

    plain, sealed = [], []
    for _ in range(rounds):
        plain.append(per_statement(False))
        sealed.append(per_statement(True))
    store.close()
    return statistics.median(plain), statistics.median(sealed)


def _events_bytes(store: Any, settings: Any) -> int:
    """The events' bytes on disk: the events table's (PostgreSQL) or its share of the file."""
    if settings.event_store:
        with store.recorder.datastore.get_connection() as conn:
            row = conn.execute("SELECT pg_total_relation_size(%s) AS size",
                               [store.recorder.events_table_name]).fetchone()
            return int(row["size"])
    with store.recorder.datastore.transaction(commit=False) as c:
        c.execute("SELECT sum(pgsize) AS size FROM dbstat WHERE name = ?",
                  [store.recorder.events_table_name])
        return int(c.fetchone()["size"] or 0)


def _fresh(settings: Any, folder: Path) -> Any:
    if settings.event_store:
        import psycopg

        with psycopg.connect(settings.event_store, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
            for table in tables:
                conn.execute(f'DROP TABLE "{table}" CASCADE')
    return settings.model_copy(update={"data_dir": folder})


def learner_statements(count: int) -> list[dict[str, Any]]:
    me = {"objectType": "Agent", "mbox": f"mailto:{EMAIL}", "name": NAME}
    docs = []
    for n in range(count):
        docs.append({"id": str(uuid.uuid4()), "actor": me,
                     "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                     "object": {"id": f"https://courses.example.org/activities/{n % 50}"},
                     "result": {"success": n % 3 != 0, "duration": "PT5M"},
                     "timestamp": "2026-10-02T10:00:00Z"})
        if n % 10 == 0:  # a classmate mentions them
            docs.append({"id": str(uuid.uuid4()),
                         "actor": {"objectType": "Agent", "name": "Learner 1",
                                   "account": {"homePage": "https://sis.example.org",
                                               "name": "s000001"}},
                         "verb": {"id": "http://id.tincanapi.com/verb/mentored"}, "object": me,
                         "timestamp": "2026-10-02T11:00:00Z"})
    return docs


def bytes_left(folder: Path, needles: list[bytes]) -> int:
    found = 0
    for path in folder.rglob("*"):
        if path.is_file() and path.stat().st_size:
            with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                for needle in needles:
                    at = data.find(needle)
                    while at != -1:
                        found += len(needle)
                        at = data.find(needle, at + 1)
    return found


def rows_left(url: str, needles: list[str]) -> int:
    import psycopg

    found = 0
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        for table in tables:
            for needle in needles:
                row = conn.execute(f'SELECT count(*) FROM "{table}" t WHERE position(%s IN t::text) > 0',
                                   [needle]).fetchone()
                found += int(row[0]) if row else 0
    return found


def forget_figures(settings: Any, statements: int, views: bool) -> dict[str, Any]:
    from ingest.pipeline import prepare_statements
    from lrs.application import LearningRecordStore
    from lrs.erasure import forget
    from lrs.store.attachments import attachment_store
    from projections.runner import ProjectionRunner
    from schemas.validate import parse_json

    figures: dict[str, Any] = {"stored": statements}
    figures["seed_s"] = seed_store(settings, statements)
    store = LearningRecordStore(env=settings.event_store_env())
    principal = _principal(store, settings)
    docs = learner_statements(200)
    outcome = store.store_batches([prepare_statements(parse_json(orjson.dumps(docs)), principal,
                                                      "1.0.3", len(docs))])[0]
    if isinstance(outcome, Exception):
        raise outcome
    runner = None
    if views:
        started = time.perf_counter()
        runner = ProjectionRunner(store, settings.data_dir / "views.duckdb")
        runner.catch_up()
        runner.con.execute("CHECKPOINT")
        figures["views_build_s"] = time.perf_counter() - started
    needles = [EMAIL.encode(), NAME.encode()]
    figures["bytes_before"] = bytes_left(settings.data_dir, needles)
    started = time.perf_counter()
    report = forget(store, attachment_store(None, settings.data_dir), EMAIL, "bench")
    figures["forget_s"] = time.perf_counter() - started
    figures["forgotten_statements"] = report.statements
    if runner is not None:
        started = time.perf_counter()
        runner.catch_up()  # applies the erasure, then compacts the views file
        figures["views_erasure_s"] = time.perf_counter() - started
        runner.close()
    figures["bytes_after"] = bytes_left(settings.data_dir, needles)
    if settings.event_store:
        figures["rows_after"] = rows_left(settings.event_store, [EMAIL, NAME])
    store.close()
    return figures


def main() -> None:
    from lrs.config import Settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--ingest-statements", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--event-store", default=None)
    parser.add_argument("--no-views", action="store_true", help="skip building the views")
    parser.add_argument("--ingest-only", action="store_true", help="only the ingest figures")
    args = parser.parse_args()
    base = Settings(data_dir=args.data_dir, event_store=args.event_store, projections="off")
    modes = ("plain", "writer", "ahead")
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    ahead_us: list[float] = []
    sizes: dict[str, float] = {}
    args.data_dir.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(args.rounds):
        for mode in modes:
            with tempfile.TemporaryDirectory(dir=args.data_dir.parent) as scratch:
                settings = _fresh(base, Path(scratch))
                rate, micros, sizes[mode] = ingest_rate(settings, args.ingest_statements, mode)
                rates[mode].append(rate)
                if mode == "ahead":
                    ahead_us.append(micros)
    plain, by_writer, ahead = (max(rates[mode]) for mode in modes)
    with tempfile.TemporaryDirectory(dir=args.data_dir.parent) as scratch:
        plain_events_us, sealed_events_us = writer_sealing_us(_fresh(base, Path(scratch)))
    sealing_us = sealed_events_us - plain_events_us
    store_name = "PostgreSQL" if args.event_store else "SQLite"
    rows = [
        ("ingest, writer only, batch 100, plaintext (statements/s)", f"{plain:,.0f}"),
        ("  sealed by the writer (Kafka, CLI) (statements/s)", f"{by_writer:,.0f}"),
        ("  sealing cost in the writer (slower by)", f"{(1 - by_writer / plain) * 100:.1f} %"),
        ("  sealed ahead (HTTP: lrs serve) (statements/s)", f"{ahead:,.0f}"),
        ("  sealing cost with sealing ahead (slower by)", f"{(1 - ahead / plain) * 100:.1f} %"),
        ("  sealing ahead: CPU in the request's process (us/statement)",
         f"{min(ahead_us):,.1f}"),
        ("sealing in the writer: CPU (us/statement, median of 15 rounds)", f"{sealing_us:,.1f}"),
        ("  against the plaintext writer's time per statement",
         f"{sealing_us * plain / 1e4:.1f} %"),
        ("events on disk, plaintext (bytes/statement)", f"{sizes['plain']:,.0f}"),
        ("events on disk, sealed (bytes/statement)", f"{sizes['ahead']:,.0f}"),
    ]
    if args.ingest_only:
        _print(store_name, rows)
        return
    args.data_dir.mkdir(parents=True, exist_ok=True)
    figures = forget_figures(_fresh(base, args.data_dir), args.statements, not args.no_views)
    rows += [
        ("statements stored before the forget", f"{figures['stored'] + 220:,}"),
        ("seeding (s)", f"{figures['seed_s']:,.0f}"),
        ("the learner's statements forgotten", f"{figures['forgotten_statements']:,}"),
        ("bytes of email and name on disk before", f"{figures['bytes_before']:,}"),
        ("lrs forget (s, incl. checkpoint/VACUUM FULL)", f"{figures['forget_s']:,.2f}"),
    ]
    if "views_build_s" in figures:
        rows += [("views: build (s)", f"{figures['views_build_s']:,.0f}"),
                 ("views: apply the erasure and compact the file (s)",
                  f"{figures['views_erasure_s']:,.1f}")]
    rows.append(("bytes of email and name on disk after", f"{figures['bytes_after']:,}"))
    if "rows_after" in figures:
        rows.append(("PostgreSQL rows holding email or name after", f"{figures['rows_after']:,}"))
    _print(store_name, rows)


def _print(store_name: str, rows: list[tuple[str, str]]) -> None:
    print(f"\nerasure on {store_name}")
    print(f"{'figure':<64} {'value':>14}")
    for label, value in rows:
        print(f"{label:<64} {value:>14}")


if __name__ == "__main__":
    main()
