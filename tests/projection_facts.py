"""Hand-made statement facts for projection tests."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any

from projections.facts import Fact

_seq = count(1)


def fact(at: str, verb: str = "http://adlnet.gov/expapi/verbs/answered", **values: Any) -> Fact:
    base: dict[str, Any] = dict(
        seq=next(_seq), statement_id=f"s{next(_seq)}", learner="mbox:mailto:ada@example.org",
        learner_name="Ada", ts=datetime.fromisoformat(at), verb=verb,
        object_id="https://example.org/q1", object_type=None, success=None, scaled=None,
        duration_s=None, response=None, registration=None, class_id=None, competencies=(),
        voids=None, peer=None, goal_target=None, stored=None, timestamp_in_future=False,
        interaction_type=None)
    base.update(values)
    return Fact(**base)
