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
import uuid
from datetime import datetime, timedelta
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
    # New ids, so a second run on the same folder is not a replay; and times after the seeded
    # history, as live traffic has (older times are late arrivals, which refold their learner).
    shift = timedelta(days=args.days + 1)
    for statement in stream:
        statement["id"] = str(uuid.uuid4())
        moment = datetime.fromisoformat(statement["timestamp"].replace("Z", "+00:00")) + shift
        statement["timestamp"] = moment.isoformat().replace("+00:00", "Z")
    with running_server(data_dir=str(data_dir)) as server:
        auth = {"Authorization": "Basic " + base64.b64encode(CREDENTIAL.encode()).decode()}
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            while (await client.get("/api/health")).json()["projections"]["events_behind"] > 0:
                await asyncio.sleep(0.5)  # the server opens the rebuilt views first
            lags: list[float] = []
            watchers: list[asyncio.Task[None]] = []

            async def profile_count(learner: str) -> int:
                response = await client.get(f"/api/learners/{learner}/profile", headers=auth)
                return int(response.json()["statements"]) if response.status_code == 200 else 0

            async def watch(learner: str, expected: int, acknowledged: float) -> None:
                # Visibility lag: from the POST's acknowledgement until the learner's profile
                # counts the statement (pages applied and the learner refolded).
                while await profile_count(learner) < expected:
                    await asyncio.sleep(0.05)
                lags.append(time.perf_counter() - acknowledged)

            started = time.perf_counter()
            sent = 0
            batch = max(args.rate // 10, 1)
            while sent < len(stream) - batch:
                due = started + sent / args.rate
                await asyncio.sleep(max(due - time.perf_counter(), 0))
                chunk = stream[sent:sent + batch]
                # One watcher at a time, so the measuring adds at most 20 requests a second.
                sampled = (sent // batch) % 5 == 0 and all(w.done() for w in watchers)
                if sampled:
                    account = chunk[-1]["actor"]["account"]
                    learner = quote(f"account:{account['homePage']}|{account['name']}", safe="")
                    mine = sum(s["actor"]["account"]["name"] == account["name"] for s in chunk)
                    before = await profile_count(learner)
                response = await client.post("/xAPI/statements", content=orjson.dumps(chunk),
                                             headers={**server.headers})
                response.raise_for_status()
                if sampled:
                    watchers.append(asyncio.create_task(
                        watch(learner, before + mine, time.perf_counter())))
                sent += batch
            await asyncio.gather(*watchers)
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
          f" (achieved {achieved:,.0f}/s), projections in their child process of `lrs serve`\n")
    print("| measure | p50 | p95 | max |")
    print("|---|---:|---:|---:|")
    print(f"| visibility lag (POST acknowledged -> in the learner's profile), s |"
          f" {statistics.median(lags):.2f} | {pct(lags, 95) / 1000:.2f} |"
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
    parser.add_argument("--live-only", action="store_true", help="skip the rebuild measurement")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lrs-projections-bench-"))
    if not (data_dir / "events.sqlite3").exists():
        started = time.perf_counter()
        statements = seed(data_dir, args.learners, args.days)
        print(f"seeded {statements:,} simulated statements ({args.learners} learners,"
              f" {args.days} days) in {time.perf_counter() - started:.0f} s\n")
    if not args.live_only:
        rebuild(data_dir)
    asyncio.run(live(data_dir, args))


def rebuild(data_dir: Path) -> None:
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


if __name__ == "__main__":
    main()
