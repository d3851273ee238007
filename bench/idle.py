"""Benchmark: what an idle server costs, with several stores open (a district's deployment).

Starts `lrs serve` (2 workers), creates and opens N named stores (one statement each, so each
has its writer and its views process), waits for their views to catch up, then measures the CPU
each kind of process uses over a quiet span. Target: an idle store costs well under 1 % of a
core.

    python bench/idle.py [--stores 10] [--seconds 20] [--event-store postgresql://…]
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Server, event_store_argument, running_server
from bench.ingest import ProcessCPU, make_statement


def open_store(server: Server, name: str, rng: random.Random) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as admin:
        admin.post("/admin/stores", json={"name": name}).raise_for_status()
        issued = admin.post(f"/admin/stores/{name}/credentials",
                            json={"name": "bench", "scopes": ["all"]})
        issued.raise_for_status()
    pair = f"{issued.json()['key']}:{issued.json()['secret']}".encode()
    headers = {**server.headers, "Authorization": "Basic " + base64.b64encode(pair).decode()}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        client.post("/xAPI/statements",
                    content=orjson.dumps(make_statement(rng, 10, 10))).raise_for_status()


def main(args: argparse.Namespace) -> None:
    rng = random.Random(1)
    label = "PostgreSQL" if args.event_store else "SQLite"
    with running_server(args.event_store, env={"LRS_WORKERS": "2"}) as server:
        for n in range(args.stores):
            open_store(server, f"school-{n}", rng)
        time.sleep(5)  # the views of every store catch up and go quiet
        cpu = ProcessCPU(server.pid)
        names = cpu.names()
        time.sleep(args.seconds)
        used: dict[str, list[float]] = defaultdict(list)
        for pid, seconds in cpu.used().items():
            used[names.get(pid, "other")].append(seconds)
    print(f"\n## Idle `lrs serve`, {label}, default + {args.stores} stores open,"
          f" {args.seconds} s\n")
    print("| process | count | CPU s in all | % of a core each |")
    print("|---|---:|---:|---:|")
    for role in ("parent", "worker", "projections"):
        spent = used.get(role, [])
        share = sum(spent) / len(spent) / args.seconds * 100 if spent else 0.0
        print(f"| {role} | {len(spent)} | {sum(spent):.2f} | {share:.2f} % |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    event_store_argument(parser)
    main(parser.parse_args())
