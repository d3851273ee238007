"""Attacks on the sealing changed after 3d6f7d0 (lone_actor on the model, zstd packing, seal_ahead
finding each statement's new keys from what it asked for). Each thread interleaving is made
deterministic by running the other thread's work at the point where the first can be preempted."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings
from lrs.key_ring import KeyBatch
from lrs.sealing import ERASED_HOME_PAGE

WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
ADA, BOB = "mailto:ada@example.org", "mailto:bob@example.org"
TEAM = "mailto:team-blue@example.org"


def said(mbox: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"mbox": mbox},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": "https://example.org/q/1"}, "result": {"response": text}, **extra}


def append(store: LearningRecordStore, prepared: Any) -> None:
    outcome = store.store_batches([prepared])[0]
    assert not isinstance(outcome, Exception), outcome


def another_request_committed_before_asking(store: LearningRecordStore, learner: str, nth: int,
                                            sender: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread sealing ahead is preempted just before it asks the ring for ``learner``'s key
    the ``nth`` time, and the writer commits another request of ``sender`` meanwhile: the ring's
    cache of the day (shared with the batch sealing ahead) now holds the key that write made."""
    real = KeyBatch.key_of
    state = {"asked": 0, "done": False}

    def key_of(self: KeyBatch, asked: str) -> Any:
        if not state["done"] and asked == learner:
            state["asked"] += 1
        if not state["done"] and state["asked"] == nth:
            state["done"] = True
            append(store, prepare_statements(said(sender, "another request"), WRITER, "1.0.3", 10))
        return real(self, asked)

    monkeypatch.setattr(KeyBatch, "key_of", key_of)


@pytest.mark.parametrize("shape", ["actor in its team", "object and instructor"])
def test_every_key_a_statement_sealed_ahead_is_sealed_under_is_written_with_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    """A statement may ask the ring for one learner's key twice (Ada as actor and as a member
    of her team; Bob as object and instructor). When the first ask makes a key and the writer
    commits another request of that learner before the second, the second gets the key now
    cached: the statement is sealed under both. seal_ahead's _KeysAsked kept one key per
    learner (the last), so the key the batch made was never written, and an acknowledged
    statement read back with that agent as an erased placeholder though nobody was forgotten."""
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        if shape == "actor in its team":
            team = {"objectType": "Group", "mbox": TEAM,
                    "member": [{"mbox": ADA, "name": "Ada"}, {"mbox": BOB, "name": "Bob"}]}
            doc = said(ADA, "with my team", context={"team": team})
            # Ada's key is asked for her as a member, then the team's, then hers as the actor's
            second, nth, sender = f"mbox:{TEAM}", 1, ADA
        else:
            bob = {"objectType": "Agent", "mbox": BOB, "name": "Bob"}
            doc = said(ADA, "thanks", object=bob, context={"instructor": bob})
            doc["verb"] = {"id": "http://id.tincanapi.com/verb/mentored"}
            second, nth, sender = f"mbox:{BOB}", 2, BOB  # Bob's: as object, then as instructor
        prepared = prepare_statements(doc, WRITER, "1.0.3", 10)
        another_request_committed_before_asking(store, second, nth, sender, monkeypatch)
        ahead = store.seal_ahead(prepared)
        monkeypatch.undo()
        append(store, ahead)
        opened = store.statement(doc["id"])[0]
        agents = (opened["context"]["team"]["member"] if shape == "actor in its team"
                  else [opened["object"], opened["context"]["instructor"]])
        assert not [a for a in agents if a.get("account", {}).get("homePage") == ERASED_HOME_PAGE], \
            agents
    finally:
        store.close()
