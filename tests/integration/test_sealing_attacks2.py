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
        ahead = store.work_ahead(prepared)
        monkeypatch.undo()
        append(store, ahead)
        opened = store.statement(doc["id"])[0]
        agents = (opened["context"]["team"]["member"] if shape == "actor in its team"
                  else [opened["object"], opened["context"]["instructor"]])
        assert not [a for a in agents if a.get("account", {}).get("homePage") == ERASED_HOME_PAGE], \
            agents
    finally:
        store.close()


# --- attacks that found nothing (kept as regression tests) ------------------------------------

HIDDEN, HIDDEN_NAME = "bob.hidden@example.org", "Bobby Hidden"
ACTIVITY = {"id": "https://example.org/q/1"}
VERB = {"id": "http://adlnet.gov/expapi/verbs/answered"}


def _hidden(**extra: Any) -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{HIDDEN}", "name": HIDDEN_NAME, **extra}


def _group(member: dict[str, Any], **ifi: Any) -> dict[str, Any]:
    return {"objectType": "Group", "name": "a group", "member": [member], **ifi}


def _sub(**extra: Any) -> dict[str, Any]:
    return {"objectType": "SubStatement", "actor": {"mbox": "mailto:carol@example.org"},
            "verb": VERB, "object": ACTIVITY, **extra}


# Every place xAPI 1.0.3 and 2.0.0 allow an Agent or Group other than the actor (Data 2.4).
HIDING_PLACES: dict[str, tuple[str, dict[str, Any]]] = {
    "object agent": ("1.0.3", {"object": _hidden()}),
    "object identified group": ("1.0.3", {"object": {"objectType": "Group",
                                                      "mbox": f"mailto:{HIDDEN}",
                                                      "name": HIDDEN_NAME}}),
    "object anonymous group member": ("1.0.3", {"object": _group(_hidden())}),
    "object identified group member": ("1.0.3", {"object": _group(
        _hidden(), mbox="mailto:g@example.org")}),
    "substatement actor": ("1.0.3", {"object": _sub(actor=_hidden())}),
    "substatement object": ("1.0.3", {"object": _sub(object=_hidden())}),
    "substatement instructor": ("1.0.3", {"object": _sub(context={"instructor": _hidden()})}),
    "substatement team member": ("1.0.3", {"object": _sub(context={"team": _group(_hidden())})}),
    "substatement contextAgents": ("2.0.0", {"object": _sub(context={"contextAgents": [
        {"objectType": "contextAgent", "agent": _hidden()}]})}),
    "instructor": ("1.0.3", {"object": ACTIVITY, "context": {"instructor": _hidden()}}),
    "instructor group member": ("1.0.3", {"object": ACTIVITY,
                                          "context": {"instructor": _group(_hidden())}}),
    "team member": ("1.0.3", {"object": ACTIVITY, "context": {"team": _group(_hidden())}}),
    "identified team": ("1.0.3", {"object": ACTIVITY, "context": {"team": {
        "objectType": "Group", "mbox": f"mailto:{HIDDEN}", "name": HIDDEN_NAME}}}),
    "contextAgents": ("2.0.0", {"object": ACTIVITY, "context": {"contextAgents": [
        {"objectType": "contextAgent", "agent": _hidden()}]}}),
    "contextGroups member": ("2.0.0", {"object": ACTIVITY, "context": {"contextGroups": [
        {"objectType": "contextGroup", "group": _group(_hidden())}]}}),
    "anonymous group actor member": ("1.0.3", {"actor": {"objectType": "Group", "member": [
        {"mbox": "mailto:ada@example.org"}, _hidden()]}, "object": ACTIVITY}),
    "identified group actor member": ("1.0.3", {"actor": {
        "objectType": "Group", "mbox": "mailto:ada@example.org", "member": [_hidden()]},
        "object": ACTIVITY}),
}


@pytest.mark.parametrize("place", sorted(HIDING_PLACES))
def test_an_agent_forgotten_anywhere_in_another_learners_statement_is_left_nowhere(
        xapi: Any, settings: Settings, place: str) -> None:
    """lone_actor decides on the model whether a statement is sealed whole under its actor's
    key: a wrong "lone" would keep the other agent inside the actor's seal after a forget."""
    from tests.integration.test_erasure import files_holding, rows_holding
    version, extra = HIDING_PLACES[place]
    client = xapi.speaking(version)
    doc = {"id": str(uuid.uuid4()), "actor": {"mbox": ADA, "name": "Ada"}, "verb": VERB,
           "timestamp": "2026-11-03T10:00:00Z", **extra}
    assert client.post(doc).status_code == 200
    assert client.request("POST", "/admin/forget", json={"learner": HIDDEN}).status_code == 200
    for answer in [client.get(statementId=doc["id"], format=f) for f in ("exact", "canonical")] + [
            client.get(agent=f'{{"mbox":"{ADA}"}}', related_agents="true")]:
        assert answer.status_code == 200 and doc["id"] in answer.text, answer.text
        assert HIDDEN not in answer.text and HIDDEN_NAME not in answer.text, answer.text
    assert files_holding(settings.data_dir, [HIDDEN, HIDDEN_NAME]) == {}
    if settings.event_store:
        assert rows_holding(settings.event_store, [HIDDEN, HIDDEN_NAME]) == {}


def _deflated(plain: bytes) -> bytes:
    import zlib

    import lrs.sealing as sealing
    packer = zlib.compressobj(1, zdict=sealing._DICTIONARY_V1)
    return b"\x01" + packer.compress(plain) + packer.flush()


@pytest.mark.parametrize("packing", ["deflate", "none"])
def test_statements_packed_before_zstd_open_beside_new_ones_and_forget_their_agents(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, packing: str) -> None:
    import lrs.sealing as sealing
    from lrs.erasure import learner_of
    instructor = {"instructor": {"mbox": BOB, "name": "Bob"}}
    team = {"team": {"objectType": "Group", "member": [{"mbox": ADA}, {"mbox": BOB}]}}
    old = [said(ADA, "alone"), said(ADA, "taught", context=instructor),
           said(ADA, "team", context=team)]
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        with monkeypatch.context() as m:
            m.setattr(sealing, "_pack", _deflated if packing == "deflate" else bytes)
            append(store, store.work_ahead(prepare_statements(old[:2], WRITER, "1.0.3", 10)))
            append(store, prepare_statements(old[2], WRITER, "1.0.3", 10))  # the writer seals
        new = said(ADA, "zstd", context=instructor)
        append(store, store.work_ahead(prepare_statements(new, WRITER, "1.0.3", 10)))
        for doc in [*old, new]:
            assert store.statement(doc["id"])[0]["result"] == doc["result"]
        assert store.statement(old[1]["id"])[0]["context"]["instructor"]["mbox"] == BOB
        store.erase_learner(learner_of(BOB.removeprefix("mailto:")), by="admin")
        for doc in [*old, new]:
            assert "bob@" not in str(store.statement(doc["id"])[0])
    finally:
        store.close()


FULL_REFERENCE_INDEXES = [  # what stores made before 9bc392a have
    "DROP INDEX xapi_statement_object_ref_set", "DROP INDEX xapi_statement_voids_set",
    "CREATE INDEX xapi_statement_object_ref ON xapi_statement (object_ref)",
    "CREATE INDEX xapi_statement_voids ON xapi_statement (voids)"]


def _references(settings: Settings, made_before: bool) -> dict[str, Any]:
    """Targets, StatementRef chains and voiding (one voiding before its target) written across
    a reopening of the store, then read back by id and through the filters."""
    import json

    from fastapi.testclient import TestClient

    from lrs.api.main import create_app
    from tests.conftest import XAPIClient
    voided = {"id": "http://adlnet.gov/expapi/verbs/voided"}
    x_id = "https://example.org/act/x"
    t, r1, r2, f, v0, v2, r3 = (str(uuid.UUID(int=i)) for i in range(1, 8))

    def st(sid: str, who: str, obj: dict[str, Any], verb: dict[str, Any] = VERB) -> dict[str, Any]:
        return {"id": sid, "actor": {"mbox": f"mailto:{who}@example.org"}, "verb": verb,
                "object": obj}

    def ref(sid: str) -> dict[str, Any]:
        return {"objectType": "StatementRef", "id": sid}

    def ids(answer: Any) -> list[str]:
        assert answer.status_code == 200, answer.text
        return sorted(s["id"] for s in answer.json()["statements"])

    with TestClient(create_app(settings)) as client:
        if made_before:
            store = client.app.state.services.store  # type: ignore[attr-defined]
            with store.recorder.datastore.transaction(commit=True) as c:
                for statement in FULL_REFERENCE_INDEXES:
                    c.execute(statement)
        assert XAPIClient(client).post([st(t, "a", {"id": x_id}), st(r1, "c", ref(t)),
                                        st(v0, "a", ref(f), voided)]).status_code == 200
    with TestClient(create_app(settings)) as client:  # opened again: the indexes are changed
        xapi = XAPIClient(client)
        assert xapi.post([st(r2, "d", ref(r1))]).status_code == 200
        assert xapi.post([st(f, "a", {"id": x_id})]).status_code == 200
        assert xapi.post([st(v2, "a", ref(t), voided), st(r3, "e", ref(r2))]).status_code == 200
        ada = json.dumps({"mbox": "mailto:a@example.org"})
        return {"by id": [xapi.get(statementId=s).status_code for s in (t, f)],
                "voided by id": [xapi.get(voidedStatementId=s).status_code for s in (t, f)],
                "activity": ids(xapi.get(activity=x_id, limit=20)),
                "agent": ids(xapi.get(agent=ada, limit=20)),
                "related": ids(xapi.get(agent=ada, related_agents="true", limit=20)),
                "verb": ids(xapi.get(verb=voided["id"], limit=20))}


def test_a_store_made_with_full_reference_indexes_answers_as_a_new_one_once_reopened(
        settings: Settings, tmp_path: Any) -> None:
    migrated = _references(settings, made_before=True)
    if settings.event_store:
        from tests.conftest import _empty_postgres
        _empty_postgres(settings.event_store)
        fresh = settings
    else:
        fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh"})
    assert migrated == _references(fresh, made_before=False)
    assert migrated["by id"] == [404, 404] and migrated["voided by id"] == [200, 200]
