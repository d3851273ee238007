"""Benchmark: projections. Rebuild throughput over a simulated school, live lag while the LRS
ingests at a steady rate, and the p95 of the profile and class endpoints.

Targets (2 cores): rebuild >= 20,000 events/s for 1M statements; lag under 2 s at 1,000
statements/s.

    python bench/projections.py [--learners 2000 --days 90] [--rate 1000 --seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import CREDENTIAL, running_server
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.committer import GroupCommitter
from lrs.config import Settings
from projections.runner import ProjectionRunner
from projections.simulator import School, simulate


def seed(data_dir: Path, learners: int, days: int) -> int:
    settings = Settings(data_dir=data_dir)
    store = LearningRecordStore(env=settings.event_store_env())
    committer = GroupCommitter(store)
    writer = Principal("simulator", "simulator", frozenset({"all"}), settings.authority_home_page)
    result = simulate(learners, days, 1, lambda batch: committer.store(
        prepare_statements(batch, writer, "1.0.3", len(batch))), batch=1000)
    committer.close()
    store.close()
    return result.statements


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] * 1000


async def live(data_dir: Path, args: argparse.Namespace) -> None:
    school = School(args.learners, seed=99)
    wanted = args.rate * args.seconds + 1
    stream: list[dict[str, Any]] = []
    for day in school.days(args.days + 60):  # only as many days as the run needs
        stream.extend(day)
        if len(stream) >= wanted:
            break
    stream = stream[:wanted]
    with running_server(data_dir=str(data_dir)) as server:
        auth = {"Authorization": "Basic " + base64.b64encode(CREDENTIAL.encode()).decode()}
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            while (await client.get("/api/health")).json()["projections"]["events_behind"] > 0:
                await asyncio.sleep(0.5)  # the server opens the rebuilt views first
            lags: list[float] = []
            started = time.perf_counter()
            sent = 0
            batch = max(args.rate // 10, 1)
            while sent < len(stream) - batch:
                due = started + sent / args.rate
                await asyncio.sleep(max(due - time.perf_counter(), 0))
                response = await client.post("/xAPI/statements", content=orjson.dumps(
                    stream[sent:sent + batch]), headers={**server.headers})
                response.raise_for_status()
                sent += batch
                if sent % (batch * 5) == 0:
                    health = (await client.get("/api/health")).json()["projections"]
                    lags.append(health["seconds_behind"])
            achieved = sent / (time.perf_counter() - started)
            learners = [s["actor"]["account"]["name"] for s in stream[:200]]
            timings: dict[str, list[float]] = {"profile": [], "class engagement": []}
            rng = random.Random(3)
            class_path = f"/api/classes/{quote('team:Class 1', safe='')}/engagement"
            for _ in range(200):
                learner = quote(f"account:https://school.example.org/sis|{rng.choice(learners)}",
                                safe="")
                for name, path in (("profile", f"/api/learners/{learner}/profile"),
                                   ("class engagement", class_path)):
                    t = time.perf_counter()
                    (await client.get(path, headers=auth)).raise_for_status()
                    timings[name].append(time.perf_counter() - t)
    print(f"\n## Live: {args.rate:,} statements/s offered for {args.seconds} s"
          f" (achieved {achieved:,.0f}/s), embedded runner\n")
    print("| measure | p50 | p95 | max |")
    print("|---|---:|---:|---:|")
    print(f"| projection lag, s | {statistics.median(lags):.2f} | {pct(lags, 95) / 1000:.2f} |"
          f" {max(lags):.2f} |")
    for name, values in timings.items():
        print(f"| GET {name}, ms | {pct(values, 50):.1f} | {pct(values, 95):.1f} |"
              f" {max(values) * 1000:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, help="reuse a folder seeded by an earlier run")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lrs-projections-bench-"))
    if not (data_dir / "events.sqlite3").exists():
        started = time.perf_counter()
        statements = seed(data_dir, args.learners, args.days)
        print(f"seeded {statements:,} simulated statements ({args.learners} learners,"
              f" {args.days} days) in {time.perf_counter() - started:.0f} s\n")
    store = LearningRecordStore(env=Settings(data_dir=data_dir).event_store_env())
    runner = ProjectionRunner(store, data_dir / "views.duckdb", page_size=50_000)
    started = time.perf_counter()
    applied = runner.rebuild()
    elapsed = time.perf_counter() - started
    learners = runner.con.execute("SELECT count(*) FROM learner_profile").fetchone()
    runner.close()
    store.close()
    print("| rebuild | events | learners | seconds | events/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| from position 0 | {applied:,} | {learners[0] if learners else 0:,} | {elapsed:.1f} |"
          f" {applied / elapsed:,.0f} |")
    asyncio.run(live(data_dir, args))


if __name__ == "__main__":
    main()
