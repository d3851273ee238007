"""`lrs projections rebuild`, `lrs project`, `lrs sql`, `lrs alignments load`, `lrs simulate`."""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from lrs.application import LearningRecordStore
from lrs.cli.common import CommandFailed, settings_from
from lrs.cli.progress import days_progress
from lrs.cli.remote import remote_from
from lrs.credentials import learner_key
from lrs.errors import BadRequest

_PARAMETERS = ("prior", "learn", "guess", "slip")


def _store(args: argparse.Namespace) -> LearningRecordStore:
    return LearningRecordStore(env=settings_from(args).event_store_env())


def _views_path(args: argparse.Namespace) -> Path:
    settings = settings_from(args)
    path = args.projections_file or settings.projections_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(path)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from projections.runner import ProjectionRunner

    runner = ProjectionRunner(_store(args), _views_path(args), page_size=args.page_size)
    applied = runner.rebuild()
    print(f"rebuilt every view from position 0: {applied} events, position {runner.position()}")
    runner.close()
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    """The projector as its own process, for deployments where API nodes run with it off."""
    from projections.runner import ProjectionRunner

    runner = ProjectionRunner(_store(args), _views_path(args), page_size=args.page_size,
                              threads=settings_from(args).views_threads)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop.set())
    if args.source == "kafka":
        from projections.kafka_source import KafkaProjectionSource

        if not args.bootstrap:
            raise BadRequest("--source kafka needs --bootstrap (and --topic)")
        KafkaProjectionSource(runner, args.bootstrap, args.topic, args.group,
                              store=settings_from(args).store).run()
    else:
        runner.run()
    runner.close()
    return 0


def _print_table(columns: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for number, row in enumerate(cells):
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def cmd_sql(args: argparse.Namespace) -> int:
    """Through a running LRS (LRS_URL), or straight from the views file when none runs; either
    way in the analysts' sandbox (projections/queries.py: read_only_sql) and within its limits."""
    settings = settings_from(args)
    # The server stops the query at its own limit; this timeout only bounds a server that hangs.
    remote = remote_from(args, timeout=settings.sql_timeout_seconds + 30)
    if remote is not None:
        with remote:
            return _print_result(remote.post_json("/api/sql", json={"sql": args.query}))
    from projections.queries import SQLLimits, lock_sandbox, read_only_sql, sandbox_config

    path = Path(args.projections_file or settings.projections_path)
    if not path.exists():
        raise CommandFailed(f"no views at {path}: build them from the event log with"
                            f" `{_rebuild_command(args)}`, or query a running LRS (which keeps"
                            " them) with --url and --credential")
    try:
        con = duckdb.connect(str(path), read_only=True,
                             config=sandbox_config(settings.views_memory_limit))
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise CommandFailed(f"cannot open the views at {path}: {exc}") from None
        raise CommandFailed(f"the views at {path} are open in another process (a running `lrs"
                            " serve` or `lrs project`): query through it with --url and"
                            " --credential (or LRS_URL and LRS_CREDENTIAL)") from None
    try:
        lock_sandbox(con)
        return _print_result(read_only_sql(con, args.query, SQLLimits.of(settings)))
    finally:
        con.close()


def _rebuild_command(args: argparse.Namespace) -> str:
    words = ["lrs projections rebuild"]
    for option in ("data_dir", "event_store", "projections_file", "store"):
        if getattr(args, option, None):
            words.append(f"--{option.replace('_', '-')} {getattr(args, option)}")
    return " ".join(words)


def _print_result(result: dict[str, Any]) -> int:
    _print_table(result["columns"], result["rows"])
    if result["truncated"]:
        print(f"(the first {len(result['rows'])} rows: LRS_SQL_MAX_ROWS)", file=sys.stderr)
    return 0


def read_alignments(path: Path) -> tuple[str, list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """CSV (activity_id, competency_id[, prior, learn, guess, slip]) or JSON (parameters may
    also give guess and slip per item kind); see README. The parameters are checked on load."""
    alignments: list[tuple[str, str]] = []
    parameters: dict[str, dict[str, Any]] = {}
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = {"activity_id", "competency_id"} - set(reader.fieldnames or [])
            if missing:
                raise BadRequest(f"{path}: needs the columns {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                alignments.append((row["activity_id"], row["competency_id"]))
                if all(row.get(p) for p in _PARAMETERS):
                    try:
                        parameters[row["competency_id"]] = {p: float(row[p]) for p in _PARAMETERS}
                    except ValueError:
                        raise BadRequest(f"{path}:{line}: BKT parameters must be numbers") from None
        return path.stem, alignments, parameters
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path}: not JSON ({exc})") from None
    for item in document.get("alignments", []):
        alignments.append((item["activity"], item["competency"]))
    for competency, values in document.get("parameters", {}).items():
        if not isinstance(values, dict):
            raise BadRequest(f"{path}: the parameters of {competency} must be an object")
        parameters[competency] = values
    return str(document.get("framework", path.stem)), alignments, parameters


def cmd_alignments_load(args: argparse.Namespace) -> int:
    framework, alignments, parameters = read_alignments(Path(args.file))
    count = _store(args).load_alignments(args.framework or framework, alignments, parameters)
    print(f"loaded {count} alignments and parameters for {len(parameters)} competencies"
          f" ({args.framework or framework})")
    return 0


def cmd_roster_load(args: argparse.Namespace) -> int:
    """CSV with the columns learner (an IFI key, or an email) and class_id, and optionally org."""
    entries = [(learner, class_id, org) if org else (learner, class_id)
               for learner, class_id, org, _ in read_roster(Path(args.file))]
    count = _store(args).load_roster(entries)
    print(f"loaded {count} roster entries")
    return 0


def read_roster(path: Path) -> list[tuple[str, str, str | None, str | None]]:
    """(learner key, class id, org, the district's own user id) for each row of a roster CSV."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"learner", "class_id"} - set(reader.fieldnames or [])
        if missing:
            raise BadRequest(f"{path}: needs the columns {', '.join(sorted(missing))}")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not (row.get("learner") or "").strip() or not (row.get("class_id") or "").strip():
                raise BadRequest(f"{path}:{line}: learner and class_id must not be empty")
            rows.append((learner_key(row["learner"]), row["class_id"].strip(),
                         (row.get("org") or "").strip() or None,
                         (row.get("user_sourced_id") or "").strip() or None))
    return rows


def _sender(args: argparse.Namespace) -> Callable[[list[dict[str, Any]]], None]:
    remote = remote_from(args, timeout=120)
    if remote is not None:
        headers = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}

        def post(batch: list[dict[str, Any]]) -> None:
            remote.post("/xAPI/statements", content=orjson.dumps(batch), headers=headers)

        return post
    from ingest.pipeline import prepare_statements
    from lrs.auth import Principal
    from lrs.committer import GroupCommitter

    settings = settings_from(args)
    store = LearningRecordStore(env=settings.event_store_env())
    writer = Principal("simulator", "simulator", frozenset({"all"}), settings.authority_home_page)
    committer = GroupCommitter(store)

    def append(batch: list[dict[str, Any]]) -> None:
        committer.store(prepare_statements(batch, writer, "1.0.3", len(batch)))

    return append


def cmd_simulate(args: argparse.Namespace) -> int:
    """The term ends yesterday unless --start says otherwise: "now" in the views is when the LRS
    stored the statements, so a term dated in the past of that shows everyone inactive."""
    from projections.simulator import simulate

    if args.start:
        start = datetime.combine(date.fromisoformat(args.start), time(), UTC)
    else:
        start = datetime.combine(datetime.now(UTC).date() - timedelta(days=args.days), time(), UTC)
    truth_path = Path(args.truth) if args.truth else settings_from(args).data_dir / "simulation-truth.json"
    with days_progress(_sender(args), args.days, start) as send:
        result = simulate(args.learners, args.days, args.seed, send, start=start)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_bytes(orjson.dumps(result.truth(), option=orjson.OPT_INDENT_2))
    print(f"simulated {len(result.learners)} learners over {args.days} days from {start.date()}:"
          f" {result.statements} statements; ground truth in {truth_path}")
    return 0


def add_commands(commands: Any, store_options: Callable[[argparse.ArgumentParser], None]) -> None:
    def views_options(parser: argparse.ArgumentParser) -> None:
        store_options(parser)
        parser.add_argument("--projections-file", type=Path,
                            help="the DuckDB views file (default: DATA_DIR/views.duckdb)")
        parser.add_argument("--page-size", type=int, default=5000)

    projections = commands.add_parser("projections", help="the read models in DuckDB")
    actions = projections.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="rebuild every view from position 0")
    views_options(rebuild)
    rebuild.set_defaults(func=cmd_rebuild)

    project = commands.add_parser("project", help="run the projection runner as its own process")
    project.add_argument("--source", choices=["log", "kafka"], default="log",
                         help="the event log, or the relay's outbound Kafka topic")
    project.add_argument("--bootstrap", help="with --source kafka: host:port[,host:port]")
    project.add_argument("--topic", default="lrs.events", help="with --source kafka")
    project.add_argument("--group", default="lrs-projector", help="with --source kafka")
    views_options(project)
    project.set_defaults(func=cmd_project)

    sql = commands.add_parser("sql", help="run a read-only SQL query over the views")
    sql.add_argument("query")
    sql.add_argument("--url", help="a running LRS: the xAPI endpoint `lrs serve` prints, or its"
                     " root (LRS_URL)")
    sql.add_argument("--credential", help="key:secret (LRS_CREDENTIAL)")
    views_options(sql)
    sql.set_defaults(func=cmd_sql)

    alignments = commands.add_parser("alignments", help="activity-to-competency alignments")
    align_actions = alignments.add_subparsers(dest="action", required=True)
    load = align_actions.add_parser("load", help="load a CSV or JSON alignment file as an event")
    load.add_argument("file")
    load.add_argument("--framework", help="name of the framework (e.g. a CASE document URI)")
    store_options(load)
    load.set_defaults(func=cmd_alignments_load)

    roster = commands.add_parser("roster", help="which class each learner is in")
    roster_actions = roster.add_subparsers(dest="action", required=True)
    roster_load = roster_actions.add_parser("load", help="load a roster CSV (learner,class_id)")
    roster_load.add_argument("file")
    store_options(roster_load)
    roster_load.set_defaults(func=cmd_roster_load)

    simulate = commands.add_parser("simulate", help="simulate a school and post it to the LRS")
    simulate.add_argument("--learners", type=int, default=50)
    simulate.add_argument("--days", type=int, default=30)
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--start", help="first day of the term, YYYY-MM-DD (default: so that the"
                          " term ends yesterday)")
    simulate.add_argument("--truth", help="where to write the ground truth (JSON; default:"
                          " DATA_DIR/simulation-truth.json)")
    simulate.add_argument("--url", help="post to a running LRS: the xAPI endpoint `lrs serve`"
                          " prints, or its root (LRS_URL); else in-process")
    simulate.add_argument("--credential", help="key:secret (LRS_CREDENTIAL)")
    store_options(simulate)
    simulate.set_defaults(func=cmd_simulate)

