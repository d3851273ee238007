"""Benchmark: POST statements with a 1 MB attachment each, over real HTTP (multipart/mixed).

Prints throughput and the server process's peak resident memory (VmHWM), which shows whether
attachments stream to disk or pile up in memory.

    python bench/attachments.py [--requests 300] [--size 1048576] [--attachment-store …]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import running_server


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def body(size: int) -> tuple[bytes, str]:
    content = os.urandom(size)
    sha2 = hashlib.sha256(content).hexdigest()
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:learner@school.example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/submitted"},
        "object": {"id": "https://courses.example.org/portfolio/essay"},
        "attachments": [{"usageType": "https://example.org/usage/portfolio-artifact",
                         "display": {"en-US": "essay"}, "contentType": "application/pdf",
                         "length": size, "sha2": sha2}],
    }
    boundary = uuid.uuid4().hex
    raw = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
           + orjson.dumps(statement)
           + f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n"
             f"Content-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {sha2}\r\n\r\n".encode()
           + content + f"\r\n--{boundary}--\r\n".encode())
    return raw, f'multipart/mixed; boundary="{boundary}"'


async def main(args: argparse.Namespace) -> None:
    env = {"LRS_ATTACHMENT_STORE": args.attachment_store} if args.attachment_store else {}
    os.environ.update(env)
    with running_server(args.event_store) as server:
        idle = peak_rss_mb(server.pid)
        bodies = [body(args.size) for _ in range(args.requests)]
        latencies: list[float] = []

        async def worker(client: httpx.AsyncClient) -> None:
            while bodies:
                raw, content_type = bodies.pop()
                started = time.perf_counter()
                response = await client.post("/xAPI/statements", content=raw,
                                             headers={"Content-Type": content_type})
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        headers = {k: v for k, v in server.headers.items() if k != "Content-Type"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as client:
            started = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(args.concurrency)))
            elapsed = time.perf_counter() - started
        peak = peak_rss_mb(server.pid)
        quantiles = statistics.quantiles(latencies, n=100)
        print(f"## POST with one {args.size / 2**20:.1f} MB attachment each, concurrency"
              f" {args.concurrency} ({args.attachment_store or 'files in the data folder'})\n")
        print("| requests | statements/s | MB/s | p50 ms | p95 ms | server RSS idle MB |"
              " server peak RSS MB |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.requests} | {args.requests / elapsed:,.1f} |"
              f" {args.requests * args.size / 2**20 / elapsed:,.1f} | {quantiles[49] * 1000:.0f} |"
              f" {quantiles[94] * 1000:.0f} | {idle:.0f} | {peak:.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--event-store", default=None)
    parser.add_argument("--attachment-store", default=None)
    asyncio.run(main(parser.parse_args()))
