"""Benchmark: a batch-1 client's latency beside a client that sends the largest batches.

One worker serves both clients (so they share its event loop), over real HTTP. Rows: the
batch-1 client alone; beside 1,000 statements of ~9 KB each (9 MB, the body limit's order);
beside 700 small statements (63 KB: few bytes, many statements to check). Target: beside either
sender, the batch-1 client's p50 stays within a few milliseconds of quiet; its p95 is then set
by the writer (a large batch's write), not by the loop.

    python bench/fairness.py [--seconds 20] [--workers 1] [--event-store postgresql://…]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Server, event_store_argument, running_server
from bench.ingest import make_statement


def large_statements(rng: random.Random) -> bytes:
    batch = []
    for _ in range(1000):
        statement = make_statement(rng, 1000, 500)
        statement["result"]["response"] = "x" * 8500
        batch.append(statement)
    return orjson.dumps(batch)


def many_small_statements(rng: random.Random) -> bytes:
    small = {"actor": {"mbox": "mailto:learner@example.org"},
             "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
             "object": {"id": "https://courses.example.org/a"}}
    return orjson.dumps([small] * 700)


SENDERS: dict[str, Callable[[random.Random], bytes] | None] = {
    "alone": None,
    "beside 1,000 statements, 9 MB": large_statements,
    "beside 700 statements, 63 KB": many_small_statements,
}


def measure(server: Server, sender: Callable[[random.Random], bytes] | None,
            seconds: float) -> tuple[list[float], list[float]]:
    """(batch-1 latencies, the sender's latencies), in seconds."""
    rng = random.Random(7)
    stop = threading.Event()
    sent: list[float] = []

    def send_large() -> None:
        assert sender is not None
        own = random.Random(8)
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
            while not stop.is_set():
                body = sender(own)
                started = time.perf_counter()
                client.post("/xAPI/statements", content=body).raise_for_status()
                sent.append(time.perf_counter() - started)

    thread = threading.Thread(target=send_large, daemon=True) if sender else None
    if thread:
        thread.start()
        time.sleep(1.0)
    latencies = []
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            statement = make_statement(rng, 1000, 500)
            statement["id"] = str(uuid.uuid4())
            started = time.perf_counter()
            client.post("/xAPI/statements", content=orjson.dumps(statement)).raise_for_status()
            latencies.append(time.perf_counter() - started)
    stop.set()
    if thread:
        thread.join()
    return latencies, sent


def main(args: argparse.Namespace) -> None:
    print(f"\n## Batch-1 POST latency, {args.workers} worker(s), "
          f"{'PostgreSQL' if args.event_store else 'SQLite'}, {args.seconds} s per row\n")
    print("| batch-1 client | requests | p50 ms | p95 ms | p99 ms | max ms |"
          " sender's requests | sender's mean ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    env = {"LRS_WORKERS": str(args.workers), "LRS_MAX_BODY_BYTES": str(12 * 1024 * 1024)}
    for label, sender in SENDERS.items():
        with running_server(args.event_store, env=env) as server:
            latencies, sent = measure(server, sender, args.seconds)
        q = statistics.quantiles(latencies, n=100)
        mean = f"{statistics.mean(sent) * 1000:,.0f}" if sent else "-"
        print(f"| {label} | {len(latencies):,} | {q[49] * 1000:.1f} | {q[94] * 1000:.1f} |"
              f" {q[98] * 1000:.1f} | {max(latencies) * 1000:.0f} | {len(sent) or '-'} | {mean} |",
              flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    event_store_argument(parser)
    main(parser.parse_args())
