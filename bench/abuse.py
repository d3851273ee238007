"""Benchmark: xAPI latency under abuse, and honest clients beside a poison one, over real HTTP.

Three phases on a real `lrs serve` (loopback only, each bounded in time and requests):
1. quiet: clients alternate a POST of 10 statements and a GET by agent (limit 10), paced;
2. attack: the same load while 8 analysts loop a CPU-bound query on POST /api/sql and 100 raw
   sockets each send half a request's headers a byte a second (reopened when closed);
3. poison (a fresh server): six honest clients POST batches of 10 while one client sends
   statements with NUL characters or extensions nested 100-1000 deep, as fast as it can.
Targets: xAPI p95 under attack within 2x of quiet; 0 honest requests failed, 0 statements lost.

    python bench/abuse.py [--seconds 10] [--event-store postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Server, running_server
from bench.ingest import agent_param, make_statement, pct

HEAVY_SQL = "SELECT sum(hash(a.range + b.range)) FROM range(100000000) a, range(100) b"
ANALYSTS, SLOW_CONNECTIONS, HONEST_CLIENTS, BATCH = 8, 100, 6, 10
RAMP = 2.0  # attackers start this long before the measured load
HALF_REQUEST = (b"POST /xAPI/statements HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nX-Experience-API-Version: 1.0.3\r\n")
POISON_AGENT = "mailto:poison@abuse.example.org"
MAX_ROUNDS = 100_000  # a bound on every loop, far above what a phase reaches


@dataclass
class Tally:
    """Each request's answer (its status, or the client error) and how long it took."""

    answers: list[tuple[str, float]] = field(default_factory=list)
    first_error: str = ""

    async def measure(self, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
        started = time.perf_counter()
        response: httpx.Response | None = None
        try:
            response = await send()
            status = str(response.status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        self.answers.append((status, time.perf_counter() - started))
        if status != "200" and not self.first_error:
            self.first_error = error_message(response) if response is not None else status
        return response

    @property
    def seconds(self) -> list[float]:
        return [seconds for _, seconds in self.answers]

    @property
    def failed(self) -> int:
        return sum(status != "200" for status, _ in self.answers)

    def by_status(self, with_time: bool = False) -> str:
        """'400: 12, 503: 30', with each status's median time in seconds if ``with_time``."""
        times: dict[str, list[float]] = {}
        for status, seconds in sorted(self.answers):
            times.setdefault(status, []).append(seconds)
        return ", ".join(f"{status}: {len(t)}" + f" (p50 {t[len(t) // 2]:.1f} s)" * with_time
                         for status, t in times.items()) or "none"


def error_message(response: httpx.Response) -> str:
    with suppress(ValueError, KeyError, TypeError):  # else not the LRS's error document
        return str(response.json()["error"]["message"])
    return response.text[:100]


async def paced(steps: Sequence[tuple[Callable[[], Awaitable[httpx.Response]], Tally]], rate: float,
                seconds: float, rng: random.Random) -> None:
    """Send the steps in turn, ``rate`` a second for ``seconds``; a late one is not made up."""
    interval = 1 / rate
    started = time.monotonic()
    next_at = started + rng.uniform(0, interval)
    for i in range(int(seconds * rate) + 1):
        if next_at - started >= seconds:
            return
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        send, tally = steps[i % len(steps)]
        await tally.measure(send)
        next_at = max(next_at + interval, time.monotonic())


def batch_body(rng: random.Random, mbox: str | None = None, size: int = BATCH) -> bytes:
    statements = [make_statement(rng, 1000, 200) for _ in range(size)]
    for statement in statements if mbox else []:
        statement["actor"] = {"objectType": "Agent", "mbox": mbox}
    return orjson.dumps(statements)


def client(server: Server, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30,
                             limits=httpx.Limits(max_connections=connections))


async def xapi_load(server: Server, args: argparse.Namespace, rng: random.Random) -> dict[str, Tally]:
    """``args.clients`` clients, each alternating a POST of 10 and a GET by agent."""
    posts, gets = Tally(), Tally()
    async with client(server, args.clients) as http:
        def post() -> Awaitable[httpx.Response]:
            return http.post("/xAPI/statements", content=batch_body(rng))

        def get() -> Awaitable[httpx.Response]:
            return http.get("/xAPI/statements", params={"agent": agent_param(rng), "limit": 10})

        await asyncio.gather(*(paced([(post, posts), (get, gets)], args.rate, args.seconds, rng)
                               for _ in range(args.clients)))
    return {"POST /xAPI/statements (10)": posts, "GET /xAPI/statements?agent": gets}


async def seed(server: Server, count: int, rng: random.Random) -> str:
    """Store ``count`` statements, then wait (2 minutes at most) for the views to hold them."""
    async with client(server, 1) as http:
        for _ in range(count // 500):
            (await http.post("/xAPI/statements", content=batch_body(rng, size=500))).raise_for_status()
        for _ in range(240):
            health = (await http.get("/api/health", timeout=5)).json()
            if (behind := health.get("projections", {}).get("events_behind")) == 0:
                return "caught up"
            await asyncio.sleep(0.5)
    return f"still {behind} events behind"


# --- attackers -----------------------------------------------------------------------------------

@dataclass
class Attack:
    """What the attackers saw: analysts' answers, slow connections, and /api/health meanwhile."""

    sql: Tally = field(default_factory=Tally)
    sql_cut: int = 0  # analysts' requests still unanswered when the phase ended
    opened: int = 0
    held: int = 0
    refused: int = 0
    ended: Counter[str] = field(default_factory=Counter)  # how the server ended slow ones
    lifetimes: list[float] = field(default_factory=list)
    held_samples: list[int] = field(default_factory=list)
    health: Tally = field(default_factory=Tally)
    lag: list[float] = field(default_factory=list)  # the views' lag health told, in seconds


async def analyst(http: httpx.AsyncClient, attack: Attack) -> None:
    """Loop the heavy query; after a 503, wait 0.1 s (Retry-After is not honoured)."""
    for _ in range(MAX_ROUNDS):
        try:
            response = await attack.sql.measure(
                lambda: http.post("/api/sql", json={"sql": HEAVY_SQL}))
        except asyncio.CancelledError:
            attack.sql_cut += 1
            raise
        if response is not None and response.status_code == 503:
            await asyncio.sleep(0.1)


async def slow_connection(host: str, port: int, attack: Attack, delay: float) -> None:
    """Hold a connection that never finishes its headers; open another when it is closed."""
    await asyncio.sleep(delay)
    for _ in range(MAX_ROUNDS):
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            attack.refused += 1
            await asyncio.sleep(0.5)
            continue
        opened = time.monotonic()
        attack.opened += 1
        attack.held += 1
        try:
            attack.ended[await dribble(reader, writer)] += 1
            attack.lifetimes.append(time.monotonic() - opened)
        finally:
            attack.held -= 1
            writer.close()


async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """Send HALF_REQUEST a byte a second until the server answers or closes; what it did."""
    for i in range(MAX_ROUNDS):
        try:
            if i < len(HALF_REQUEST):
                writer.write(HALF_REQUEST[i:i + 1])
                await writer.drain()
            data = await asyncio.wait_for(reader.read(4096), 1.0)
        except TimeoutError:
            continue
        except ConnectionError:
            return "reset"
        return data.split(b"\r\n", 1)[0].decode(errors="replace") if data else "closed"
    return "gave up"


async def watch(http: httpx.AsyncClient, attack: Attack) -> None:
    """Count the slow connections held four times a second; GET /api/health once a second."""
    for i in range(MAX_ROUNDS):
        attack.held_samples.append(attack.held)
        if i % 4 == 0:
            response = await attack.health.measure(lambda: http.get("/api/health", timeout=5))
            if response is not None and response.status_code == 200:
                lag = response.json()["projections"].get("seconds_behind")
                attack.lag.append(float(lag or 0.0))
        await asyncio.sleep(0.25)


async def under_attack(server: Server, args: argparse.Namespace, rng: random.Random
                       ) -> tuple[dict[str, Tally], Attack]:
    attack = Attack()
    url = urlparse(server.url)
    assert url.hostname == "127.0.0.1" and url.port is not None  # loopback only
    async with client(server, ANALYSTS) as sql_http, client(server, 1) as health_http:
        tasks = [asyncio.create_task(analyst(sql_http, attack)) for _ in range(ANALYSTS)]
        tasks += [asyncio.create_task(slow_connection(url.hostname, url.port, attack,
                                                      i / SLOW_CONNECTIONS))
                  for i in range(SLOW_CONNECTIONS)]
        await asyncio.sleep(RAMP)
        tasks.append(asyncio.create_task(watch(health_http, attack)))
        try:
            load = await xapi_load(server, args, rng)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.1)  # let the cancelled sockets close
    return load, attack


# --- poison --------------------------------------------------------------------------------------

def poison_bodies(rng: random.Random) -> dict[str, bytes]:
    """Batches of 10 by POISON_AGENT, one statement in each poisoned."""
    def batch(poison: Callable[[dict[str, Any]], None]) -> bytes:
        statements = orjson.loads(batch_body(rng, POISON_AGENT))
        poison(statements[rng.randrange(BATCH)])
        return orjson.dumps(statements)

    def nested(depth: int) -> bytes:
        deep = b'{"https://x.example.org/d":' * depth + b"1" + b"}" * depth
        return batch(lambda s: s.setdefault("result", {}).update(
            extensions={"https://x.example.org/deep": "DEEP"})).replace(b'"DEEP"', deep)

    return {
        "NUL in verb id": batch(lambda s: s["verb"].update(id=s["verb"]["id"] + "\x00")),
        "NUL in mbox": batch(lambda s: s.update(actor={"mbox": "mailto:poi\x00son@example.org"})),
        "NUL in name": batch(lambda s: s["actor"].update(name="Poison\x00")),
        "raw NUL byte (bad JSON)": batch(lambda s: s["actor"].update(name="RAWNUL")).replace(
            b"RAWNUL", b"Raw\x00Nul"),
        "extensions nested 100 deep": nested(100),
        "extensions nested 1000 deep": nested(1000),
    }


@dataclass
class Honest:
    mbox: str
    tally: Tally = field(default_factory=Tally)
    acked: set[str] = field(default_factory=set)
    stored: set[str] = field(default_factory=set)

    async def run(self, http: httpx.AsyncClient, rate: float, seconds: float,
                  rng: random.Random) -> None:
        async def post() -> httpx.Response:
            response = await http.post("/xAPI/statements", content=batch_body(rng, self.mbox))
            if response.status_code == 200:
                self.acked.update(response.json())
            return response

        await paced([(post, self.tally)], rate, seconds, rng)


async def stored_ids(http: httpx.AsyncClient, mbox: str, most: int) -> set[str]:
    """The ids stored with ``mbox`` as actor, following 'more' links (of at most ``most``)."""
    ids: set[str] = set()
    response = await http.get("/xAPI/statements", params={
        "agent": orjson.dumps({"mbox": mbox}).decode(), "format": "ids", "limit": "500"})
    for _ in range(most // 500 + 2):
        response.raise_for_status()
        page = response.json()
        ids.update(statement["id"] for statement in page["statements"])
        if not page["more"]:
            return ids
        response = await http.get(page["more"])  # no params: they would replace its query
    raise RuntimeError(f"{mbox} has more than {most} statements")


async def poison_phase(server: Server, args: argparse.Namespace, rng: random.Random
                       ) -> tuple[list[Honest], dict[str, Tally], int]:
    """Honest clients POST at half the clients' rate (POSTs only) beside the poison client."""
    run, seconds = uuid.uuid4().hex[:6], args.seconds * 1.5
    honest = [Honest(f"mailto:honest{i}-{run}@abuse.example.org") for i in range(HONEST_CLIENTS)]
    bodies = poison_bodies(rng)
    poison = {kind: Tally() for kind in bodies}
    async with client(server, HONEST_CLIENTS) as http, client(server, 1) as evil:
        steps = [(partial(evil.post, "/xAPI/statements", content=bodies[kind]), poison[kind])
                 for kind in bodies]
        await asyncio.gather(paced(steps, MAX_ROUNDS / seconds, seconds, rng),  # flat out
                             *(me.run(http, args.rate / 2, seconds, rng) for me in honest))
        for me in honest:
            me.stored = await stored_ids(http, me.mbox, 2 * len(me.tally.answers) * BATCH)
        sent = sum(len(tally.answers) for tally in poison.values())
        poison_stored = len(await stored_ids(http, POISON_AGENT, sent * BATCH))
    return honest, poison, poison_stored


# --- report --------------------------------------------------------------------------------------

def cpu_now(server: Server) -> dict[str, float]:
    """CPU seconds used so far, and waited for a core, by the server and by its children (its
    process group's other members: see the harness's stop_timeout), from /proc (Linux); CPU
    seconds used by this bench."""
    now = {"server": 0.0, "server waited": 0.0, "children": 0.0, "children waited": 0.0,
           "bench": time.process_time(), "wall": time.monotonic()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError):  # a process gone meanwhile
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == server.pid:  # pgrp; then utime and stime, in clock ticks
                who = "server" if stat.parent.name == str(server.pid) else "children"
                now[who] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                now[f"{who} waited"] += waited_for_a_core(stat.parent)
    return now


def waited_for_a_core(process: Path) -> float:
    """Seconds the process's threads have spent runnable but not running (schedstat)."""
    waited = 0
    for stat in process.glob("task/*/schedstat"):
        with suppress(OSError, IndexError, ValueError):  # a thread gone meanwhile
            waited += int(stat.read_text().split()[1])
    return waited / 1e9


def print_cpu(start: dict[str, float], end: dict[str, float], note: str) -> None:
    used = {key: end[key] - start[key] for key in end}
    print(f"\nCPU seconds over {used['wall']:.1f} s on {os.cpu_count()} cores{note}: server"
          f" {used['server']:.1f} (and {used['server waited']:.1f} waiting for a core), its"
          f" projections process {used['children']:.1f} (and {used['children waited']:.1f}"
          f" waiting), this bench {used['bench']:.1f}")


def table(title: str, columns: str, rows: list[list[Any]]) -> None:
    """A markdown table (``columns`` split on '|') under a heading that tells the machine's load
    average (others' work skews the numbers); no heading if ``title`` is empty."""
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end"
    print(f"\n## {title} ({load})\n" if title else "")
    print(f"| {columns.replace('|', ' | ')} |\n|" + "".join(
        "---:|" if isinstance(cell, (int, float)) else "---|" for cell in rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{c:.1f}" if isinstance(c, float) else str(c).replace("|", "/")
                                for c in row) + " |")


def latency_table(title: str, load: dict[str, Tally], quiet: dict[str, Tally] | None) -> None:
    rows: list[list[Any]] = []
    for name, t in load.items():
        rows.append([name, len(t.answers), t.failed, pct(t.seconds, 50), pct(t.seconds, 95),
                     pct(t.seconds, 99)])
        rows[-1] += [f"{pct(t.seconds, 95) / pct(quiet[name].seconds, 95):.2f}x"] if quiet else []
    table(title, "requests|sent|not 200|p50 ms|p95 ms|p99 ms" + "|p95 / quiet p95" * bool(quiet),
          rows)


def attackers_table(attack: Attack, timeout: float) -> None:
    sql, health, held = attack.sql, attack.health, attack.held_samples or [0]
    lifetimes = sorted(attack.lifetimes) or [0.0]
    ended = ", ".join(f"{k}: {n}" for k, n in sorted(attack.ended.items())) or "none"
    table("", "attacker|requests / connections|answers", [
        [f"{ANALYSTS} analysts looping POST /api/sql (LRS_SQL_TIMEOUT_SECONDS={timeout:g})",
         len(sql.answers) + attack.sql_cut,
         f"{sql.by_status(with_time=True)}; unanswered at the end: {attack.sql_cut}"],
        [f"{SLOW_CONNECTIONS} slow connections (half the headers, 1 byte/s)", attack.opened,
         f"held {min(held)}-{max(held)} at once; {len(attack.lifetimes)} ended by the server after"
         f" p50 {lifetimes[len(lifetimes) // 2]:.1f} s ({ended}); refused: {attack.refused}"],
        ["GET /api/health, 1/s (5 s timeout)", len(health.answers),
         f"{health.by_status()}; slowest {max(health.seconds, default=0) * 1000:.0f} ms; the"
         f" views' lag it told: at most {max(attack.lag, default=float('nan')):.1f} s"]])


def poison_table(honest: list[Honest], poison: dict[str, Tally], stored: int, seconds: float) -> None:
    def short(error: str) -> str:
        return error if len(error) <= 80 else f"{error[:30]} … {error[-45:]}"

    rows: list[list[Any]] = [
        [f"honest {i + 1}", len(me.tally.answers), me.tally.failed, len(me.acked),
         len(me.acked - me.stored), len(me.stored - me.acked), pct(me.tally.seconds, 95),
         me.tally.by_status(), short(me.tally.first_error) or "-"] for i, me in enumerate(honest)]
    rows += [[f"poison: {kind}", len(t.answers), t.failed, "-", "-", "-", pct(t.seconds, 95),
              t.by_status(), short(t.first_error)] for kind, t in poison.items()]
    table(f"Poison: {HONEST_CLIENTS} honest clients beside one poison client, {seconds:g} s",
          "client|requests|not 200|statements acknowledged|lost|stored unacknowledged|p95 ms"
          "|answers|first error", rows)
    print(f"\nStatements stored by the poison agent (each poison batch has 9 valid statements"
          f" and 1 poisoned; a batch is all or nothing): {stored}")


def summary(quiet: dict[str, Tally], attacked: dict[str, Tally], honest: list[Honest],
            poison_stored: int) -> None:
    rows = []
    for name, t in attacked.items():
        before, after = pct(quiet[name].seconds, 95), pct(t.seconds, 95)
        rows.append([f"{name}: p95 under attack within 2x of quiet",
                     f"{after / before:.2f}x ({before:.1f} -> {after:.1f} ms)", after <= 2 * before])
    failed = sum(me.tally.failed for me in honest)
    lost = sum(len(me.acked - me.stored) for me in honest)
    rows += [["0 honest requests failed",
              f"{failed} of {sum(len(me.tally.answers) for me in honest)}", not failed],
             ["0 honest statements lost",
              f"{lost} of {sum(len(me.acked) for me in honest)} acknowledged", not lost],
             ["0 poison statements stored", str(poison_stored), not poison_stored]]
    table("Summary", "target|measured|met",
          [[target, measured, "met" if met else "NOT met"] for target, measured, met in rows])


@contextmanager
def scratch_database(event_store: str | None) -> Iterator[str | None]:
    """A fresh PostgreSQL database beside the one given, dropped afterwards; SQLite: None."""
    if not event_store:
        yield None
        return
    import psycopg

    name = f"lrs_abuse_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(event_store, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{event_store.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(event_store, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(12)
    env = {"LRS_SQL_TIMEOUT_SECONDS": f"{args.sql_timeout:g}"}
    # Each server's whole run has a deadline far above what it takes; then the bench stops.
    with scratch_database(args.event_store) as db, \
            running_server(db, env=env, stop_timeout=30) as server:
        async with asyncio.timeout(300 + args.stored / 100 + 4 * args.seconds):
            views = await seed(server, args.stored, rng)
            print(f"# Abuse ({'PostgreSQL' if db else 'SQLite'}, {args.stored:,} statements"
                  f" seeded, views {views}; {args.clients} clients at {args.rate:g} requests/s)")
            started = cpu_now(server)
            quiet = await xapi_load(server, args, rng)
            latency_table(f"Quiet, {args.seconds:g} s", quiet, None)
            print_cpu(started, between := cpu_now(server), "")
            attacked, attack = await under_attack(server, args, rng)
            ended = cpu_now(server)
        latency_table(f"Under attack: {ANALYSTS} heavy analyst queries and {SLOW_CONNECTIONS}"
                      f" slow connections, {args.seconds:g} s", attacked, quiet)
        attackers_table(attack, args.sql_timeout)
        print_cpu(between, ended, f" (with the attackers' {RAMP:g} s start)")
    print(f"\nserver: {server.stopped}")
    with scratch_database(args.event_store) as db, \
            running_server(db, env=env, stop_timeout=30) as server:
        async with asyncio.timeout(120 + 3 * args.seconds):
            started = cpu_now(server)
            honest, poison, poison_stored = await poison_phase(server, args, rng)
            ended = cpu_now(server)
        poison_table(honest, poison, poison_stored, args.seconds * 1.5)
        print_cpu(started, ended, " (with the check of what was stored)")
    print(f"\nserver: {server.stopped}")
    summary(quiet, attacked, honest, poison_stored)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of the quiet and attack phases; poison runs 1.5x as long")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s of each client")
    parser.add_argument("--stored", type=int, default=10_000, help="statements seeded first")
    parser.add_argument("--sql-timeout", type=float, default=5.0,
                        help="the server's LRS_SQL_TIMEOUT_SECONDS for the run")
    parser.add_argument("--event-store", default=None, help="postgresql://… (a scratch database"
                        " is created beside it and dropped); default: SQLite")
    # SIGTERM unwinds like Ctrl-C: the servers (in sessions of their own) are stopped, not left.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    asyncio.run(main(parser.parse_args()))
