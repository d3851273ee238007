"""Everything derived from one learner's facts, as one resumable fold.

A learner's rows (profile, mastery and its transitions, days, class) come from folding the
learner's facts oldest first. The fold's state is saved with the rows, so when new facts arrive
later than everything folded, the runner resumes the fold with just those facts; a fact that
lands earlier (a late timestamp, a voiding, new alignments) restarts the fold from the first
fact. Either way the rows are the same, so a rebuild equals the incremental path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from projections.bkt import BKTParameters
from projections.engagement import EngagementFold
from projections.facts import Fact, from_iso, to_iso
from projections.mastery import MasteryFold
from projections.profile import ProfileFold


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
