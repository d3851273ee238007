"""Benchmark: this checkout against another revision, POST rows in alternating runs.

A row of bench/ingest.py moves by 10-15 % from one run to the next on a shared 2-core machine,
as much as most changes to the hot path do. Runs of both, alternating, each on a fresh store
and in the same minutes, tell what the change did from what the machine did: the table gives
every run of each side, their medians and the change between the medians, for the rate and
for the server's CPU a statement (what a change saves where something else bounds the rate).

    python bench/ab.py --base HEAD~1 [--rounds 3] [--batches 1 100] [--connections 8]
                       [--seconds 10] [--workers 2]
                       [--postgres postgresql://…]  # '' for SQLite alone
                       [--sqlite | --no-sqlite]

The base revision is checked out in a temporary git worktree and its server runs from there,
with this checkout's virtual environment (a base that needs other dependencies will not start)
and this checkout's load (bench/statements.lua, wrk). The order of the two sides swaps each
round, so a machine that slows down over the run slows both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import running_server
from bench.ingest import ProcessCPU, fresh_database, run_wrk, views_caught_up

ROOT = Path(__file__).resolve().parent.parent


def rates(source: Path, event_store: str | None,
          args: argparse.Namespace) -> dict[tuple[int, int], tuple[float, float]]:
    """Statements/s of each (batch, connections) row, on a fresh store served from ``source``,
    and the server's CPU a statement in microseconds: every process of it (PostgreSQL's too),
    from the load's start until the views have caught up with it, so the work the views owe
    counts, and no row's is left to the next."""
    found = {}
    with running_server(event_store, env={"LRS_WORKERS": str(args.workers)},
                        source=str(source)) as server:
        for batch in args.batches:
            for connections in args.connections:
                cpu = ProcessCPU(server.pid, postgres=event_store is not None)
                result = run_wrk(server, batch, args.seconds, connections)
                views_caught_up(server)
                statements = result["requests"] * batch
                found[(batch, connections)] = (statements / result["seconds"],
                                               sum(cpu.used().values()) / statements * 1e6)
    return found


def main(args: argparse.Namespace) -> None:
    stores: list[tuple[str, str | None]] = [("SQLite", None)] if args.sqlite else []
    if args.postgres:
        stores.append(("PostgreSQL", args.postgres))
    with tempfile.TemporaryDirectory(prefix="lrs-bench-ab-") as scratch:
        base = Path(scratch) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                        str(base), args.base], check=True)
        try:
            sides = {"base": base, "this": ROOT}
            runs: dict[tuple[str, str, int, int], list[tuple[float, float]]] = {}
            for round_ in range(args.rounds):
                order = ["base", "this"] if round_ % 2 == 0 else ["this", "base"]
                for side in order:
                    for name, url in stores:
                        store = fresh_database(url, "lrs_bench_ab") if url else None
                        for row, measured in rates(sides[side], store, args).items():
                            runs.setdefault((name, side, *row), []).append(measured)
                print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False)
    print(f"\n## POST /xAPI/statements, {args.base} (base) against this checkout,"
          f" {args.rounds} alternating runs of {args.seconds} s, {args.workers} worker(s),"
          " fresh stores\n")
    print("The server's CPU a statement counts every process of it, PostgreSQL's included, from"
          " the load's start until the views have caught up.\n")
    print("| store | batch | connections | base: statements/s | this: statements/s | change |"
          " base: CPU µs a statement | this: CPU µs a statement | change |")
    print("|---|---:|---:|---|---|---:|---|---|---:|")
    for name, _ in stores:
        for batch in args.batches:
            for connections in args.connections:
                before = runs[(name, "base", batch, connections)]
                after = runs[(name, "this", batch, connections)]
                cells = [f"| {name} | {batch} | {connections} "]
                for index in (0, 1):  # the rate, then the CPU
                    old, new = (statistics.median(m[index] for m in side) for side in (before, after))
                    cells += [f"| {_runs(before, index)}, median {old:,.0f} ",
                              f"| {_runs(after, index)}, median {new:,.0f} ",
                              f"| {100 * (new - old) / old:+.1f} % "]
                print("".join(cells) + "|")


def _runs(measured: list[tuple[float, float]], index: int) -> str:
    return ", ".join(f"{m[index]:,.0f}" for m in measured)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--connections", type=int, nargs="+", default=[8])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server for the PostgreSQL rows; '' for none")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True)
    arguments = parser.parse_args()
    if not arguments.sqlite and not arguments.postgres:
        parser.error("nothing to compare: --no-sqlite and no --postgres server")
    known = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                            f"{arguments.base}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        parser.error(f"--base {arguments.base!r} names no commit of {ROOT}")
    main(arguments)
