"""Benchmark: the single writer alone, as its SQLite store grows: CPU and WAL bytes per statement.

In-process: statements are prepared (validated, keys hashed, sealed) beforehand, as the workers
of `lrs serve` do, and only the writer's `store_batches` is timed, in writes of `--group`
statements (what the group committer writes under load). Two stores grow side by side: one
takes statements with the ids their clients gave (random UUIDs), the other statements without,
whose ids the LRS assigns. After the last step it prints which B-trees one write dirtied, from
the pages in the WAL (SQLite's dbstat).

    python bench/writer.py [--stored 200000] [--step 25000] [--group 300]
"""

from __future__ import annotations

import argparse
import collections
import random
import sqlite3
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import make_statement
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings

WRITER = Principal("bench", "bench", frozenset({"all"}), "urn:lrs:credentials")
KINDS = ("client ids", "LRS-assigned ids")


def written_bytes() -> int:
    """Bytes this process passed to write calls (the WAL's pages, mostly)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def groups(app: LearningRecordStore, rng: random.Random, count: int, size: int,
           with_ids: bool) -> list[list[list[Any]]]:
    """``count`` writes of ``size`` statements, in requests of 100, prepared as a worker would."""
    made = []
    for _ in range(count):
        requests = []
        for _ in range(max(1, size // 100)):
            docs = [make_statement(rng, 1000, 500) for _ in range(min(100, size))]
            if not with_ids:
                for doc in docs:
                    del doc["id"]
            requests.append(app.work_ahead(prepare_statements(docs, WRITER, "1.0.3", 1000)))
        made.append(requests)
    return made


def dirtied(folder: Path, app: LearningRecordStore, write: list[list[Any]]) -> collections.Counter[str]:
    """Pages of each B-tree one write put in the WAL."""
    database = str(folder / "events.sqlite3")
    with sqlite3.connect(database) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        app.store_batches(write)
        wal = Path(database + "-wal").read_bytes()
        page = struct.unpack(">I", wal[8:12])[0]
        frames = {struct.unpack(">I", wal[32 + i * (24 + page):36 + i * (24 + page)])[0]
                  for i in range((len(wal) - 32) // (24 + page))}
        names = dict(con.execute("SELECT pageno, name FROM dbstat"))
    return collections.Counter(names.get(p, "?") for p in frames)


def main(args: argparse.Namespace) -> None:
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="lrs-bench-writer-") as scratch:
        folders = [Path(scratch) / "client", Path(scratch) / "assigned"]
        apps = [LearningRecordStore(env=Settings(data_dir=f).event_store_env()) for f in folders]
        print(f"\n## The writer alone (SQLite), writes of {args.group} statements\n")
        print("| stored | " + " | ".join(f"{k}: CPU us/statement | {k}: KiB written/statement"
                                         for k in KINDS) + " |")
        print("|---:|---:|---:|---:|---:|")
        stored = 0
        while stored < args.stored:
            row = []
            per_step = max(1, args.step // args.group)
            for app, with_ids in zip(apps, (True, False), strict=True):
                writes = groups(app, rng, per_step, args.group, with_ids)
                before, started = written_bytes(), time.process_time()
                for write in writes:
                    app.store_batches(write)
                count = per_step * args.group
                row.append(f"{(time.process_time() - started) / count * 1e6:.0f} |"
                           f" {(written_bytes() - before) / count / 1024:.1f}")
            stored += per_step * args.group
            print(f"| {stored:,} | " + " | ".join(row) + " |", flush=True)
        print(f"\nPages one write of {args.group} statements dirtied, at {stored:,} stored:\n")
        counts = [dirtied(folder, app, groups(app, rng, 1, args.group, with_ids)[0])
                  for folder, app, with_ids in zip(folders, apps, (True, False), strict=True)]
        print("| B-tree | " + " | ".join(KINDS) + " |")
        print("|---|---:|---:|")
        for name in sorted(set(counts[0]) | set(counts[1]), key=lambda n: -counts[0][n]):
            print(f"| {name} | {counts[0][name]:,} | {counts[1][name]:,} |")
        print(f"| all | {sum(counts[0].values()):,} | {sum(counts[1].values()):,} |")
        for app in apps:
            app.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--step", type=int, default=25_000)
    parser.add_argument("--group", type=int, default=300)
    main(parser.parse_args())
