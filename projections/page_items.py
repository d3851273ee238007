"""What one page of events brings to the projections, and the parameters in it that follow the
rules (projections/bkt.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from lrs.errors import BadRequest
from projections.bkt import parameters_from

log = logging.getLogger("lrs.projections")


@dataclass
class PageItems:
    """What one page of events brings: statements (as event-state JSON, for facts_sql),
    alignments, parameters, roster rows."""

    states: list[tuple[int, bytes]] = field(default_factory=list)
    alignments: list[tuple[Any, ...]] = field(default_factory=list)
    parameters: list[tuple[Any, ...]] = field(default_factory=list)
    roster: list[tuple[Any, ...]] = field(default_factory=list)

    def add_statement(self, position: int, statement: dict[str, Any]) -> None:
        self.states.append((position, orjson.dumps({"statement": statement})))

    def add_state(self, position: int, state: bytes) -> None:
        """A stored statement event's state as the log holds it (plain JSON)."""
        self.states.append((position, state))

    def add_alignments(self, position: int, framework: str, alignments: list[list[str]],
                       parameters: dict[str, dict[str, Any]]) -> None:
        """A load of alignments and parameters, or a fit of parameters (no alignments)."""
        self.alignments += [(a, c, framework, position) for a, c in alignments]
        self.parameters += [(c, p, framework, position) for c, p in parameters.items()]

    def add_roster(self, position: int, entries: list[list[str]]) -> None:
        # Older roster events carry no org.
        self.roster += [(e[0], e[1], e[2] if len(e) > 2 else None, position) for e in entries]


def latest_loads(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of the newest load (the last field: its log position) of each first field (a
    learner, an activity, a competency): a later load replaces an earlier one in the same page
    as it does across pages, so the views do not depend on where pages break."""
    newest: dict[Any, Any] = {}
    for row in rows:
        newest[row[0]] = max(newest.get(row[0], row[-1]), row[-1])
    return [row for row in rows if row[-1] == newest[row[0]]]


def checked_parameters(parameters: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """competency_parameters rows of the parameters that follow the rules. Loads are checked
    before they are recorded, but the log may hold older ones that were not: those are left
    out (with a warning), so the competency keeps what it had."""
    rows = []
    for competency, values, source, seq in parameters:
        try:
            p = parameters_from(competency, values)
        except BadRequest as exc:
            log.warning("%s; the parameters at log position %s are ignored", exc, seq)
            continue
        rows.append((competency, p.prior, p.learn, p.guess, p.slip,
                     orjson.dumps([list(i) for i in p.items]).decode(), source, seq))
    return rows
