"""Everything derived from one learner's facts, as one resumable fold.

A learner's rows (profile, mastery and its transitions, days, class) come from folding the
learner's facts oldest first. The fold's state is saved with the rows, so when new facts arrive
later than everything folded, the runner resumes the fold with just those facts; a fact that
lands earlier (a late timestamp, a voiding, new alignments) restarts the fold from the first
fact. Either way the rows are the same, so a rebuild equals the incremental path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from projections.bkt import BKTParameters
from projections.engagement import EngagementFold
from projections.facts import Fact, from_iso, to_iso
from projections.mastery import MasteryFold
from projections.profile import ProfileFold


@dataclass
class LearnerRows:
    """A learner's rows for each derived table, as tuples in the tables' column order."""

    profile: tuple[Any, ...]
    mastery: list[tuple[Any, ...]] = field(default_factory=list)
    transitions: list[tuple[Any, ...]] = field(default_factory=list)
    evidence: list[tuple[Any, ...]] = field(default_factory=list)
    days: list[tuple[Any, ...]] = field(default_factory=list)
    class_row: tuple[Any, ...] = ()
    state: tuple[Any, ...] = ()


class LearnerFold:
    def __init__(self, learner: str, alignments: Mapping[str, Sequence[str]],
                 parameters: Mapping[str, BKTParameters]) -> None:
        self.learner = learner
        self.profile = ProfileFold(learner)
        self.mastery = MasteryFold(learner, alignments, parameters)
        self.engagement = EngagementFold(learner)
        self.last_class: str | None = None
        self.last_seq = 0
        self.last_ts: datetime | None = None
        self.folded = 0  # facts folded since this fold started or resumed

    def add(self, fact: Fact) -> None:
        self.profile.add(fact)
        self.mastery.add(fact)
        self.engagement.add(fact)
        if fact.class_id is not None:
            self.last_class = fact.class_id
        self.last_seq = max(self.last_seq, fact.seq)
        self.last_ts = fact.ts
        self.folded += 1

    def table_rows(self, touched_only: bool, class_id: str | None) -> LearnerRows | None:
        """The rows to write (None when every statement of the learner was voided). A resumed
        fold gives only its touched mastery rows, with the evidence ids to append."""
        if self.last_ts is None:
            return None
        p = self.profile.row()
        rows = LearnerRows((p.learner, list(p.names), p.first_seen, p.last_seen, p.statements,
                            _json(p.activities_by_type), _json(p.goals), _json(p.interests),
                            _json(p.reflections), p.comments, p.shares, p.helped,
                            list(p.peers_helped)))
        rows.mastery = [(r.learner, r.competency, r.probability, r.level, r.evidence_count,
                         r.last_evidence, list(r.statement_ids), r.prior, r.learn, r.guess, r.slip,
                         r.mastered_at, r.first_mastered_at)
                        for r in self.mastery.rows(touched_only=touched_only)]
        rows.transitions = [(t.learner, t.competency, t.level, t.reached_at, t.probability,
                             t.statement_id) for t in self.mastery.transitions]
        rows.evidence = [(e.learner, e.competency, e.n, e.ts, e.statement_id, e.correct, e.item_kind,
                          e.probability, e.level) for e in self.mastery.evidence]
        rows.days = [(d.learner, d.day, d.active_minutes, d.statements, d.sessions)
                     for d in self.engagement.rows()]
        # A roster says which class a learner is in; otherwise the statements do.
        rows.class_row = (self.learner, class_id or self.last_class)
        rows.state = (self.learner, self.last_seq, self.last_ts, self.state())
        return rows

    def state(self) -> str:
        return orjson.dumps({"profile": self.profile.state(), "mastery": self.mastery.state(),
                             "engagement": self.engagement.state(), "class": self.last_class,
                             "last_seq": self.last_seq, "last_ts": to_iso(self.last_ts)}).decode()

    @classmethod
    def resume(cls, learner: str, alignments: Mapping[str, Sequence[str]],
               parameters: Mapping[str, BKTParameters], text: str) -> LearnerFold:
        state: dict[str, Any] = orjson.loads(text)
        fold = cls(learner, alignments, parameters)
        fold.profile = ProfileFold.resume(learner, state["profile"])
        fold.mastery.resume(state["mastery"])
        fold.engagement.resume(state["engagement"])
        fold.last_class, fold.last_seq = state["class"], state["last_seq"]
        fold.last_ts = from_iso(state["last_ts"])
        return fold


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
