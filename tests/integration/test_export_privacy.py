"""District bundles are really pseudonymised: real LMS statements (messages, notes, forum posts,
grades, with people inside extensions) leave no name, email, account, LMS id or private text in
any byte of a default bundle, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.cli.main import main
from lrs.config import Settings
from lrs.export.pseudonyms import Pseudonymiser
from projections.vocabulary import REFLECTED, SET_GOAL
from tests import lms_statements as lms
from tests.lms_statements import FREE_TEXT, PERSONAL, PRIVATE_TEXT, UNRECOGNISABLE, lms_statements

SECRET = "district-secret-0123456789"
WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
# This LRS's own free text: a goal and a reflection naming a classmate.
GOAL_TEXT = "Beat Tomasz Wójcik at the spelling test"
REFLECTION_TEXT = "Priya Ramanathan explained commas to me"
BUNDLE_FILES = {".parquet", ".csv", ".json", ".jsonl"}


def own_statements() -> list[dict[str, Any]]:
    base = {"object": {"id": "https://moodle.lakeside.example.edu/mod/assign/view.php?id=88"},
            "timestamp": "2026-09-14T10:00:00Z"}
    return [
        {**base, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "goal")), "actor": lms.PRIYA,
         "verb": {"id": SET_GOAL}, "result": {"response": GOAL_TEXT}},
        {**base, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "reflection")), "actor": lms.TOMASZ,
         "verb": {"id": REFLECTED}, "result": {"response": REFLECTION_TEXT}},
    ]


def pseudonym(agent: dict[str, Any]) -> str:
    account = agent.get("account")
    key = f"account:{account['homePage']}|{account['name']}" if account else f"mbox:{agent['mbox']}"
    return Pseudonymiser(SECRET.encode()).learner(key)


@pytest.fixture
def lms_log(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A log (SQLite or PostgreSQL) holding LMS statements; yields the CLI's store flags."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = LearningRecordStore(env=settings.event_store_env())
    prepared = prepare_statements(lms_statements() + own_statements(), WRITER, "1.0.3", 1000)
    outcome = store.store_batches([prepared])[0]
    assert not isinstance(outcome, Exception), outcome
    store.close()
    monkeypatch.setenv("LRS_EXPORT_SECRET", SECRET)
    flags = ["--data-dir", str(settings.data_dir)]
    if settings.event_store:
        flags += ["--event-store", settings.event_store]
    yield flags


def export(flags: list[str], out: Path, *more: str) -> Path:
    assert main(["export", "district", "--out", str(out), *flags, *more]) == 0
    return out


def every_byte(folder: Path) -> str:
    """Every file as written, every Parquet file again uncompressed, and every Parquet value
    decoded; casefolded, so a needle is found whatever its case."""
    parts: list[bytes] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        assert path.suffix in BUNDLE_FILES, f"{path}: a file the scan cannot read through"
        parts.append(path.read_bytes())
        if path.suffix == ".parquet":
            plain = io.BytesIO()
            pq.write_table(pq.read_table(path), plain, compression="none")
            parts.append(plain.getvalue())
            parts.append(repr(duckdb.sql(f"SELECT * FROM '{path}'").fetchall()).encode())
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str).encode())
    return b"\n".join(parts).decode("utf-8", errors="replace").casefold()


def found_in(text: str, needles: list[str]) -> list[str]:
    """Needles in the text, as written or JSON-escaped; digits only where no hex digit touches
    them (a pseudonym is hex)."""
    found = []
    for needle in needles:
        for form in {needle.casefold(), json.dumps(needle)[1:-1].casefold()}:
            pattern = re.escape(form)
            if needle.isdigit():
                pattern = rf"(?<![0-9a-f]){pattern}(?![0-9a-f])"
            if re.search(pattern, text):
                found.append(needle)
                break
    return found


def bundle_statements(folder: Path) -> dict[str, dict[str, Any]]:
    lines = (folder / "statements.jsonl").read_text().splitlines()
    return {s["id"]: s for s in map(json.loads, lines)}


# --- the default bundle ----------------------------------------------------------------------

def test_a_default_bundle_of_lms_statements_holds_no_person_and_no_private_text(
        lms_log: list[str], tmp_path: Path) -> None:
    bundle = export(lms_log, tmp_path / "bundle")
    assert len(bundle_statements(bundle)) == len(lms_statements()) + 2
    text = every_byte(bundle)
    assert found_in(text, [*PERSONAL, GOAL_TEXT, REFLECTION_TEXT]) == []
    assert SECRET.casefold() not in text


def test_agents_inside_extensions_get_the_same_pseudonym_as_the_person_acting(
        lms_log: list[str], tmp_path: Path) -> None:
    statements = bundle_statements(export(lms_log, tmp_path / "bundle"))
    message, note, viewed_notes, graded, submission, _, post, canvas, grade, sub, _ = \
        (statements[s["id"]] for s in lms_statements())
    tomasz = {"objectType": "Agent", "account": {"homePage": "urn:lrs:pseudonym",
                                                 "name": pseudonym(lms.TOMASZ)}}
    assert post["actor"]["account"] == tomasz["account"]
    assert message["context"]["extensions"][lms.TO] == tomasz
    assert note["object"]["definition"]["extensions"][lms.NOTE_SUBJECT] == tomasz
    assert viewed_notes["context"]["extensions"][lms.NOTE_SCOPE] == tomasz
    assert sub["object"]["context"]["extensions"][lms.FOR] == tomasz
    priya = pseudonym(lms.PRIYA)
    assert submission["context"]["extensions"][lms.FOR]["account"]["name"] == priya
    teacher = pseudonym(lms.TEACHER)
    assert grade["result"]["extensions"]["https://canvas.instructure.com/xapi/extensions/grader"][
        "account"]["name"] == teacher
    assert graded["context"]["instructor"]["account"]["name"] == teacher
    recipients = canvas["context"]["extensions"]["https://canvas.instructure.com/xapi/extensions/recipients"]
    assert recipients["to"][0]["account"]["name"] == pseudonym(lms.MEI)
    members = recipients["cc"]["group"]["member"]
    assert [m["account"]["homePage"] for m in members] == ["urn:lrs:pseudonym"] * 2
    person = canvas["context"]["extensions"][lms.CALIPER]
    assert person == {"membership": {"member": {"type": "Person", "id": person["membership"]["member"][
        "id"]}}} and person["membership"]["member"]["id"].startswith("urn:lrs:pseudonym:")


def test_a_default_bundle_keeps_ids_and_results_but_no_free_text(lms_log: list[str],
                                                                 tmp_path: Path) -> None:
    statements = bundle_statements(export(lms_log, tmp_path / "bundle"))
    for statement in statements.values():
        assert "display" not in statement["verb"]
        for part in (statement, statement["object"]):
            definitions = [part.get("object", {}).get("definition") or {}] + [
                a.get("definition") or {} for found in (part.get("context") or {}).get(
                    "contextActivities", {}).values() for a in found]
            assert all(not {"name", "description", "moreInfo"} & set(d) for d in definitions)
            assert "response" not in (part.get("result") or {})
            assert not {"platform", "revision"} & set(part.get("context") or {})
        assert all(set(a) <= {"usageType", "contentType", "length", "sha2"}
                   for a in statement.get("attachments", []))
    graded = statements[lms_statements()[3]["id"]]
    assert graded["verb"] == {"id": "http://adlnet.gov/expapi/verbs/scored"}
    assert graded["result"] == {"score": {"raw": 11, "min": 0, "max": 20, "scaled": 0.55},
                                "completion": True, "success": False}
    assert graded["object"] == {"id": "https://moodle.lakeside.example.edu/mod/assign/view.php?id=88",
                                "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"}}
    assert graded["context"]["contextActivities"]["grouping"][0]["id"].endswith("/course/view.php?id=12")


def test_a_profile_page_activity_gets_a_pseudonym_iri_the_same_in_every_bundle(
        lms_log: list[str], tmp_path: Path) -> None:
    viewed = lms_statements()[5]["id"]
    first = bundle_statements(export(lms_log, tmp_path / "one"))[viewed]["object"]
    again = bundle_statements(export(lms_log, tmp_path / "two"))[viewed]["object"]
    assert first["id"].startswith("urn:lrs:pseudonym:activity:") and first == again
    assert first["definition"] == {"type": lms.USER_PROFILE}


def test_names_and_emails_flags_reach_agents_inside_extensions_as_they_reach_the_actor(
        lms_log: list[str], tmp_path: Path) -> None:
    statements = bundle_statements(export(lms_log, tmp_path / "open", "--include-names",
                                          "--include-emails"))
    message, canvas = statements[lms_statements()[0]["id"]], statements[lms_statements()[7]["id"]]
    assert message["actor"]["name"] == "Priya Ramanathan"
    assert message["context"]["extensions"][lms.TO]["name"] == "Tomasz Wójcik"
    to = canvas["context"]["extensions"]["https://canvas.instructure.com/xapi/extensions/recipients"]["to"]
    assert to == [{"objectType": "Agent", "name": "Mei Chen", "mbox": lms.MEI["mbox"]}]
    # Names and emails are not free text: the message itself stays out.
    assert found_in(every_byte(tmp_path / "open"), PRIVATE_TEXT) == []


# --- --include-free-text ---------------------------------------------------------------------

def test_free_text_comes_back_only_when_asked_and_the_people_in_it_stay_pseudonymised(
        lms_log: list[str], tmp_path: Path) -> None:
    bundle = export(lms_log, tmp_path / "free", "--include-free-text")
    text = every_byte(bundle)
    texts = [*FREE_TEXT, "explained commas to me", "at the spelling test"]
    assert found_in(text, texts) == texts
    people = [p for p in PERSONAL if p not in PRIVATE_TEXT and p not in UNRECOGNISABLE]
    assert found_in(text, people) == []
    message = bundle_statements(bundle)[lms_statements()[0]["id"]]
    # The receiver named in the text is the receiver of the extension: one pseudonym for both.
    assert message["object"]["definition"]["description"]["en"].startswith(
        f"{pseudonym(lms.TOMASZ)}, I cannot stop thinking")
    reflections = duckdb.sql(f"SELECT text FROM '{bundle}/tables/reflections.parquet'").fetchall()
    assert reflections == [(f"{pseudonym(lms.PRIYA)} explained commas to me",)]


def test_the_old_flag_name_still_asks_for_free_text(lms_log: list[str], tmp_path: Path) -> None:
    old = bundle_statements(export(lms_log, tmp_path / "old", "--include-reflections"))
    new = bundle_statements(export(lms_log, tmp_path / "new", "--include-free-text"))
    assert old == new
    assert "response" in old[lms_statements()[3]["id"]]["result"]


# --- bundles made before -----------------------------------------------------------------------

def test_an_incremental_export_after_a_bundle_made_under_the_old_rules_is_refused(
        lms_log: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = export(lms_log, tmp_path / "before")
    manifest = json.loads((before / "manifest.json").read_text())
    del manifest["pseudonyms"]["statement_rules"]  # as an earlier lrs wrote it
    (before / "manifest.json").write_text(json.dumps(manifest))
    assert main(["export", "district", "--out", str(tmp_path / "after"), "--since-export",
                 str(before), *lms_log]) == 2
    assert "make a full export" in capsys.readouterr().err
    assert not (tmp_path / "after").exists()
