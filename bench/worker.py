"""Benchmark: what a worker of `lrs serve` spends on each statement it takes in, by stage.

In-process, on one core: the body parsed (`parse_json`), validated (`validate_statements`),
`prepare_statements` (validation again, enrichment, the index row, the body the writer stores),
the store's `work_ahead` (keys hashed, the statement sealed) and the message that hands the
batch to the parent (lrs/api/links.py). The figures are those of the round that took least in
all, in microseconds per statement. Validation is also timed on its own, on a second parse of
the body: a pass over the same objects would leave prepare_statements what the first touch
costs (each key's hash computed and kept, for one), as the server's single pass does not.

Timings on a shared machine move by 10-40 % from one run to the next. For a change of a few per
cent, count instructions instead, which callgrind repeats exactly: run `--once` under valgrind
with two sizes and divide the difference by the extra statements (the start-up cancels out).
Fix the hash seed on both sides of a comparison: with it random, the same code's count moves
by about 1 % (dicts and sets lay out differently):

    python bench/worker.py [--batch 100] [--statements 5000] [--rounds 12]
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/worker.py --once 100
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/worker.py --once 1100
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import make_statement
from bench.writer import WRITER  # the same credential as the writer's benchmark
from ingest.pipeline import prepare_statements
from lrs.api.links import STORE, request_message
from lrs.application import LearningRecordStore
from lrs.config import Settings
from schemas.validate import parse_json, validate_statements

STAGES = ("parse", "prepare_statements", "work_ahead", "pickle")


def bodies(count: int, batch: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [orjson.dumps([make_statement(rng, 1000, 500) for _ in range(batch)])
            for _ in range(max(1, count // batch))]


def one_pass(store: LearningRecordStore, sent: list[bytes]) -> dict[str, float]:
    """CPU seconds of each stage over every body, as a worker takes them."""
    spent = dict.fromkeys((*STAGES, "validation"), 0.0)
    clock = time.process_time
    for body in sent:
        alone = parse_json(body)
        started = clock()
        validate_statements(alone, "1.0.3")
        spent["validation"] += clock() - started
        started = clock()
        payload = parse_json(body)
        parsed = clock()
        prepared = prepare_statements(payload, WRITER, "1.0.3", 1000)
        ready = clock()
        sealed = store.work_ahead(prepared, on_loop=True)
        worked = clock()
        request_message(STORE, 1, ("default", sealed))  # as the worker's link sends it
        done = clock()
        spent["parse"] += parsed - started
        spent["prepare_statements"] += ready - parsed
        spent["work_ahead"] += worked - ready
        spent["pickle"] += done - worked
    return spent


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="lrs-bench-worker-") as folder:
        store = LearningRecordStore(env=Settings(data_dir=Path(folder)).event_store_env())
        try:
            # Every learner's key made before anything is counted, as in a store in use.
            one_pass(store, bodies(2000, 100, seed=0))
            if args.once:
                one_pass(store, bodies(args.once, 100))
                return
            sent = bodies(args.statements, args.batch)
            count = len(sent) * args.batch
            rounds = [one_pass(store, sent) for _ in range(args.rounds)]
            best = min(rounds, key=lambda spent: sum(spent[stage] for stage in STAGES))
        finally:
            store.close()
    print(f"\n## A worker's CPU per statement, in-process, batch {args.batch}"
          f" (the least of {args.rounds} rounds of {count:,} statements)\n")
    print("| stage | us per statement |")
    print("|---|---:|")
    for stage in STAGES:
        print(f"| {stage} | {best[stage] / count * 1e6:.1f} |")
        if stage == "prepare_statements":
            print(f"| of which validation | {best['validation'] / count * 1e6:.1f} |")
    print(f"| all | {sum(best[stage] for stage in STAGES) / count * 1e6:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--once", type=int, default=0, metavar="N",
                        help="one pass of N statements after the warm-up, for callgrind")
    main(parser.parse_args())
