"""Benchmark: statement ingest throughput and filtered-query latency over real HTTP.

One run prints, for SQLite and PostgreSQL: statements/s and p50/p95 request latency at batch
1, 10 and 100, each at 8 and at 32 connections (driven by wrk when installed: a load generator
written in C leaves the cores to the server), the CPU seconds each process of the server used,
then the filtered GET table at each stored size, on stores seeded through the ingest pipeline
(bench/seed.py), with the 1,000th page of a paged query beside the first.

    python bench/ingest.py [--workers 2] [--stored 1000000 10000000] [--seconds 15]
                           [--connections 8 32]
                           [--postgres postgresql://…] [--seeded-dir /var/tmp/lrs-bench]
                           [--env LRS_PROJECTIONS=off ...] [--store NAME] [--post-stored N]

Statements come from 1,000 learners, 500 activities and 20 registrations a learner. The POST
tables run on a fresh store; with --post-stored N, again onto a copy of the store seeded with N
statements: the writer's B-trees are then large, and each write dirties more of
their pages than on a fresh store.

Why two numbers of connections: each client waits for its write to be durable before it sends
the next, so 8 connections measure the rate 8 such clients get (bounded by the commit's
latency: at batch 1 the cores were a fifth idle), and 32 the rate the server reaches when
enough requests wait to share each commit (group commit) and keep both cores busy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Server, running_server
from lrs.committer import WRITER_THREAD

VERBS = [f"http://adlnet.gov/expapi/verbs/{v}" for v in
         ("attempted", "answered", "completed", "passed", "failed", "experienced", "progressed",
          "commented", "shared", "mastered")]
WRK_SCRIPT = Path(__file__).with_name("statements.lua")
SESSIONS = 20  # registrations per learner: an LMS names an attempt, not each statement


def registration_of(learner: int, session: int) -> str:
    return f"{learner:08x}-0000-4000-8000-{session:012x}"


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
        "context": {"registration": registration_of(learner, rng.randrange(SESSIONS)),
                    "contextActivities": {"parent": [{"id": "https://courses.example.org/c/1"}]}},
        "timestamp": "2026-10-01T10:00:00.000Z",
    }


class ProcessCPU:
    """CPU seconds used by the server's processes (parent, workers, projections) over a span;
    with ``postgres``, by the PostgreSQL server's processes too: its backends do the writes
    the parent asks for, on the same two cores, and left out a PostgreSQL store's parent
    looked cheaper than SQLite's."""

    def __init__(self, pid: int, postgres: bool = False) -> None:
        self.root = psutil.Process(pid)
        self.postgres = postgres
        self.start = self._read()

    def _processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True), *self._postgres()]

    def _postgres(self) -> list[psutil.Process]:
        if not self.postgres:
            return []
        return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]

    def _read(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for process in self._processes():
            try:
                times = process.cpu_times()
                found[f"{process.pid}"] = times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return found

    def used(self) -> dict[str, float]:
        now = self._read()
        return {pid: now[pid] - self.start.get(pid, 0.0) for pid in now}

    def names(self) -> dict[str, str]:
        named = {str(self.root.pid): "parent"}
        for child in self.root.children(recursive=True):
            try:
                line = " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
            role = "worker"
            if "resource_tracker" in line:
                role = "tracker"
            elif any(f.path.endswith(".duckdb") for f in child.open_files()):
                role = "projections"  # the process that holds the views file
            named[str(child.pid)] = role
        named.update((str(process.pid), "postgres") for process in self._postgres())
        return named


class WriterThread:
    """The statement writer's thread (lrs-writer, in the parent; a store's own, when a named
    store takes the load: the busiest) over a span: the share of the span it ran on a core,
    and the share it was ready to run but waited for one (Linux's schedstat). Every write
    waits for this one thread; on two cores shared with the workers and the views, it can
    spend as long waiting for a core as running."""

    def __init__(self, pid: int) -> None:
        tasks = Path(f"/proc/{pid}/task")
        self.tasks = [t for t in tasks.glob("*") if _comm(t) == WRITER_THREAD] if tasks.is_dir() else []
        self.started = time.perf_counter()
        self.start = {task: _schedstat(task) for task in self.tasks}

    def shares(self) -> str:
        span = time.perf_counter() - self.started
        spent = [(now[0] - before[0], now[1] - before[1]) for task, before in self.start.items()
                 if before is not None and (now := _schedstat(task)) is not None]
        if not spent:
            return "n/a"
        running, waiting = max(spent)
        return f"{100 * running / span:.0f} % / {100 * waiting / span:.0f} %"


def _schedstat(task: Path) -> tuple[float, float] | None:
    """Seconds a thread has run on a core, and has waited in a run queue for one."""
    try:
        running, waiting = (int(n) for n in (task / "schedstat").read_text().split()[:2])
    except (OSError, ValueError):
        return None
    return running / 1e9, waiting / 1e9


def _comm(task: Path) -> str:
    try:
        return (task / "comm").read_text().strip()
    except OSError:
        return ""


def seconds_by_role(used: dict[str, float], names: dict[str, str],
                    summed: frozenset[str] = frozenset({"postgres"})) -> list[tuple[str, float]]:
    """CPU seconds of the server's processes, most first: each process on its own, but those of
    the ``summed`` roles (PostgreSQL's: a backend per connection, and its writers) added up."""
    totals: dict[str, float] = {}
    spent: list[tuple[str, float]] = []
    for pid, seconds in used.items():
        role = names.get(pid, "other")
        if role in summed:
            totals[role] = totals.get(role, 0.0) + seconds
        else:
            spent.append((role, seconds))
    return sorted(spent + [item for item in totals.items() if item[1]], key=lambda x: -x[1])


def cpu_by_role(used: dict[str, float], names: dict[str, str]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in seconds_by_role(used, names)
                     if seconds >= 0.05)


def children_cpu() -> float:
    """CPU seconds of this process's finished children: wrk's, once it has been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(server: Server, batch: int, seconds: int, connections: int) -> dict[str, Any]:
    env = {**os.environ, "BATCH": str(batch), "AUTH": server.headers["Authorization"]}
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
         "-s", str(WRK_SCRIPT), server.url], env=env, capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, Any] = json.loads(line[5:])
    if result["errors"]:
        raise RuntimeError(f"wrk saw {result['errors']} errors: {done.stderr[-2000:]}")
    return result


async def run_httpx(server: Server, batch: int, seconds: int, connections: int) -> dict[str, Any]:
    rng = random.Random(batch)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            body = orjson.dumps([make_statement(rng, 1000, 500) for _ in range(batch)])
            started = time.perf_counter()
            response = await client.post("/xAPI/statements", content=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60,
                                 limits=httpx.Limits(max_connections=connections)) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return {"requests": len(latencies), "seconds": time.perf_counter() - started,
            "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95)}


def post_table(event_store: str | None, args: argparse.Namespace,
               data_dir: Path | None = None, stored: int = 0) -> None:
    """``data_dir``: a store that already holds ``stored`` statements, its views built."""
    label = ("PostgreSQL" if event_store else "SQLite") + (f", store '{args.store}'"
                                                             if args.store else "")
    label += f", onto {stored:,} stored" if stored else ", a fresh store"
    generator = "wrk" if shutil.which("wrk") else "httpx (install wrk for a lighter load)"
    print(f"\n## POST /xAPI/statements, {label}, {args.workers} worker(s),"
          f" {args.seconds} s each, load from {generator}\n")
    print("| batch | connections | statements/s | requests/s | p50 ms | p95 ms | CPU s by process |"
          " writer thread: on a core / waiting for one | views caught up |"
          " views CPU per 1k statements |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    with running_server(event_store, data_dir=str(data_dir) if data_dir else None,
                        env={"LRS_WORKERS": str(args.workers), **dict(args.env)}) as server:
        if stored:  # the views of what is stored are read first, not measured
            views_caught_up(server, timeout=3600)
        if args.store:
            server.headers = {**server.headers, "Authorization": store_credential(server, args.store)}
        for batch, connections in [(b, c) for b in (1, 10, 100) for c in args.connections]:
            cpu = ProcessCPU(server.pid, postgres=event_store is not None)
            writer = WriterThread(server.pid)
            load_before = children_cpu()
            if shutil.which("wrk"):
                result = run_wrk(server, batch, args.seconds, connections)
            else:
                result = asyncio.run(run_httpx(server, batch, args.seconds, connections))
            used, names, writer_shares = cpu.used(), cpu.names(), writer.shares()
            spent = cpu_by_role(used, names)
            if shutil.which("wrk"):  # the load generator shares the cores too
                spent += f"; wrk {children_cpu() - load_before:.1f}"
            rate = result["requests"] / result["seconds"]
            # The views follow the log at their own pace: the load's CPU leaves out what they
            # still owe. Waiting them out keeps that work out of the next row too.
            drained = views_idle(cpu, names) if args.store else views_caught_up(server)
            views = sum(seconds for pid, seconds in cpu.used().items()
                        if names.get(pid) == "projections")
            ms_per_1k = views * 1000 / (result["requests"] * batch) * 1000
            print(f"| {batch} | {connections} | {rate * batch:,.0f} | {rate:,.0f} |"
                  f" {result['p50_ms']:.1f} |"
                  f" {result['p95_ms']:.1f} | {spent} | {writer_shares} | {drained:.1f} s later |"
                  f" {ms_per_1k:,.0f} ms |", flush=True)


def store_credential(server: Server, name: str) -> str:
    """Basic credentials of a new store ``name``, made through the administrator's routes."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        client.post("/admin/stores", json={"name": name}).raise_for_status()
        issued = client.post(f"/admin/stores/{name}/credentials",
                             json={"name": "bench", "scopes": ["all"]})
        issued.raise_for_status()
    pair = f"{issued.json()['key']}:{issued.json()['secret']}"
    credential = "Basic " + base64.b64encode(pair.encode()).decode()
    # Its first request opens the store (its log, its writer, its views process): not measured.
    with httpx.Client(base_url=server.url, timeout=60,
                      headers={**server.headers, "Authorization": credential}) as client:
        client.post("/xAPI/statements", content=orjson.dumps(
            make_statement(random.Random(0), 1, 1))).raise_for_status()
    return credential


def views_idle(cpu: ProcessCPU, names: dict[str, str], timeout: float = 600.0) -> float:
    """Seconds until the views processes rest for half a second: /api/health reports the
    `default` store's views only, and a named store's have a process of their own."""
    started = time.perf_counter()
    before = sum(v for pid, v in cpu.used().items() if names.get(pid) == "projections")
    while time.perf_counter() - started < timeout:
        time.sleep(0.5)
        names.update(cpu.names())
        now = sum(v for pid, v in cpu.used().items() if names.get(pid) == "projections")
        if now - before < 0.05:  # a tenth of a core: polling, not catching up
            return time.perf_counter() - started
        before = now
    raise RuntimeError(f"the views were still busy after {timeout:.0f} s")


def views_caught_up(server: Server, timeout: float = 600.0) -> float:
    """Seconds until the views hold every statement stored and no learner waits for a refresh."""
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        while time.perf_counter() - started < timeout:
            lag = client.get("/api/health").json().get("projections") or {}
            if lag.get("mode") == "off":
                return 0.0
            if lag.get("events_behind") == 0 and lag.get("learners_to_refresh") == 0:
                return time.perf_counter() - started
            time.sleep(0.1)
    raise RuntimeError(f"the views were still behind after {timeout:.0f} s")


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


FILTERS: dict[str, Any] = {
    "agent": lambda r: {"agent": agent_param(r)},
    "verb": lambda r: {"verb": r.choice(VERBS)},
    "activity": lambda r: {"activity": f"https://courses.example.org/activities/{r.randrange(500)}"},
    "registration": None,  # filled from a stored statement
    "since (last hour)": None,
    "since (nothing newer: a poll)": None,
    "agent+verb+activity": lambda r: {
        "agent": agent_param(r), "verb": r.choice(VERBS),
        "activity": f"https://courses.example.org/activities/{r.randrange(500)}"},
    "agent, related": lambda r: {"agent": agent_param(r), "related_agents": "true"},
    "activity, related": lambda r: {
        "activity": f"https://courses.example.org/activities/{r.randrange(500)}",
        "related_activities": "true"},
}


async def get_table(data_dir: Path, event_store: str | None, stored: int,
                    args: argparse.Namespace) -> None:
    rng = random.Random(7)
    label = "PostgreSQL" if event_store else "SQLite"
    with running_server(event_store, data_dir=str(data_dir),
                        env={"LRS_WORKERS": str(args.workers), "LRS_PROJECTIONS": "off"}) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers,
                                     timeout=60) as client:
            newest = (await client.get("/xAPI/statements", params={"limit": 1})).json()
            registration = newest["statements"][0]["context"]["registration"]
            since = newest["statements"][0]["stored"]
            cases = dict(FILTERS)
            cases["registration"] = lambda r: {"registration": registration}
            cases["since (last hour)"] = lambda r: {"since": since[:11] + "00:00:00Z"}
            cases["since (nothing newer: a poll)"] = lambda r: {"since": since}
            print(f"\n## GET /xAPI/statements, {label}, {stored:,} stored, limit {args.limit}\n")
            print("| filter | requests | p50 ms | p95 ms |")
            print("|---|---:|---:|---:|")
            for name, params_of in cases.items():
                latencies = []
                for _ in range(args.rounds):
                    params = {**params_of(rng), "limit": args.limit}
                    started = time.perf_counter()
                    response = await client.get("/xAPI/statements", params=params)
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - started)
                print(f"| {name} | {len(latencies)} | {pct(latencies, 50):.1f} |"
                      f" {pct(latencies, 95):.1f} |", flush=True)
            await paging_row(client, args.limit)


async def paging_row(client: httpx.AsyncClient, limit: int) -> None:
    """The `more` link's page 1,000 costs what page 1 costs (a cursor, not an offset)."""
    timings: dict[int, float] = {}
    url: str | None = "/xAPI/statements"
    params: dict[str, Any] | None = {"verb": VERBS[0], "limit": limit}
    for page in range(1, 1001):
        if not url:
            break
        started = time.perf_counter()
        response = await client.get(url, params=params)
        response.raise_for_status()
        timings[page] = (time.perf_counter() - started) * 1000
        url, params = response.json()["more"] or None, None
    last = max(timings)
    first10 = statistics.median(timings[p] for p in range(1, min(last, 10) + 1))
    last10 = statistics.median(timings[p] for p in range(max(1, last - 9), last + 1))
    print(f"| paged by verb: median of pages 1-10 / of pages {max(1, last - 9)}-{last} |"
          f" {last} | {first10:.1f} | {last10:.1f} |")


def seeded(base: Path, event_store: str | None, stored: int) -> Path:
    """A data folder holding ``stored`` statements, seeded once and kept for later runs."""
    from bench.seed import seed_store
    from lrs.config import Settings

    name = f"{'pg' if event_store else 'sqlite'}-{stored}"
    folder = base / name
    marker = folder / "seeded"
    if marker.exists() and (event_store is None or marker.read_text() == event_store):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nseeding {stored:,} statements into {name} (once; kept in {folder})")
    seconds = seed_store(Settings(data_dir=folder, event_store=event_store), stored)
    print(f"seeded in {seconds:,.0f} s ({stored / seconds:,.0f} statements/s);"
          f" the store takes {store_bytes(folder, event_store) / 1e9:,.2f} GB")
    marker.write_text(event_store or "")
    return folder


@contextmanager
def seeded_copy(base: Path, server_url: str | None, stored: int) -> Iterator[tuple[Path, str | None]]:
    """A throw-away copy of the store seeded with ``stored`` statements, its views built (once,
    in the seeded store, so each copy starts with them): its folder and its PostgreSQL URL."""
    url = None
    if server_url:
        url = f"{server_url.rsplit('/', 1)[0]}/lrs_bench_{stored}"
        _ensure_database(server_url, f"lrs_bench_{stored}")
    folder = seeded(base, url, stored)
    built = folder / "views-built"
    if not built.exists():
        print(f"\nbuilding the views of {stored:,} statements (once; kept in {folder})")
        with running_server(url, data_dir=str(folder)) as server:
            print(f"built in {views_caught_up(server, timeout=7200):,.0f} s")
        built.write_text("")
    with tempfile.TemporaryDirectory(prefix="lrs-bench-post-", dir=base) as scratch:
        copy = Path(scratch) / "store"
        shutil.copytree(folder, copy)
        copy_url = None
        if server_url and url:
            copy_url = fresh_database(server_url, "lrs_bench_post", template=f"lrs_bench_{stored}")
        yield copy, copy_url


def store_bytes(folder: Path, event_store: str | None) -> int:
    """The event store's size on disk: the SQLite files, or the PostgreSQL database."""
    if event_store is None:
        return sum(p.stat().st_size for p in folder.glob("events.sqlite3*"))
    import psycopg

    with psycopg.connect(event_store) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def fresh_database(url: str, name: str, template: str | None = None) -> str:
    """A new database ``name`` on the server of ``url``: empty, or a copy of ``template``."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return f"{url.rsplit('/', 1)[0]}/{name}"


def main(args: argparse.Namespace) -> None:
    stores: list[str | None] = [None]
    if args.postgres:
        stores.append(args.postgres)
    for store in stores if args.tables in ("all", "post") else []:
        url = fresh_database(store, "lrs_bench_ingest") if store else None
        post_table(url, args)
        if args.post_stored:
            with seeded_copy(args.seeded_dir, store, args.post_stored) as (folder, copy_url):
                post_table(copy_url, args, folder, args.post_stored)
    for stored in args.stored if args.tables in ("all", "get") else []:
        for store in stores:
            url = None
            if store:
                url = f"{store.rsplit('/', 1)[0]}/lrs_bench_{stored}"
                _ensure_database(store, f"lrs_bench_{stored}")
            folder = seeded(args.seeded_dir, url, stored)
            asyncio.run(get_table(folder, url, stored, args))


def _ensure_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.startswith("LRS_"):
        raise argparse.ArgumentTypeError(f"{text!r}: give LRS_NAME=VALUE")
    return name, value


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32],
                        help="each POST row is run at each of these numbers of connections")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--stored", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server URL, or '' to measure SQLite only")
    parser.add_argument("--tables", choices=("all", "post", "get"), default="all")
    parser.add_argument("--post-stored", type=int, default=0, metavar="N",
                        help="the POST tables also run onto a copy of the store seeded with N"
                             " statements (its views built), as a store in use takes them")
    parser.add_argument("--store", metavar="NAME",
                        help="the POST tables write with a credential of a new store of this name")
    parser.add_argument("--seeded-dir", type=Path, default=Path("/var/tmp/lrs-bench"))
    parser.add_argument("--env", type=_setting, action="append", default=[],
                        metavar="LRS_NAME=VALUE",
                        help="more settings for the POST tables' server, e.g. LRS_PROJECTIONS=off")
    main(parser.parse_args())
