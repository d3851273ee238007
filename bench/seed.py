"""Seed an event store with millions of statements in minutes, through the ingest pipeline.

The same path as a POST: ``prepare_statements`` (validation, enrichment, index rows) and the
sealing in a pool of processes, then ``store_batches`` in the parent in large groups (the group
committer's own maximum), so the log and the index are exactly what HTTP would have written,
without HTTP.

    python bench/seed.py --statements 10000000 --data-dir /tmp/lrs-10m [--event-store postgresql://…]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import CREDENTIAL
from bench.ingest import make_statement

GROUP = 5000
CHUNK = 1000
_worker: dict[str, Any] = {}


def _init(settings_json: str) -> None:
    from lrs.application import LearningRecordStore
    from lrs.auth import Authenticator
    from lrs.config import Settings

    settings = Settings.model_validate_json(settings_json)
    store = LearningRecordStore(env=settings.event_store_env())
    key, _, secret = CREDENTIAL.partition(":")
    _worker["principal"] = Authenticator(store, settings.authority_home_page).verify(key, secret)
    _worker["store"] = store  # seals ahead, as a worker of `lrs serve` does


def _prepare(job: tuple[int, int]) -> list[Any]:
    from ingest.pipeline import prepare_statements
    from schemas.validate import parse_json

    seed, count = job
    rng = random.Random(seed)
    body = orjson.dumps([make_statement(rng, 1000, 500) for _ in range(count)])
    store = _worker["store"]
    sealed = store.work_ahead(prepare_statements(parse_json(body), _worker["principal"], "1.0.3",
                                                 count))
    # Taken as acknowledged now: the parent writes the chunks in this order, each chunk's new
    # keys with it, and seeding stops at the first refusal.
    store.sealed_ahead_stored(sealed)
    return sealed


def _jobs(total: int, seed: int) -> Iterator[tuple[int, int]]:
    for number, start in enumerate(range(0, total, CHUNK)):
        yield seed * 1_000_003 + number, min(CHUNK, total - start)


def seed_store(settings: Any, total: int, seed: int = 1, processes: int | None = None,
               progress: bool = True) -> float:
    """Append ``total`` statements; returns the seconds it took."""
    from lrs.application import LearningRecordStore

    store = LearningRecordStore(env=settings.event_store_env())
    key, _, secret = CREDENTIAL.partition(":")
    store.ensure_credential(key, secret, ["all"], name="bench")
    started = time.perf_counter()
    done = 0
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes or max(1, (multiprocessing.cpu_count() or 2) - 1),
                      initializer=_init, initargs=(settings.model_dump_json(),)) as pool:
        group: list[Any] = []
        for prepared in pool.imap(_prepare, _jobs(total, seed), chunksize=1):
            group.append(prepared)
            if sum(map(len, group)) >= GROUP:
                done += _append(store, group)
                group = []
                if progress:
                    rate = done / (time.perf_counter() - started)
                    print(f"\r  seeded {done:,} of {total:,} ({rate:,.0f}/s)", end="", flush=True)
        done += _append(store, group)
    store.close()
    if settings.event_store:
        settle_postgres(settings.event_store)
    if progress:
        print()
    return time.perf_counter() - started


def settle_postgres(url: str) -> None:
    """What autovacuum does soon after a bulk insert (and never where it is off, as on these
    machines): planner statistics, and a visibility map, without which every index scan of the
    key table also read the table's pages (agent+verb+activity at 1M: 155 ms). Hint bits too:
    left to the first reads, setting them stalled document reads for up to 1.5 s in the first
    seconds of a benchmark."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def _append(store: Any, group: list[Any]) -> int:
    if not group:
        return 0
    for outcome in store.store_batches(group):
        if isinstance(outcome, Exception):
            raise outcome
    return sum(map(len, group))


if __name__ == "__main__":
    from lrs.config import Settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--event-store", default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    chosen = Settings(data_dir=args.data_dir, event_store=args.event_store)
    seconds = seed_store(chosen, args.statements, args.seed)
    print(f"{args.statements:,} statements in {seconds:,.0f} s"
          f" ({args.statements / seconds:,.0f} statements/s)")
