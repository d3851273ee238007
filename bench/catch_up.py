"""Benchmark: the CPU of one catch-up of the views, by how many statements it applies and by
how many threads DuckDB runs (LRS_VIEWS_THREADS).

In-process, on a SQLite store that already holds `--stored` statements (`--learners` 1,000 and
500 activities, as bench/ingest.py sends) with its views caught up: each round appends N statements
through the writer, then times `catch_up()` alone, of a runner for each thread count in turn
(the same statements; which goes first takes turns). Prints the median and the least of the rounds
in milliseconds of CPU (every thread of the process: DuckDB's included) and of wall time.

    python bench/catch_up.py [--stored 20000] [--sizes 1 100 1000 5000] [--threads 1 2] [--rounds 8]
                             [--learners 1000]

On this 2-core machine a catch-up cost about 50 ms, plus 0.11 ms for each learner it refreshed,
plus 0.02 ms a statement: 1,000 statements of 10 learners took 75 ms, of 1,000 learners (some
630 of them in the 1,000 statements) 146 ms. Under load the learners touched, not the
statements, are what the views spend on.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import make_statement
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.committer import GroupCommitter
from lrs.config import Settings
from lrs.views_child import open_sandboxed_runner


def main(args: argparse.Namespace) -> None:
    rng = random.Random(5)
    print(f"\n## One catch-up of the views, at {args.stored:,} stored, {args.learners:,} learners"
          " (CPU of every thread, ms)\n")
    print("| statements | DuckDB threads | CPU median | CPU least | wall median |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="lrs-bench-catch-up-") as scratch:
        settings = Settings(data_dir=Path(scratch))
        store = LearningRecordStore(env=settings.event_store_env())
        committer = GroupCommitter(store)
        writer = Principal("bench", "bench", frozenset({"all"}), settings.authority_home_page)

        def append(count: int) -> None:
            for start in range(0, count, 1000):
                batch = [make_statement(rng, args.learners, 500)
                         for _ in range(min(1000, count - start))]
                committer.store(prepare_statements(batch, writer, "1.0.3", len(batch)))

        append(args.stored)
        runners = []
        for threads in args.threads:
            # As `lrs serve`'s views process opens them; a file of its own for each, as DuckDB
            # lets one instance of a process open a file.
            runners.append((threads, open_sandboxed_runner(store, settings.model_copy(update={
                "projections_file": Path(scratch) / f"views-{threads}.duckdb",
                "views_threads": threads}))))
            runners[-1][1].catch_up()
        try:
            for size in args.sizes:
                cpu: dict[int, list[float]] = {threads: [] for threads, _ in runners}
                wall: dict[int, list[float]] = {threads: [] for threads, _ in runners}
                for turn in range(args.rounds):
                    append(size)
                    # The same statements for each, in turn first: neither has the warmer cache.
                    first = turn % len(runners)
                    for threads, runner in runners[first:] + runners[:first]:
                        started, clock = time.process_time(), time.perf_counter()
                        runner.catch_up()
                        cpu[threads].append(time.process_time() - started)
                        wall[threads].append(time.perf_counter() - clock)
                for threads, _ in runners:
                    print(f"| {size:,} | {threads} | {statistics.median(cpu[threads]) * 1e3:.1f} |"
                          f" {min(cpu[threads]) * 1e3:.1f} |"
                          f" {statistics.median(wall[threads]) * 1e3:.1f} |", flush=True)
        finally:
            for _, runner in runners:
                runner.close()
            committer.close()
            store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000, 5000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="DuckDB thread counts, each once (0: DuckDB's default)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--learners", type=int, default=1000,
                        help="the statements' learners: a catch-up refreshes each it touches")
    main(parser.parse_args())
