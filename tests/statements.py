"""Statement builders for tests: small, valid by default, overridable per rule."""

from __future__ import annotations

import uuid
from typing import Any

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def agent(name: str = "ada") -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{name}@example.org"}


def activity(slug: str = "algebra-1") -> dict[str, Any]:
    return {"objectType": "Activity", "id": f"https://example.org/activities/{slug}",
            "definition": {"name": {"en-US": slug}}}


def statement(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "actor": agent(),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": activity(),
    }
    base.update(overrides)
    return base


def with_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), **doc}


def voiding(target_id: str, **overrides: Any) -> dict[str, Any]:
    return statement(verb={"id": VOIDED}, object={"objectType": "StatementRef", "id": target_id},
                     **overrides)
