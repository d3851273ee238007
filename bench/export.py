"""Benchmark: district exports. Time and peak memory of `lrs export district` over a simulated
school: a cold full export (the exporter builds its own views from position 0), the same
position again (byte-identical), and an incremental export after a day of new statements, at two
sizes so the memory figure shows whether it grows with the data.

    python bench/export.py [--learners 550,2350 --days 90]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.projections import seed
from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.committer import GroupCommitter
from lrs.config import Settings
from projections.runner import STATEMENT_TOPIC
from projections.simulator import School

LRS = str(Path(sys.executable).with_name("lrs"))
ENV = {**os.environ, "LRS_EXPORT_SECRET": "bench-district-secret-0123456789"}


def run_export(data_dir: Path, out: Path, *flags: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `lrs export district` process."""
    started = time.perf_counter()
    process = subprocess.Popen([LRS, "export", "district", "--out", str(out), "--data-dir",
                                str(data_dir), *flags], env=ENV, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"export failed with status {status}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def add_a_day(data_dir: Path, learners: int) -> int:
    settings = Settings(data_dir=data_dir)
    store = LearningRecordStore(env=settings.event_store_env())
    committer = GroupCommitter(store)
    writer = Principal("simulator", "simulator", frozenset({"all"}), settings.authority_home_page)
    day = next(School(learners, seed=7).days(1))
    for start in range(0, len(day), 1000):
        committer.store(prepare_statements(day[start:start + 1000], writer, "1.0.3", 1000))
    committer.close()
    store.close()
    return len(day)


def identical(one: Path, two: Path) -> bool:
    files = [str(p.relative_to(one)) for p in one.rglob("*") if p.is_file()]
    match, mismatch, errors = filecmp.cmpfiles(one, two, files, shallow=False)
    return not mismatch and not errors and len(match) == len(files)


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", default="550,2350", help="comma-separated school sizes")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--data-dir", type=Path, action="append", default=[],
                        help="a folder seeded by an earlier run (bench/projections.py); repeatable")
    args = parser.parse_args()
    print("| statements | export | seconds | statements/s | peak RSS, MB | bundle, MB | note |")
    print("|---:|---|---:|---:|---:|---:|---|")
    folders = [(d, 2300) for d in args.data_dir] or [
        (Path(tempfile.mkdtemp(prefix="lrs-export-bench-")), int(n)) for n in args.learners.split(",")]
    for data_dir, learners in folders:
        if (data_dir / "events.sqlite3").exists():
            store = LearningRecordStore(env=Settings(data_dir=data_dir).event_store_env())
            statements = store.index.events_after(0, [STATEMENT_TOPIC])
            store.close()
        else:
            statements = seed(data_dir, learners, args.days)
        out = Path(tempfile.mkdtemp(prefix="lrs-export-bundles-"))
        seconds, rss = run_export(data_dir, out / "full")
        print(f"| {statements:,} | full, cold (builds its views from position 0) | {seconds:.1f} |"
              f" {statements / seconds:,.0f} | {rss:.0f} | {size_mb(out / 'full'):.0f} | |", flush=True)
        seconds, rss = run_export(data_dir, out / "again")
        same = "byte-identical" if identical(out / "full", out / "again") else "DIFFERENT BYTES"
        print(f"| {statements:,} | full, same position, views warm | {seconds:.1f} |"
              f" {statements / seconds:,.0f} | {rss:.0f} | {size_mb(out / 'again'):.0f} | {same} |",
              flush=True)
        added = add_a_day(data_dir, learners)
        seconds, rss = run_export(data_dir, out / "next", "--since-export", str(out / "full"))
        print(f"| {added:,} new | incremental (--since-export) | {seconds:.1f} | |"
              f" {rss:.0f} | {size_mb(out / 'next'):.1f} | |", flush=True)


if __name__ == "__main__":
    main()
