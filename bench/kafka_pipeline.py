"""Benchmark: Kafka ingest into the event log, and the relay out of it, end to end.

Starts a Kafka-protocol broker on loopback (noida-db, or --bootstrap), pre-loads a 6-partition
topic with ~1 KB statements, then times `lrs ingest kafka` until every statement is in the log,
and `lrs relay kafka` until every event is on the outbound topic. Target: >= 5,000 statements/s
into SQLite on a 2-core machine.

    python bench/kafka_pipeline.py [--statements 50000] [--bootstrap host:port] [--event-store …]
        [--sealing on|off|both] [--rounds N]

``--sealing both`` runs each ingester count sealed and in plaintext, one after the other, and
prints what sealing cost each round (the rate from run to run varies by a fifth here).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson
import psutil
import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import free_port
from bench.ingest import make_statement
from lrs.application import LearningRecordStore
from lrs.config import Settings
from tests.kafka_broker import _reachable, create_topic, start_noida, stop_noida


def one_kb_statement(rng: random.Random) -> bytes:
    statement = make_statement(rng, 5000, 500)
    statement["context"]["extensions"] = {"https://example.org/ext/session": "s" * 330}
    return orjson.dumps(statement)


def stored_count(settings: Settings) -> int:
    env = settings.event_store_env()
    if env["PERSISTENCE_MODULE"].endswith("sqlite"):
        with sqlite3.connect(env["SQLITE_DBNAME"]) as conn:
            try:
                return int(conn.execute("SELECT COUNT(*) FROM xapi_statement").fetchone()[0])
            except sqlite3.OperationalError:
                return 0
    with psycopg.connect(settings.event_store or "") as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM xapi_statement").fetchone()[0])
        except psycopg.errors.UndefinedTable:
            return 0


def topic_size(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    total = sum(consumer.end_offsets(partitions).values())
    consumer.close()
    return total


def fresh_store(args: argparse.Namespace) -> Settings:
    data_dir = Path(tempfile.mkdtemp(prefix="lrs-kafka-bench-"))
    event_store = args.event_store
    if event_store:  # a fresh database per run, next to the one given
        name = f"lrs_kafka_bench_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(event_store, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        event_store = f"{event_store.rsplit('/', 1)[0]}/{name}"
    settings = Settings(data_dir=data_dir, event_store=event_store)
    LearningRecordStore(env=settings.event_store_env()).issue_credential(
        "bench", ["statements/write"], key="bench-tool")
    return settings


def timed(name: str, commands: list[list[str]], progress: Callable[[], int], total: int,
          env: dict[str, str] | None = None) -> tuple[float, float]:
    """From starting the processes until all ``total`` arrived; and the steady rate, from the
    first arrival on (start-up, imports and the consumer group's first rebalance excluded).
    Returns that rate and the processes' CPU per statement over the same span (us), which
    other work on the machine disturbs less than the rate."""
    started = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env) for c in commands]
    first: tuple[float, int] | None = None
    first_cpu = 0.0
    try:
        while (done := progress()) < total:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"{name} exited early")
            if first is None and done > 0:
                first = (time.perf_counter(), done)
                first_cpu = _cpu(processes)
            time.sleep(0.05)
        ended = time.perf_counter()
        cpu = _cpu(processes) - first_cpu
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
    first = first or (started, 0)
    steady = (total - first[1]) / (ended - first[0])
    cpu_us = cpu / (total - first[1]) * 1e6
    print(f"| {name} | {total:,} | {first[0] - started:.1f} | {ended - started:.1f} |"
          f" {total / (ended - started):,.0f} | {steady:,.0f} | {cpu_us:,.0f} |", flush=True)
    return steady, cpu_us


def _cpu(processes: list[subprocess.Popen[bytes]]) -> float:
    """User and system seconds the processes have used so far."""
    return sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in processes)


def run(args: argparse.Namespace, bootstrap: str) -> None:
    topic, outbound = f"statements-{uuid.uuid4().hex[:6]}", f"events-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, 6)
    create_topic(bootstrap, outbound, 6)
    rng = random.Random(11)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    sizes = []
    for _ in range(args.statements):
        value = one_kb_statement(rng)
        sizes.append(len(value))
        producer.send(topic, value=value, headers=[("lrs-credential", b"bench-tool")])
    producer.flush()
    base = [sys.executable, "-m", "lrs.cli.main"]
    print(f"## Kafka, {args.statements:,} statements of {sum(sizes) / len(sizes):,.0f} bytes,"
          f" 6 partitions, into {args.event_store or 'SQLite'}\n")
    print("| stage | statements | start-up s | total s | statements/s, total |"
          " statements/s, steady | CPU us/statement, steady |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    settings = Settings()
    costs: dict[int, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for n in args.ingesters:
            rates = {}
            for sealed in (True, False) if args.sealing == "both" else (args.sealing == "on",):
                settings = fresh_store(args)
                store_flags = ["--data-dir", str(settings.data_dir)]
                if settings.event_store:
                    store_flags += ["--event-store", settings.event_store]
                group = f"bench-{uuid.uuid4().hex[:6]}"  # one group: the processes share the topic
                commands = [[*base, "ingest", "kafka", "--bootstrap", bootstrap, "--topic", topic,
                             "--group", group, "--instance-id", f"ingester-{i}", *store_flags]
                            for i in range(n)]
                env = os.environ | {"LRS_SEAL_STATEMENTS": "true" if sealed else "false"}
                what = "sealed" if sealed else "plaintext"
                rates[sealed] = timed(
                    f"ingest: topic → log, {n} ingester process{'es' if n > 1 else ''}, {what}",
                    commands, partial(stored_count, settings), args.statements, env)
            if len(rates) == 2:
                (sealed_rate, sealed_cpu), (plain_rate, plain_cpu) = rates[True], rates[False]
                costs.setdefault(n, []).append((1 - sealed_rate / plain_rate,
                                                sealed_cpu / plain_cpu - 1))
    for n, cost in costs.items():
        slower, cpu_more = [c for c, _ in cost], [c for _, c in cost]
        print(f"\nsealing cost, {n} ingester{'s' if n > 1 else ''}, each round: steady rate"
              f" slower by {', '.join(f'{c * 100:.1f}' for c in slower)} % (median"
              f" {statistics.median(slower) * 100:.1f} %); CPU per statement more by"
              f" {', '.join(f'{c * 100:.1f}' for c in cpu_more)} % (median"
              f" {statistics.median(cpu_more) * 100:.1f} %)")
    store_flags = ["--data-dir", str(settings.data_dir)]
    if settings.event_store:
        store_flags += ["--event-store", settings.event_store]
    timed("relay: log → topic", [[*base, "relay", "kafka", "--bootstrap", bootstrap, "--topic",
                                  outbound, *store_flags]],
          partial(topic_size, bootstrap, outbound), args.statements)


def main() -> None:
    # A terminated run still stops the broker (the finally below), which would otherwise linger.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__)
    # At 100,000 messages of 1 KB, noida-db's fetches stalled with the broker at 100% CPU.
    parser.add_argument("--statements", type=int, default=50_000)
    parser.add_argument("--bootstrap", help="an existing broker; default: start noida-db")
    parser.add_argument("--event-store", default=None)
    parser.add_argument("--ingesters", type=int, nargs="+", default=[1, 2],
                        help="ingester processes in the consumer group, one run per value")
    parser.add_argument("--sealing", choices=("on", "off", "both"), default="on",
                        help="both: each run sealed and then plaintext (LRS_SEAL_STATEMENTS)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.bootstrap:
        run(args, args.bootstrap)
        return
    port = free_port()
    binary = shutil.which("noida-db", path=str(Path(sys.executable).parent)) or "noida-db"
    with tempfile.TemporaryDirectory(prefix="noida-bench-") as broker_dir:
        broker = start_noida(binary, port, broker_dir)
        try:
            bootstrap = f"127.0.0.1:{port}"
            if not _reachable(bootstrap, 30):
                raise RuntimeError("the broker did not start")
            run(args, bootstrap)
        finally:
            stop_noida(broker)


if __name__ == "__main__":
    main()
