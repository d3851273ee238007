"""`lrs mastery fit`: BKT parameters estimated from the log, recorded as an event in it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from lrs.application import LearningRecordStore
from lrs.cli.common import settings_from
from lrs.errors import BadRequest


def cmd_fit(args: argparse.Namespace) -> int:
    from projections.fit import METHOD, evidence_sequences, fit_all
    from projections.runner import ProjectionRunner

    store = LearningRecordStore(env=settings_from(args).event_store_env())
    # Facts from the log in a DuckDB of its own: works while the LRS runs and holds its views.
    runner = ProjectionRunner(store, ":memory:", page_size=args.page_size)
    runner.catch_up(refresh=False)
    sequences = evidence_sequences(runner.facts_by_learner(), runner.alignments())
    if args.competency and args.competency not in sequences:
        raise BadRequest(f"the log holds no evidence for {args.competency}")
    if not sequences:
        raise BadRequest("the log holds no evidence to fit")
    results = fit_all(sequences, runner.parameters(), [args.competency] if args.competency else None)
    position = runner.position()
    runner.close()
    print(f"{'competency':<48} {'learners':>8} {'evidence':>8} {'prior':>6} {'learn':>6}  guess/slip by"
          " item kind; log-likelihood per evidence (before)")
    for r in results:
        p = r.parameters
        kinds = "; ".join(f"{kind.rsplit('/', 1)[-1] or 'other'} {g:.3f}/{s:.3f}"
                          for kind, (g, s) in ((k, p.emission(k)) for k in r.kinds))
        print(f"{r.competency:<48} {r.learners:>8} {r.observations:>8} {p.prior:>6.3f} {p.learn:>6.3f}"
              f"  {kinds}; {r.log_likelihood:.4f} ({r.start_log_likelihood:.4f})")
    if args.dry_run:
        print("dry run: nothing recorded")
        return 0
    store.record_parameter_fit(METHOD, position, {r.competency: r.parameters.to_event() for r in results},
                               {r.competency: r.statistics() for r in results})
    print(f"recorded the parameters of {len(results)} competencies (fitted through log position"
          f" {position}); the views refold with them")
    return 0


def add_commands(commands: Any, store_options: Callable[[argparse.ArgumentParser], None]) -> None:
    mastery = commands.add_parser("mastery", help="the mastery model (Bayesian Knowledge Tracing)")
    actions = mastery.add_subparsers(dest="action", required=True)
    fit = actions.add_parser("fit", help="fit prior, learn, guess and slip per competency by EM and"
                             " record them as an event in the log")
    fit.add_argument("--competency", help="fit this competency only (default: every one with evidence)")
    fit.add_argument("--dry-run", action="store_true", help="print the fit, record nothing")
    fit.add_argument("--page-size", type=int, default=5000)
    store_options(fit)
    fit.set_defaults(func=cmd_fit)
