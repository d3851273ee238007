"""`lrs export district` (a bundle for a district's own systems) and `lrs export roster-map`."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrs.application import LearningRecordStore
from lrs.cli.common import settings_from
from lrs.cli.projections import read_roster
from lrs.errors import BadRequest
from lrs.export.pseudonyms import Disclosure, Pseudonymiser, read_secret


def cmd_district(args: argparse.Namespace) -> int:
    from lrs.export.bundle import DistrictExporter, ExportRequest, parse_day

    # Everything the user typed is checked before the log is opened or a file is written.
    request = ExportRequest(
        out=args.out, since_export=args.since_export, org=args.org,
        start=parse_day(args.start, "--from"), end=parse_day(args.end, "--to"),
        position=args.position,
        disclosure=Disclosure(names=args.include_names, emails=args.include_emails,
                              free_text=args.include_free_text))
    secret = read_secret(args.secret_file)
    settings = settings_from(args)
    views = args.projections_file or settings.store_dir / "export-views.duckdb"
    store = LearningRecordStore(env=settings.event_store_env())
    manifest = DistrictExporter(store, views, secret).export(request)
    files = {f["path"]: f["rows"] for f in manifest["files"]}
    print(f"{manifest['kind']} bundle at log position {manifest['position']} in {args.out}:"
          f" {files['tables/learner_profiles.parquet']} learners,"
          f" {files['tables/mastery.parquet']} mastery rows,"
          f" {files['statements.jsonl']} statements")
    return 0


def cmd_roster_map(args: argparse.Namespace) -> int:
    """The district's own join from its roster to the pseudonyms in its bundles."""
    pseudonyms = Pseudonymiser(read_secret(args.secret_file))
    rows = read_roster(Path(args.roster))
    if args.out.exists():
        raise BadRequest(f"--out {args.out}: exists; the map is written to a new file")
    with args.out.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["pseudonym", "learner", "user_sourced_id", "class_id", "org"])
        for learner, class_id, org, user_id in sorted(rows, key=lambda r: (r[0], r[1])):
            writer.writerow([pseudonyms.learner(learner), learner, user_id or "", class_id, org or ""])
    print(f"wrote {len(rows)} rows to {args.out}: keep it with the district's secret, not in a bundle")
    return 0


def add_commands(commands: Any, store_options: Callable[[argparse.ArgumentParser], None]) -> None:
    export = commands.add_parser("export", help="data exports for districts")
    actions = export.add_subparsers(dest="action", required=True)

    district = actions.add_parser("district", help="write a pseudonymised, reproducible bundle")
    district.add_argument("--out", type=Path, required=True, help="the bundle folder (new, empty, or"
                          " an earlier bundle to replace)")
    district.add_argument("--since-export", type=Path, metavar="PREVIOUS",
                          help="an earlier bundle: write only what changed since its position")
    district.add_argument("--org", help="only learners the roster places in this org")
    district.add_argument("--from", dest="start", metavar="DATE", help="first day (YYYY-MM-DD)")
    district.add_argument("--to", dest="end", metavar="DATE", help="last day (YYYY-MM-DD)")
    district.add_argument("--position", type=int, help="the log position to export (default: the"
                          " newest); the same position gives the same bytes")
    district.add_argument("--secret-file", type=Path, help="the district's pseudonym key"
                          " (default: LRS_EXPORT_SECRET)")
    district.add_argument("--include-names", action="store_true",
                          help="add people's names (to every agent, wherever it is)")
    district.add_argument("--include-emails", action="store_true",
                          help="add people's emails (to every agent with one)")
    # --include-reflections is the flag's first name, kept so existing scripts still run.
    district.add_argument("--include-free-text", "--include-reflections", dest="include_free_text",
                          action="store_true",
                          help="add free text: activity names and descriptions, responses, goals,"
                          " reflections, comments, extension values; the people the LRS knows in"
                          " them are still pseudonymised")
    district.add_argument("--projections-file", type=Path, help="the exporter's own views file"
                          " (default: DATA_DIR/export-views.duckdb)")
    store_options(district)
    district.set_defaults(func=cmd_district)

    roster_map = actions.add_parser("roster-map", help="pseudonym for each learner of a roster file")
    roster_map.add_argument("roster", help="roster CSV: learner, class_id[, org, user_sourced_id]")
    roster_map.add_argument("--out", type=Path, required=True)
    roster_map.add_argument("--secret-file", type=Path, help="default: LRS_EXPORT_SECRET")
    roster_map.set_defaults(func=cmd_roster_map)
