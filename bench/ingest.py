"""Benchmark: statement ingest throughput and filtered-query latency over real HTTP.

Prints two tables. Targets on a 2-core machine: >= 3,000 statements/s in batches of 100 at
concurrency 8, and p95 < 50 ms for GET filtered by agent, verb and activity at 100k statements.

    python bench/ingest.py [--stored 100000] [--event-store postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Server, running_server

VERBS = [f"http://adlnet.gov/expapi/verbs/{v}" for v in
         ("attempted", "answered", "completed", "passed", "failed", "experienced", "progressed",
          "commented", "shared", "mastered")]


def make_statement(rng: random.Random, learners: int, activities: int) -> dict[str, Any]:
    learner = rng.randrange(learners)
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "actor": {"objectType": "Agent", "name": f"Learner {learner}",
                  "account": {"homePage": "https://sis.example.org", "name": f"s{learner:06d}"}},
        "verb": {"id": rng.choice(VERBS), "display": {"en-US": "did"}},
        "object": {"objectType": "Activity",
                   "id": f"https://courses.example.org/activities/{rng.randrange(activities)}",
                   "definition": {"name": {"en-US": "An activity"},
                                  "type": "http://adlnet.gov/expapi/activities/assessment"}},
        "result": {"score": {"scaled": round(rng.random(), 2)}, "success": rng.random() > 0.4,
                   "duration": f"PT{rng.randrange(30, 900)}S"},
        "context": {"registration": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "contextActivities": {"parent": [{"id": "https://courses.example.org/c/1"}]}},
        "timestamp": "2026-10-01T10:00:00.000Z",
    }


async def post_load(server: Server, batch: int, total: int, concurrency: int,
                    rng: random.Random) -> tuple[float, list[float]]:
    bodies = [orjson.dumps([make_statement(rng, 1000, 500) for _ in range(batch)])
              for _ in range(total // batch)]
    latencies: list[float] = []
    queue = list(bodies)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            response = await client.post("/xAPI/statements", content=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, limits=limits,
                                 timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(bodies) * batch / elapsed, latencies


async def seed(server: Server, count: int, rng: random.Random) -> None:
    done = 0
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120) as client:
        while done < count:
            size = min(1000, count - done)
            tasks = []
            for _ in range(4):
                body = orjson.dumps([make_statement(rng, 1000, 500) for _ in range(size)])
                tasks.append(client.post("/xAPI/statements", content=body))
            for response in await asyncio.gather(*tasks):
                response.raise_for_status()
            done += 4 * size


async def query_latency(server: Server, params_of: Any, rounds: int,
                        rng: random.Random) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            response = await client.get("/xAPI/statements", params=params_of(rng))
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] * 1000 if len(values) > 1 else 0.0


def agent_param(rng: random.Random) -> str:
    n = rng.randrange(1000)
    return orjson.dumps({"account": {"homePage": "https://sis.example.org",
                                     "name": f"s{n:06d}"}}).decode()


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    with running_server(args.event_store) as server:
        print(f"## POST /xAPI/statements, concurrency {args.concurrency}"
              f" ({args.event_store or 'SQLite'})\n")
        print("| batch | statements | statements/s | p50 ms | p95 ms |")
        print("|---:|---:|---:|---:|---:|")
        for batch, total in ((1, 2000), (10, 10000), (100, 30000)):
            rate, lat = await post_load(server, batch, total, args.concurrency, rng)
            print(f"| {batch} | {total} | {rate:,.0f} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} |")
        stored_now = 2000 + 10000 + 30000
        if args.stored > stored_now:
            await seed(server, args.stored - stored_now, rng)
        print(f"\n## GET /xAPI/statements at {max(args.stored, stored_now):,} stored,"
              f" limit {args.limit}\n")
        print("| filter | requests | p50 ms | p95 ms |")
        print("|---|---:|---:|---:|")
        cases = {
            "agent": lambda r: {"agent": agent_param(r), "limit": args.limit},
            "verb": lambda r: {"verb": r.choice(VERBS), "limit": args.limit},
            "activity": lambda r: {"activity": f"https://courses.example.org/activities/"
                                               f"{r.randrange(500)}", "limit": args.limit},
            "agent+verb+activity": lambda r: {"agent": agent_param(r), "verb": r.choice(VERBS),
                                              "activity": "https://courses.example.org/activities/"
                                                          f"{r.randrange(500)}",
                                              "limit": args.limit},
            "agent, related": lambda r: {"agent": agent_param(r), "related_agents": "true",
                                         "limit": args.limit},
        }
        for name, params_of in cases.items():
            lat = await query_latency(server, params_of, args.rounds, rng)
            print(f"| {name} | {len(lat)} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--event-store", default=None)
    asyncio.run(main(parser.parse_args()))
