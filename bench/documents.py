"""Benchmark: State document PUT and GET over real HTTP with 100k documents stored.

The 100k documents are seeded before the server starts, as Document events written through the
event store in large batches (seeding through HTTP would time the seeding, not the LRS).

    python bench/documents.py [--stored 100000] [--concurrency 8 32] [--event-store postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import running_server
from bench.ingest import ProcessCPU, seconds_by_role
from bench.seed import settle_postgres
from ingest.enrich import format_stored
from lrs.application import LearningRecordStore
from lrs.config import Settings
from lrs.documents import STATE, DocumentKey, etag_of
from lrs.domain import DOCUMENT_TOPIC, Document
from lrs.store.documents import DocumentChange
from schemas.actor import Agent, ifi_key

ACTIVITY = "https://courses.example.org/activities/{}"


def learner(n: int) -> str:
    return orjson.dumps({"mbox": f"mailto:learner{n}@school.example.org"}).decode()


def seed(settings: Settings, count: int) -> None:
    store = LearningRecordStore(env=settings.event_store_env())
    now = datetime.now(UTC)
    for start in range(0, count, 2000):
        events, changes = [], []
        for n in range(start, min(start + 2000, count)):
            agent = ifi_key(Agent(mbox=f"mailto:learner{n % 5000}@school.example.org"))
            key = DocumentKey(STATE, "bookmark", ACTIVITY.format(n // 5000), agent)
            content = orjson.dumps({"page": n % 40, "suspend": "x" * 200})
            events.append(Document.Created(  # type: ignore[call-arg]
                originator_id=key.aggregate_id, originator_version=1, timestamp=now,
                originator_topic=DOCUMENT_TOPIC, resource=STATE, scope=key.scope(),
                content=content, content_type="application/json", etag=etag_of(content)))
            changes.append(DocumentChange.of(key, content, "application/json", etag_of(content),
                                             format_stored(now), 1))
        store.events.put(events, document_changes=changes)
    store.close()
    if settings.event_store:
        settle_postgres(settings.event_store)


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] * 1000


async def load(url: str, headers: dict[str, str], method: str, requests: int, concurrency: int,
               stored: int) -> tuple[float, list[float]]:
    rng = random.Random(5)
    latencies: list[float] = []
    remaining = requests

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            n = rng.randrange(stored)
            params = {"activityId": ACTIVITY.format(n // 5000), "agent": learner(n % 5000),
                      "stateId": "bookmark"}
            started = time.perf_counter()
            if method == "PUT":
                body = orjson.dumps({"page": rng.randrange(40), "suspend": "y" * 200})
                response = await client.put("/xAPI/activities/state", params=params, content=body)
            else:
                response = await client.get("/xAPI/activities/state", params=params)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return requests / (time.perf_counter() - started), latencies


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(os.environ.get("LRS_BENCH_DIR", "/tmp")) / f"lrs-docs-{os.getpid()}"
    settings = Settings(data_dir=data_dir, event_store=args.event_store)
    try:
        await measure(args, settings, data_dir)
    finally:  # the seeded store is not left behind in /tmp by each run
        shutil.rmtree(data_dir, ignore_errors=True)


async def measure(args: argparse.Namespace, settings: Settings, data_dir: Path) -> None:
    started = time.perf_counter()
    seed(settings, args.stored)
    print(f"seeded {args.stored:,} documents in {time.perf_counter() - started:.1f}s\n")
    with running_server(args.event_store, data_dir=str(data_dir)) as server:
        headers = {k: v for k, v in server.headers.items() if k != "Content-Type"}
        headers["Content-Type"] = "application/json"
        print(f"## State documents at {args.stored:,} stored ({args.event_store or 'SQLite'})\n")
        print("| request | connections | requests | requests/s | p50 ms | p95 ms | p99 ms | max ms"
              " | CPU us a request, by process |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for method, count in (("GET", args.requests), ("PUT", args.requests // 2)):
            for concurrency in args.concurrency:
                if shutil.which("wrk"):  # a load from C leaves both cores to the server
                    cpu = ProcessCPU(server.pid, postgres=args.event_store is not None)
                    done = wrk(server.url, server.headers["Authorization"], method, concurrency,
                               args)
                    print(f"| {method} (wrk, {args.seconds} s) | {concurrency} | {done['requests']} |"
                          f" {done['requests'] / done['seconds']:,.0f} | {done['p50_ms']:.1f} |"
                          f" {done['p95_ms']:.1f} | {done['p99_ms']:.1f} | {done['max_ms']:.0f} |"
                          f" {per_request(cpu, done['requests'])} |")
                    continue
                rate, lat = await load(server.url, headers, method, count, concurrency, args.stored)
                print(f"| {method} | {concurrency} | {count} | {rate:,.0f} | {pct(lat, 50):.1f} |"
                      f" {pct(lat, 95):.1f} | {pct(lat, 99):.1f} | {max(lat) * 1000:.0f} |")


def per_request(cpu: ProcessCPU, requests: int) -> str:
    """CPU each role of the server's processes spent a request, workers summed (PostgreSQL's
    processes too): steadier than requests/s on a shared machine, where the same load's rate
    moves by a fifth from one run to the next."""
    names = cpu.names()
    return ", ".join(f"{role} {seconds / max(requests, 1) * 1e6:,.0f}" for role, seconds
                     in seconds_by_role(cpu.used(), names, frozenset(names.values()) | {"other"})
                     if seconds >= 0.05)


def wrk(url: str, authorization: str, method: str, concurrency: int,
        args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "METHOD": method, "STORED": str(args.stored), "AUTH": authorization}
    run = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{args.seconds}s",
                          "-s", str(Path(__file__).with_name("documents.lua")), url],
                         env=env, capture_output=True, text=True, check=True)
    line = next(x for x in run.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, Any] = json.loads(line[5:])
    if result["errors"]:
        raise RuntimeError(f"wrk saw {result['errors']} errors: {run.stdout[-2000:]}"
                           f" {run.stderr[-2000:]}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4000)
    # Each client waits for its PUT to be durable: 8 measure what 8 such clients get, 32 what
    # the server reaches when enough wait to share each commit (see bench/ingest.py).
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--seconds", type=int, default=15, help="each wrk run, when wrk is installed")
    parser.add_argument("--event-store", default=None)
    asyncio.run(main(parser.parse_args()))
