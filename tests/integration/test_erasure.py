"""Forgetting a learner (issue 14): nothing of them can be read back, from any copy, on both
stores, while everything of everybody else stays as it was."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from lrs.application import LearningRecordStore
from lrs.cli.main import main
from lrs.config import Settings
from lrs.sealing import ERASED_HOME_PAGE
from lrs.store import postgres_scrub
from projections.runner import ProjectionRunner
from projections.schema import DERIVED
from tests.attachments import declared, multipart, sha256
from tests.conftest import XAPIClient
from tests.integration.test_serve_workers import event_store  # noqa: F401 - a fixture
from tests.waiting import wait_until

ADA = "ada.lovelace@example.org"
ADA_NAME = "Ada Lovelace"
ADA_SECRET = "my secret diary about fractions"
ADA_STATE = "ada state note remember the blue notebook"
ADA_PROFILE = "ada profile prefers the analytical engine"
ADA_ATTACHMENT = b"ada's essay only she sent, about engines"
SHARED_ATTACHMENT = b"a worksheet both ada and bob sent"
BOB = "bob.babbage@example.org"
BOB_NAME = "Bob Babbage"
CY = "cy.hopper@example.org"
CY_NAME = "Cy Hopper"
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
MENTORED = "http://id.tincanapi.com/verb/mentored"
# How the learner could be found on disk or in a table: none may remain after forgetting.
TRACES = [ADA, ADA_NAME, ADA_SECRET, ADA_STATE, ADA_PROFILE, ADA_ATTACHMENT.decode()]


def person(email: str, name: str) -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{email}", "name": name}


PROFILE = {"agent": json.dumps(person(ADA, ADA_NAME)), "profileId": "bio"}


def said(email: str, name: str, text: str, day: int = 3, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": person(email, name), "verb": {"id": ANSWERED},
            "object": {"id": "https://example.org/q/1"}, "result": {"response": text},
            "timestamp": f"2026-11-{day:02d}T10:00:00Z", **extra}


def school(xapi: XAPIClient) -> dict[str, str]:
    """Ada's and Bob's statements, Bob's naming Ada, Ada's state, and attachments."""
    ada = said(ADA, ADA_NAME, ADA_SECRET)
    ada_team = said(ADA, ADA_NAME, "team work", context={"instructor": person(BOB, BOB_NAME)})
    bob = said(BOB, BOB_NAME, "bob answers")
    bob_names_ada = {"id": str(uuid.uuid4()), "actor": person(BOB, BOB_NAME), "verb": {"id": MENTORED},
                     "object": person(ADA, ADA_NAME), "timestamp": "2026-11-03T11:00:00Z"}
    assert xapi.post([ada, ada_team, bob, bob_names_ada]).status_code == 200
    essay = said(ADA, ADA_NAME, "essay", attachments=[declared(ADA_ATTACHMENT),
                                                      declared(SHARED_ATTACHMENT)])
    body, content_type = multipart(essay, (ADA_ATTACHMENT, "text/plain"),
                                   (SHARED_ATTACHMENT, "text/plain"))
    assert xapi.request("POST", "/xAPI/statements", content=body,
                        headers={"Content-Type": content_type}).status_code == 200
    worksheet = said(BOB, BOB_NAME, "worksheet", attachments=[declared(SHARED_ATTACHMENT)])
    body, content_type = multipart(worksheet, (SHARED_ATTACHMENT, "text/plain"))
    assert xapi.request("POST", "/xAPI/statements", content=body,
                        headers={"Content-Type": content_type}).status_code == 200
    state = {"activityId": "https://example.org/q/1", "agent": json.dumps(person(ADA, ADA_NAME)),
             "stateId": "notes"}
    assert xapi.request("PUT", "/xAPI/activities/state", params=state, content=ADA_STATE.encode(),
                        headers={"Content-Type": "text/plain"}).status_code == 204
    assert xapi.request("PUT", "/xAPI/agents/profile", params=PROFILE, content=ADA_PROFILE.encode(),
                        headers={"Content-Type": "text/plain", "If-None-Match": "*"}
                        ).status_code == 204
    return {"ada": ada["id"], "bob": bob["id"], "bob_names_ada": bob_names_ada["id"],
            "essay": essay["id"], "worksheet": worksheet["id"]}


def forget(xapi: XAPIClient, learner: str = ADA) -> dict[str, Any]:
    answer = xapi.request("POST", "/admin/forget", json={"learner": learner})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def files_holding(folder: Path, traces: list[str]) -> dict[str, list[str]]:
    """Which files under a folder hold which of the traces, byte for byte."""
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [t for t in traces if t.encode() in data]
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def rows_holding(url: str, traces: list[str]) -> dict[str, list[str]]:
    """Which tables of a PostgreSQL database hold a row with one of the traces in any column
    (bytea columns, such as the events' state, searched as bytes)."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY table_name, column_name").fetchall()
        for table, column, kind in columns:
            for trace in traces:
                if kind == "bytea":
                    where, value = f'position(%s IN "{column}")', trace.encode()
                else:
                    where, value = f'position(%s IN "{column}"::text)', trace
                if conn.execute(f'SELECT 1 FROM "{table}" WHERE {where} > 0 LIMIT 1',
                                [value]).fetchone():
                    found.setdefault(table, []).append(trace)
    return found


def relation_files_holding(url: str, traces: list[str]) -> dict[str, list[str]]:
    """Which of the database's relation files (tables, indexes, TOAST; every segment and fork)
    hold one of the traces, after a checkpoint has written every page out."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        home = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        paths = [str(r[0]) for r in conn.execute(
            "SELECT pg_relation_filepath(oid) FROM pg_class WHERE pg_relation_filepath(oid)"
            " IS NOT NULL").fetchall()]
    if not os.access(home, os.R_OK):
        pytest.skip(f"the PostgreSQL data directory {home} is not readable here")
    found: dict[str, list[str]] = {}
    for base in paths:
        for path in (home / base).parent.glob(Path(base).name + "*"):
            data = path.read_bytes()
            hits = [t for t in traces if t.encode() in data]
            if hits:
                found[str(path)] = hits
    return found


def test_a_forgotten_learner_is_in_no_relation_file_of_the_postgresql_database(
        xapi: XAPIClient, settings: Settings) -> None:
    if not settings.event_store:
        pytest.skip("PostgreSQL's own files; the SQLite folder is scanned above")
    school(xapi)
    assert relation_files_holding(settings.event_store, [ADA])  # the scan sees her before
    forget(xapi)
    assert relation_files_holding(settings.event_store, TRACES) == {}


def test_the_rest_of_the_log_still_holds_the_other_learners(
        xapi: XAPIClient, settings: Settings, server: TestClient) -> None:
    """The scans above are not blind: the same scans find Bob."""
    school(xapi)
    forget(xapi)
    assert xapi.get(agent=json.dumps(person(BOB, BOB_NAME))).json()["statements"]
    if settings.event_store:
        assert rows_holding(settings.event_store, [BOB_NAME])
        assert "lrs_events" in rows_holding(settings.event_store, ["LearnerErased"])  # bytea too
    else:  # Bob's name is sealed in the log; the index names him
        assert files_holding(settings.data_dir, [BOB])


def test_a_forgotten_learner_statements_are_found_neither_by_id_nor_by_filter(
        xapi: XAPIClient) -> None:
    ids = school(xapi)
    forget(xapi)
    assert xapi.get(statementId=ids["ada"]).status_code == 404
    assert xapi.get(statementId=ids["essay"]).status_code == 404
    assert xapi.get(agent=json.dumps(person(ADA, ADA_NAME))).json()["statements"] == []
    assert xapi.get(agent=json.dumps(person(ADA, ADA_NAME)), related_agents="true"
                    ).json()["statements"] == []
    every = xapi.get(limit=100).json()["statements"]
    assert ADA not in json.dumps(every) and ADA_NAME not in json.dumps(every)
    assert {s["id"] for s in every} >= {ids["bob"], ids["bob_names_ada"], ids["worksheet"]}


def test_a_forgotten_learner_reads_as_a_placeholder_in_other_learners_statements(
        xapi: XAPIClient) -> None:
    ids = school(xapi)
    pseudonym = forget(xapi)["learner"]
    mentoring = xapi.get(statementId=ids["bob_names_ada"]).json()
    assert mentoring["actor"]["mbox"] == f"mailto:{BOB}"
    assert mentoring["object"] == {"objectType": "Agent", "name": pseudonym,
                                   "account": {"homePage": ERASED_HOME_PAGE, "name": pseudonym}}


def test_a_forgotten_learner_has_no_person_no_documents_and_no_attachment_of_their_own(
        xapi: XAPIClient) -> None:
    ids = school(xapi)
    forget(xapi)
    persons = xapi.request("GET", "/xAPI/agents", params={"agent": json.dumps(person(ADA, ""))})
    assert "name" not in persons.json()
    state = {"activityId": "https://example.org/q/1", "agent": json.dumps(person(ADA, ADA_NAME)),
             "stateId": "notes"}
    assert xapi.request("GET", "/xAPI/activities/state", params=state).status_code == 404
    assert xapi.request("GET", "/xAPI/agents/profile", params=PROFILE).status_code == 404
    worksheet = xapi.get(statementId=ids["worksheet"], attachments="true")
    assert SHARED_ATTACHMENT in worksheet.content  # shared with Bob: kept


def test_an_attachment_only_the_learner_sent_leaves_the_attachment_store(
        xapi: XAPIClient, settings: Settings, server: TestClient) -> None:
    school(xapi)
    store = server.app.state.services.attachments  # type: ignore[attr-defined]
    assert store.has(sha256(ADA_ATTACHMENT))
    assert forget(xapi)["attachments"] == 1
    assert not store.has(sha256(ADA_ATTACHMENT)) and store.has(sha256(SHARED_ATTACHMENT))


def test_forgetting_needs_the_admin_scope(xapi: XAPIClient) -> None:
    school(xapi)
    key = xapi.request("GET", "/xAPI/about")  # the server is up
    assert key.status_code == 200
    store: LearningRecordStore = xapi.http.app.state.services.store  # type: ignore[attr-defined]
    k, secret = store.issue_credential("tool", ["all"])
    answer = xapi.as_credential(k, secret).request("POST", "/admin/forget", json={"learner": ADA})
    assert answer.status_code == 403 and "admin" in answer.json()["error"]["message"]
    assert xapi.get(agent=json.dumps(person(ADA, ADA_NAME))).json()["statements"]


@pytest.mark.parametrize("body", [{"learner": "nobody"}, {"learner": ""}, {"who": ADA}, [ADA]])
def test_a_learner_that_is_not_an_email_or_ifi_key_is_400(xapi: XAPIClient, body: Any) -> None:
    answer = xapi.request("POST", "/admin/forget", json=body)
    assert answer.status_code == 400 and "learner" in answer.json()["error"]["message"]


def test_forgetting_records_an_event_naming_only_the_pseudonym(
        xapi: XAPIClient, store_of: LearningRecordStore) -> None:
    school(xapi)
    pseudonym = forget(xapi)["learner"]
    last = store_of.recorder.select_notifications(1, 1000)[-1]
    event: Any = store_of.mapper.to_domain_event(last)
    assert type(event).__name__ == "LearnerErased"
    assert (event.pseudonym, event.by) == (pseudonym, "admin")
    assert ADA not in last.state.decode(errors="replace")


def test_a_learner_sends_again_after_being_forgotten_and_is_read(xapi: XAPIClient) -> None:
    school(xapi)
    forget(xapi)
    again = said(ADA, ADA_NAME, "back again")
    assert xapi.post(again).status_code == 200
    found = xapi.get(agent=json.dumps(person(ADA, ADA_NAME))).json()["statements"]
    assert [s["id"] for s in found] == [again["id"]]


def test_a_statement_id_of_a_forgotten_learner_is_not_used_again_409(xapi: XAPIClient) -> None:
    """A forgotten learner's events stay in the log, sealed under keys that are gone; their ids
    still name those statements. Sent again, the id was refused as the store failing (500, and
    a client retried it for ever); it is a statement id already used (Communication 2.1.2)."""
    first = said(ADA, ADA_NAME, "once")
    assert xapi.post(first).status_code == 200
    forget(xapi)
    again = xapi.post(first)
    assert again.status_code == 409, again.text
    message = again.json()["error"]["message"]
    assert first["id"] in message and "erased" in message
    bob = said(BOB, BOB_NAME, "still writes")
    assert xapi.post(bob).status_code == 200
    both = xapi.post([said(BOB, BOB_NAME, "in a batch"), first])
    assert both.status_code == 409, both.text


def test_the_cli_forgets_a_learner_given_as_an_ifi_key(
        xapi: XAPIClient, settings: Settings, server: TestClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    school(xapi)
    argv = ["forget", f"mbox:mailto:{ADA}", "--yes", "--data-dir", str(settings.data_dir)]
    if settings.event_store:
        argv += ["--event-store", settings.event_store]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "statements: 3" in out and ADA not in out
    assert xapi.get(agent=json.dumps(person(ADA, ADA_NAME))).json()["statements"] == []


def test_the_cli_refuses_a_bad_learner_in_one_line_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forget", "nobody", "--yes", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "learner" in err


# --- views -------------------------------------------------------------------------------------


def view_tables(runner: ProjectionRunner) -> dict[str, list[Any]]:
    return {t: runner.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("statement_facts", "roster", *DERIVED)}


def others(tables: dict[str, list[Any]], learner: str) -> dict[str, list[Any]]:
    """Every row of every table but the learner's, and Bob's row naming Ada as peer."""
    return {t: [r for r in rows if f"mbox:mailto:{learner}" not in map(str, r)]
            for t, rows in tables.items()}


def test_views_caught_up_across_the_forget_equal_a_rebuild_and_keep_others_rows(
        xapi: XAPIClient, store_of: LearningRecordStore, tmp_path: Path) -> None:
    school(xapi)
    runner = ProjectionRunner(store_of, tmp_path / "incremental.duckdb", page_size=3)
    runner.catch_up()
    before = view_tables(runner)
    assert any(f"mbox:mailto:{ADA}" in map(str, r) for r in before["statement_facts"])
    forget(xapi)
    runner.catch_up()
    after = view_tables(runner)
    rebuilt = ProjectionRunner(store_of, tmp_path / "rebuilt.duckdb", page_size=1000)
    rebuilt.rebuild()
    assert after == view_tables(rebuilt)
    assert all(f"mbox:mailto:{ADA}" not in map(str, r) for rows in after.values() for r in rows)
    # Bob's rows are Bob's: only the peer he mentored turned into a placeholder.
    bob_before = [r for r in before["learner_profile"] if r[0] == f"mbox:mailto:{BOB}"]
    bob_after = [r for r in after["learner_profile"] if r[0] == f"mbox:mailto:{BOB}"]
    assert len(bob_before) == len(bob_after) == 1
    assert [r for r in after["statement_facts"] if r[2] == f"mbox:mailto:{BOB}"].__len__() == 3
    runner.close()
    rebuilt.close()


def test_the_views_file_holds_no_byte_of_a_forgotten_learner(
        xapi: XAPIClient, store_of: LearningRecordStore, tmp_path: Path) -> None:
    school(xapi)
    (tmp_path / "views").mkdir()
    runner = ProjectionRunner(store_of, tmp_path / "views" / "views.duckdb", page_size=3)
    runner.catch_up()
    runner.con.execute("CHECKPOINT")
    assert files_holding(tmp_path / "views", [ADA, ADA_NAME])  # the scan sees her before
    forget(xapi)
    runner.catch_up()
    runner.con.execute("CHECKPOINT")
    assert files_holding(tmp_path / "views", TRACES) == {}
    assert runner.con.execute("SELECT count(*) FROM learner_profile").fetchone() == (1,)  # Bob
    runner.close()


def test_a_forget_through_serve_with_two_workers_reaches_the_log_and_the_embedded_views(
        tmp_path: Path, event_store: str | None) -> None:  # noqa: F811
    import httpx

    from tests.integration.test_serve_workers import AUTH, serving

    data = tmp_path / "data"
    with serving(data, event_store, workers=2) as (_, url):
        ada, bob = said(ADA, ADA_NAME, ADA_SECRET), said(BOB, BOB_NAME, "bob answers")
        assert httpx.post(f"{url}/xAPI/statements", json=[ada, bob], headers=AUTH).status_code == 200
        profile = f"{url}/api/learners/mbox:mailto:{ADA}/profile"
        wait_until(lambda: httpx.get(profile, headers=AUTH).status_code == 200, interval=0.2)
        answer = httpx.post(f"{url}/admin/forget", json={"learner": ADA}, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["statements"] == 1
        wait_until(lambda: httpx.get(profile, headers=AUTH).status_code == 404, interval=0.2)
        wait_until(lambda: files_holding(data, TRACES) == {}, interval=0.2)  # reads every file
        assert httpx.get(f"{url}/xAPI/statements", params={"statementId": ada["id"]},
                         headers=AUTH).status_code == 404
        bob_profile = f"{url}/api/learners/mbox:mailto:{BOB}/profile"
        assert httpx.get(bob_profile, headers=AUTH).status_code == 200
        again = said(ADA, ADA_NAME, "back again")  # the writer's keys were renewed, not reused
        assert httpx.post(f"{url}/xAPI/statements", json=again, headers=AUTH).status_code == 200
        assert httpx.get(f"{url}/xAPI/statements", params={"statementId": again["id"]},
                         headers=AUTH).status_code == 200
        # Her documents too, on fresh connections (either worker, whichever key ring it
        # holds): the parent's writer refuses keys of the erased generation, the worker seals
        # again, and each write is stored once.
        state = {"activityId": "http://example.org/activity/1", "stateId": "bookmark",
                 "agent": json.dumps({"mbox": f"mailto:{ADA}"})}
        for n in range(8):
            put = httpx.put(f"{url}/xAPI/activities/state", params=state, headers=AUTH,
                            json={"page": n})
            assert put.status_code == 204, put.text
            got = httpx.get(f"{url}/xAPI/activities/state", params=state, headers=AUTH)
            assert got.json() == {"page": n}


# --- exports -----------------------------------------------------------------------------------

DISTRICT_SECRET = b"district-secret-0123456789"


def test_an_export_after_forgetting_lacks_the_learner_and_an_incremental_one_lists_them_removed(
        xapi: XAPIClient, store_of: LearningRecordStore, tmp_path: Path) -> None:
    from lrs.export.bundle import DistrictExporter, ExportRequest
    from lrs.export.pseudonyms import Pseudonymiser

    school(xapi)
    exporter = DistrictExporter(store_of, tmp_path / "export-views.duckdb", DISTRICT_SECRET,
                                progress=False)
    exporter.export(ExportRequest(out=tmp_path / "full"))
    ada = Pseudonymiser(DISTRICT_SECRET).learner(f"mbox:mailto:{ADA}")
    bob = Pseudonymiser(DISTRICT_SECRET).learner(f"mbox:mailto:{BOB}")
    assert files_holding(tmp_path / "full", [ada])  # she was in the first bundle
    forget(xapi)
    exporter.export(ExportRequest(out=tmp_path / "after", since_export=tmp_path / "full"))
    removed = (tmp_path / "after/removed_learners.csv").read_text().split()
    assert removed == ["learner", ada]
    assert ada in (tmp_path / "after/changed_learners.csv").read_text()
    bundle_files = {p.name for p in (tmp_path / "after").rglob("*") if p.is_file()}
    holding_ada = {Path(f).name for f in files_holding(tmp_path / "after", [ada])}
    assert holding_ada == {"removed_learners.csv", "changed_learners.csv"} < bundle_files
    exporter.export(ExportRequest(out=tmp_path / "full-after"))
    assert files_holding(tmp_path / "full-after", [ada, *TRACES]) == {}
    assert files_holding(tmp_path / "full-after", [bob])
    # The export's own views file caught up with the erasure and was compacted.
    assert not [p for p in files_holding(tmp_path, TRACES) if p.startswith("export-views")]


# --- what a process remembers ----------------------------------------------------------------


def stored_ahead(store: LearningRecordStore, docs: list[dict[str, Any]]) -> None:
    """Prepared, hashed and sealed ahead as a worker does, then written."""
    from ingest.pipeline import prepare_statements
    from lrs.auth import Principal

    writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
    prepared = store.work_ahead(prepare_statements(docs, writer, "1.0.3", 1000))
    assert not isinstance(store.store_batches([prepared])[0], Exception)


def remembered(store: LearningRecordStore) -> tuple[int, bool]:
    """The key hashes the process keeps (each made of an IFI or IRI), and whether anything its
    key ring holds (keys by learner, pseudonyms) names Ada."""
    key_hash = store.index.index._key_hash
    assert key_hash is not None
    return key_hash.cache_info().currsize, ADA in repr(vars(store.key_ring))


def test_the_process_that_forgets_a_learner_keeps_no_key_hash_or_pseudonym_made_of_an_ifi(
        store: LearningRecordStore) -> None:
    stored_ahead(store, [said(ADA, ADA_NAME, ADA_SECRET), said(BOB, BOB_NAME, "hello")])
    assert all(remembered(store))
    store.erase_learner(f"mbox:mailto:{ADA}", by="test")
    assert remembered(store) == (0, False)


def test_another_process_of_the_store_forgets_them_at_its_next_look_at_the_keys(
        store: LearningRecordStore, settings: Settings) -> None:
    worker = LearningRecordStore(env=settings.event_store_env())  # as a worker of `lrs serve`
    try:
        stored_ahead(worker, [said(ADA, ADA_NAME, ADA_SECRET)])
        assert all(remembered(worker))
        store.erase_learner(f"mbox:mailto:{ADA}", by="test")
        worker.key_ring.refresh(0)  # a worker's request in a thread, once its check is due
        assert remembered(worker) == (0, False)
    finally:
        worker.close()


def test_the_views_process_applying_a_forget_keeps_no_pseudonym_made_of_an_ifi(
        xapi: XAPIClient, settings: Settings, tmp_path: Path) -> None:
    school(xapi)
    views_store = LearningRecordStore(env=settings.event_store_env())  # as lrs/views_child.py
    runner = ProjectionRunner(views_store, tmp_path / "views.duckdb")
    try:
        runner.catch_up()
        forget(xapi)
        runner.catch_up()  # finds the learner by pseudonym among every learner of the views
        assert ADA not in repr(vars(views_store.key_ring))
    finally:
        runner.close()
        views_store.close()


# --- retention ---------------------------------------------------------------------------------


def stored_on(store: LearningRecordStore, day: str, docs: list[dict[str, Any]]) -> None:
    """Append as the LRS would have on that day (stored is the writer's to set)."""
    from datetime import datetime

    from ingest.pipeline import prepare_statements
    from lrs.auth import Principal

    writer = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
    outcome = store.store_batches([prepare_statements(docs, writer, "1.0.3", 1000)],
                                  now=datetime.fromisoformat(f"{day}T12:00:00+00:00"))[0]
    assert not isinstance(outcome, Exception)


def retention_cli(settings: Settings, *flags: str) -> int:
    argv = ["retention", *flags, "--data-dir", str(settings.data_dir)]
    if settings.event_store:
        argv += ["--event-store", settings.event_store]
    return main(argv)


def term(store: LearningRecordStore) -> dict[str, list[str]]:
    """Ada and Bob on three days; returns the statement ids by stored day."""
    days: dict[str, list[str]] = {}
    for n, day in enumerate(("2026-09-01", "2026-10-01", "2026-11-01")):
        docs = [said(ADA, ADA_NAME, f"ada on {day}", day=n + 1),
                said(BOB, BOB_NAME, f"bob on {day}", day=n + 1),
                {"id": str(uuid.uuid4()), "actor": person(BOB, BOB_NAME), "verb": {"id": MENTORED},
                 "object": person(ADA, ADA_NAME), "timestamp": f"2026-11-{n + 1:02d}T11:00:00Z"}]
        stored_on(store, day, docs)
        days[day] = [d["id"] for d in docs]
    return days


def test_a_retention_dry_run_reports_what_would_go_and_changes_nothing(
        xapi: XAPIClient, store_of: LearningRecordStore, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    days = term(store_of)
    head = store_of.recorder.max_notification_id()
    assert retention_cli(settings, "--before", "2026-10-15", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would forget: 6 statements stored before 2026-10-15, of 2 learners" in out
    assert store_of.recorder.max_notification_id() == head
    assert all(xapi.get(statementId=i).status_code == 200 for ids in days.values() for i in ids)


def test_retention_forgets_exactly_the_statements_stored_before_the_day(
        xapi: XAPIClient, store_of: LearningRecordStore, settings: Settings,
        tmp_path: Path) -> None:
    days = term(store_of)
    runner = ProjectionRunner(store_of, tmp_path / "views.duckdb", page_size=2)
    runner.catch_up()
    assert retention_cli(settings, "--before", "2026-10-15") == 0
    gone = days["2026-09-01"] + days["2026-10-01"]
    assert all(xapi.get(statementId=i).status_code == 404 for i in gone)
    assert all(xapi.get(statementId=i).status_code == 200 for i in days["2026-11-01"])
    listed = {s["id"] for s in xapi.get(limit=100).json()["statements"]}
    assert listed == set(days["2026-11-01"])
    runner.catch_up()
    rebuilt = ProjectionRunner(store_of, tmp_path / "rebuilt.duckdb", page_size=1000)
    rebuilt.rebuild()
    assert view_tables(runner) == view_tables(rebuilt)
    kept = {r[1] for r in view_tables(runner)["statement_facts"]}
    assert kept == set(days["2026-11-01"])
    event: Any = store_of.mapper.to_domain_event(store_of.recorder.select_notifications(1, 100)[-1])
    assert (type(event).__name__, event.before) == ("RetentionApplied", "2026-10-15")
    runner.close()
    rebuilt.close()


def test_retention_keeps_the_name_of_an_agent_a_kept_statement_names_and_drops_the_rest(
        xapi: XAPIClient, store_of: LearningRecordStore, settings: Settings) -> None:
    """A Person's name (Communication 2.4) lives as long as a statement naming the agent: Ada
    and Bob are the actor and object of kept statements (stored under the agent key alone);
    Cy was named only as an instructor, in a statement that went."""
    term(store_of)
    cy = said(ADA, ADA_NAME, "ada with cy", day=1)
    cy["context"] = {"instructor": person(CY, CY_NAME)}
    stored_on(store_of, "2026-09-01", [cy])

    def names(mbox: str) -> list[str]:
        found = xapi.request("GET", "/xAPI/agents", params={"agent": json.dumps(person(mbox, ""))})
        return list(found.json().get("name", []))

    assert names(CY) == [CY_NAME]
    assert retention_cli(settings, "--before", "2026-10-15") == 0
    assert (names(ADA), names(BOB), names(CY)) == ([ADA_NAME], [BOB_NAME], [])


def test_retention_refuses_a_date_that_is_not_one_in_one_line_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retention", "--before", "last year", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--before" in err


def test_a_learner_who_never_named_the_forgotten_one_keeps_identical_views(
        xapi: XAPIClient, store_of: LearningRecordStore, tmp_path: Path) -> None:
    school(xapi)
    cy = "cy.clark@example.org"
    assert xapi.post([said(cy, "Cy Clark", f"cy {n}", day=n + 1) for n in range(5)]).status_code == 200
    runner = ProjectionRunner(store_of, tmp_path / "views.duckdb", page_size=4)
    runner.catch_up()

    def cys_rows() -> dict[str, list[Any]]:
        return {t: [r for r in rows if f"mbox:mailto:{cy}" in map(str, r)]
                for t, rows in view_tables(runner).items()}

    before = cys_rows()
    assert before["learner_profile"] and before["statement_facts"]
    forget(xapi)
    runner.catch_up()
    assert cys_rows() == before
    runner.close()


def test_forgetting_reports_the_plaintext_statements_from_before_sealing_and_hides_them(
        xapi: XAPIClient, settings: Settings, store_of: LearningRecordStore,
        tmp_path: Path) -> None:
    old = LearningRecordStore(env=settings.event_store_env() | {"LRS_SEAL_STATEMENTS": "false"})
    before_sealing = said(ADA, ADA_NAME, "written before sealing")
    stored_on(old, "2026-08-01", [before_sealing])
    old.close()
    school(xapi)
    report = forget(xapi)
    assert (report["statements"], report["plaintext_statements"]) == (4, 1)
    assert xapi.get(statementId=before_sealing["id"]).status_code == 404
    runner = ProjectionRunner(store_of, tmp_path / "views.duckdb")
    runner.catch_up()
    assert all(f"mbox:mailto:{ADA}" not in map(str, r)
               for rows in view_tables(runner).values() for r in rows)
    runner.close()
    from lrs.export.bundle import DistrictExporter, ExportRequest

    DistrictExporter(store_of, tmp_path / "export-views.duckdb", DISTRICT_SECRET,
                     progress=False).export(ExportRequest(out=tmp_path / "bundle"))
    exported = (tmp_path / "bundle/statements.jsonl").read_text()
    assert before_sealing["id"] not in exported and exported.count("\n") == 3  # Bob's


# --- stores ------------------------------------------------------------------------------------


def test_forgetting_in_one_store_leaves_the_same_learner_in_another(xapi: XAPIClient) -> None:
    assert xapi.request("POST", "/admin/stores", json={"name": "north"}).status_code == 201
    answer = xapi.request("POST", "/admin/stores/north/credentials",
                          json={"name": "north-tool", "scopes": ["all"]})
    assert answer.status_code == 201, answer.text
    north = xapi.as_credential(answer.json()["key"], answer.json()["secret"])
    at_north, at_default = said(ADA, ADA_NAME, "north"), said(ADA, ADA_NAME, "default")
    assert north.post(at_north).status_code == 200 and xapi.post(at_default).status_code == 200
    report = xapi.request("POST", "/admin/forget", json={"learner": ADA, "store": "north"})
    assert report.status_code == 200 and report.json()["statements"] == 1
    assert north.get(statementId=at_north["id"]).status_code == 404
    assert xapi.get(statementId=at_default["id"]).status_code == 200
    unknown = xapi.request("POST", "/admin/forget", json={"learner": ADA, "store": "nowhere"})
    assert unknown.status_code == 404
    refused = north.request("POST", "/admin/forget", json={"learner": ADA})
    assert refused.status_code == 403


@pytest.fixture(params=["a write in another database", "a snapshot read in this database"])
def open_elsewhere(request: pytest.FixtureRequest, postgres_server: str,
                   settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A transaction that may still see the learner's rows while they are forgotten here: a
    write open in another database of the same server (another store's writer), or a read of
    this database holding its snapshot (a long export, pg_dump)."""
    if not settings.event_store:
        pytest.skip("PostgreSQL's own files")
    if request.param == "a write in another database":
        with psycopg.connect(postgres_server) as conn:
            conn.execute("SELECT pg_current_xact_id()")  # a transaction id, as a write has
            yield conn
    else:
        with psycopg.connect(settings.event_store) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute("SELECT count(*) FROM xapi_statement")  # its snapshot, and no id
            yield conn


def test_a_transaction_open_elsewhere_on_the_server_is_waited_for_before_the_rewrite(
        xapi: XAPIClient, settings: Settings, open_elsewhere: psycopg.Connection[Any]) -> None:
    school(xapi)  # on PostgreSQL only: open_elsewhere skips SQLite
    threading.Timer(1.0, open_elsewhere.commit).start()
    report = forget(xapi)
    assert report["scrub"] == "tables rewritten (VACUUM FULL)"
    assert relation_files_holding(settings.event_store, TRACES) == {}


def test_a_rewrite_held_back_past_its_wait_says_which_transaction_holds_the_learner(
        xapi: XAPIClient, settings: Settings, open_elsewhere: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_scrub, "SCRUB_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(postgres_scrub, "LOCK_WAIT_SECONDS", 0.3)
    school(xapi)
    holder = open_elsewhere.info.backend_pid
    report = forget(xapi)  # returns: a reader's lock would otherwise hold the rewrite forever
    assert "the deleted rows stay in their files" in report["scrub"], report
    assert f"pid {holder} " in report["scrub"], report
    if open_elsewhere.info.dbname == settings.event_store.rsplit("/", 1)[1]:
        assert "xapi_statement in use past 0.3 s, not rewritten" in report["scrub"], report
    assert relation_files_holding(settings.event_store, TRACES)  # as the report says
    open_elsewhere.commit()
    assert forget(xapi)["scrub"] == "tables rewritten (VACUUM FULL)"
    assert relation_files_holding(settings.event_store, TRACES) == {}
