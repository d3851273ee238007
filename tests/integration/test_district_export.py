"""`lrs export district`: reproducible, incremental, pseudonymised bundles from a real event log."""

from __future__ import annotations

import csv
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.cli.main import main
from lrs.config import Settings
from lrs.export import bundle
from lrs.export.bundle import DistrictExporter, ExportRequest
from projections.vocabulary import COMMENTED, REFLECTED, SET_GOAL

SECRET = "district-secret-0123456789"
WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
OBJECTIVE = "http://adlnet.gov/expapi/activities/objective"
FRACTIONS = "https://example.org/c/fractions"
# What a default bundle must never hold, anywhere.
PERSONAL = ["ada.lovelace@example.org", "Ada Lovelace", "bob.babbage@example.org", "Bob Babbage",
            "teacher.tess@example.org", "Tess Teacher", "My secret worry about fractions",
            "I will beat Bob at fractions", "Bob's drawing is the best", "s00001", "Learner 1"]


def statement(who: str, name: str, verb: str, day: int, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"mbox": f"mailto:{who}", "name": name},
            "verb": {"id": verb}, "object": {"id": "https://example.org/q/1"},
            "timestamp": f"2026-09-{day:02d}T10:00:00Z", **extra}


def personal_history(day: int) -> list[dict[str, Any]]:
    evidence = {"contextActivities": {"category": [{"id": FRACTIONS, "definition": {"type": OBJECTIVE}}]},
                "instructor": {"mbox": "mailto:teacher.tess@example.org", "name": "Tess Teacher"}}
    return [
        statement("ada.lovelace@example.org", "Ada Lovelace", ANSWERED, day,
                  result={"success": True, "duration": "PT5M"}, context=evidence),
        statement("ada.lovelace@example.org", "Ada Lovelace", REFLECTED, day,
                  result={"response": "My secret worry about fractions"}),
        statement("ada.lovelace@example.org", "Ada Lovelace", SET_GOAL, day,
                  result={"response": "I will beat Bob at fractions"}),
        statement("ada.lovelace@example.org", "Ada Lovelace", COMMENTED, day,
                  result={"response": "Bob's drawing is the best"}),
        statement("bob.babbage@example.org", "Bob Babbage", "http://id.tincanapi.com/verb/mentored",
                  day, object={"objectType": "Agent", "mbox": "mailto:ada.lovelace@example.org",
                               "name": "Ada Lovelace"}),
        statement("bob.babbage@example.org", "Bob Babbage", ANSWERED, day,
                  result={"score": {"scaled": 0.4}}, context=evidence),
    ]


def append(store: LearningRecordStore, docs: list[dict[str, Any]]) -> None:
    outcome = store.store_batches([prepare_statements(docs, WRITER, "1.0.3", 1000)])[0]
    assert not isinstance(outcome, Exception), outcome


@pytest.fixture
def district(tmp_path: Path, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder: a simulated school, two learners with emails, names and free text, and a
    roster that puts them (and learner 1) in org north."""
    data = tmp_path / "data"
    # Seed 4 from a Monday: every simulated learner has a session in those days.
    assert main(["simulate", "--learners", "8", "--days", "5", "--start", "2026-09-07", "--seed", "4",
                 "--data-dir", str(data)]) == 0
    store = LearningRecordStore(env=Settings(data_dir=data).event_store_env())
    append(store, personal_history(7))
    roster = tmp_path / "roster.csv"
    roster.write_text("learner,class_id,org,user_sourced_id\n"
                      "ada.lovelace@example.org,7B,north,SIS-1\nbob.babbage@example.org,7B,north,SIS-2\n"
                      "account:https://school.example.org/sis|s00001,7C,south,SIS-3\n")
    assert main(["roster", "load", str(roster), "--data-dir", str(data)]) == 0
    store.close()
    monkeypatch.setenv("LRS_EXPORT_SECRET", SECRET)
    capsys.readouterr()
    yield data


def export(data: Path, out: Path, *flags: str) -> int:
    return main(["export", "district", "--out", str(out), "--data-dir", str(data), *flags])


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def table_rows(path: Path) -> list[tuple[Any, ...]]:
    if path.suffix == ".parquet":
        return sorted(duckdb.sql(f"SELECT * FROM '{path}'").fetchall(), key=repr)
    with path.open(newline="") as f:
        return sorted((tuple(row) for row in csv.reader(f)), key=repr)


def add_more(data: Path) -> None:
    """Ingestion after a first export: new evidence, a voiding, a new learner."""
    store = LearningRecordStore(env=Settings(data_dir=data).event_store_env())
    first = next(s for s in (store.recorder.select_notifications(1, 50)) if s)
    sealed = store.mapper.to_domain_event(first).statement  # type: ignore[attr-defined]
    voided = store.open_statements([sealed])[0]["id"]  # type: ignore[index]
    more = personal_history(9)
    more.append(statement("ada.lovelace@example.org", "Ada Lovelace",
                          "http://adlnet.gov/expapi/verbs/voided", 9,
                          object={"objectType": "StatementRef", "id": voided}))
    more.append(statement("cy.new@example.org", "Cy New", ANSWERED, 10, result={"success": False}))
    append(store, more)
    store.close()


# --- reproducible ----------------------------------------------------------------------------

def test_exporting_the_same_position_twice_gives_byte_identical_files(district: Path,
                                                                      tmp_path: Path) -> None:
    assert export(district, tmp_path / "one") == 0
    assert export(district, tmp_path / "two") == 0
    assert files_of(tmp_path / "one") == files_of(tmp_path / "two")


def test_an_older_position_exported_again_gives_the_same_bytes(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "then") == 0
    position = json.loads((tmp_path / "then/manifest.json").read_text())["position"]
    add_more(district)
    assert export(district, tmp_path / "now") == 0
    assert export(district, tmp_path / "again", "--position", str(position)) == 0
    assert files_of(tmp_path / "again") == files_of(tmp_path / "then")
    assert files_of(tmp_path / "now") != files_of(tmp_path / "then")


# --- incremental -----------------------------------------------------------------------------

def merge(previous: Path, incremental: Path, relative: str) -> list[tuple[Any, ...]]:
    """The merge rule the manifest states, applied to one file."""
    changed = {row[0] for row in table_rows(incremental / "changed_learners.csv")} - {"learner"}
    old, new = table_rows(previous / relative), table_rows(incremental / relative)
    if relative.endswith(".parquet"):
        kept = [row for row in old if row[0] not in changed]
        return sorted(kept + new, key=repr)
    header = next(row for row in old if row[0] == "sourcedId")
    if relative.endswith(("classes.csv", "orgs.csv", "lineItems.csv")):
        merged = {row[0]: row for row in old} | {row[0]: row for row in new}
        return sorted(merged.values(), key=repr)
    learner_column = {"users.csv": "sourcedId", "enrollments.csv": "userSourcedId",
                      "results.csv": "studentSourcedId"}[Path(relative).name]
    index = header.index(learner_column)
    kept = [row for row in old if row[index] not in changed]
    return sorted({*kept, *new}, key=repr)


def test_an_incremental_bundle_applied_to_the_previous_one_equals_a_full_export(
        district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "monday") == 0
    add_more(district)
    assert export(district, tmp_path / "tuesday", "--since-export", str(tmp_path / "monday")) == 0
    assert export(district, tmp_path / "full") == 0
    monday, tuesday, full = tmp_path / "monday", tmp_path / "tuesday", tmp_path / "full"
    manifest = json.loads((tuesday / "manifest.json").read_text())
    assert manifest["kind"] == "incremental"
    assert manifest["since_position"] == json.loads((monday / "manifest.json").read_text())["position"]
    for relative in [f for f in files_of(full) if f.startswith(("tables/", "oneroster/"))]:
        if relative == "oneroster/manifest.csv":
            continue
        merged = merge(monday, tuesday, relative)
        # dateLastModified follows the newer bundle's position in every row it wrote.
        expected = table_rows(full / relative)
        if relative.endswith(".csv"):
            merged = [tuple(v for i, v in enumerate(r) if i != 2) for r in merged]
            expected = [tuple(v for i, v in enumerate(r) if i != 2) for r in expected]
            merged, expected = sorted(set(merged), key=repr), sorted(set(expected), key=repr)
        assert merged == expected, relative
    lines = (monday / "statements.jsonl").read_bytes() + (tuesday / "statements.jsonl").read_bytes()
    assert lines == (full / "statements.jsonl").read_bytes()


def scalar(sql: str) -> Any:
    return duckdb.sql(sql).fetchall()[0][0]


def test_an_incremental_bundle_holds_only_the_learners_that_changed(district: Path,
                                                                    tmp_path: Path) -> None:
    assert export(district, tmp_path / "monday") == 0
    add_more(district)
    assert export(district, tmp_path / "tuesday", "--since-export", str(tmp_path / "monday")) == 0
    changed = scalar(f"SELECT count(*) FROM '{tmp_path}/tuesday/tables/learner_profiles.parquet'")
    everyone = scalar(f"SELECT count(*) FROM '{tmp_path}/monday/tables/learner_profiles.parquet'")
    # Ada and Bob (new evidence), Cy (new), and the learner whose statement Ada voided.
    assert changed == 4 and everyone == 10
    listed = (tmp_path / "tuesday/changed_learners.csv").read_text().splitlines()
    assert len(listed) - 1 == changed


def manifest_of(folder: Path) -> dict[str, Any]:
    return {f["path"]: f for f in json.loads((folder / "manifest.json").read_text())["files"]}


def test_oneroster_manifest_says_delta_for_an_incremental_bundle(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "monday") == 0
    assert export(district, tmp_path / "tuesday", "--since-export", str(tmp_path / "monday")) == 0
    rows = dict(table_rows(tmp_path / "tuesday/oneroster/manifest.csv"))  # type: ignore[arg-type]
    assert rows["file.users"] == "delta" and rows["file.results"] == "delta"
    assert rows["file.courses"] == "absent"


# --- pseudonymised ---------------------------------------------------------------------------

def every_text_of(folder: Path) -> bytes:
    """Every byte of every file, plus every value inside the Parquet files decoded."""
    raw = b"".join(files_of(folder).values())
    decoded = [repr(duckdb.sql(f"SELECT * FROM '{p}'").fetchall()).encode()
               for p in folder.rglob("*.parquet")]
    return (raw + b"".join(decoded)).lower()


def test_a_default_bundle_holds_no_email_name_or_reflection_text(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "bundle") == 0
    text = every_text_of(tmp_path / "bundle")
    found = [p for p in PERSONAL if p.lower().encode() in text]
    assert found == []
    assert SECRET.encode().lower() not in text


def test_each_disclosure_flag_adds_what_it_names(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "open", "--include-names", "--include-emails",
                  "--include-reflections") == 0
    text = every_text_of(tmp_path / "open")
    for expected in ("ada.lovelace@example.org", "ada lovelace", "my secret worry about fractions",
                     "i will beat bob at fractions"):
        assert expected.encode() in text, expected


def test_pseudonyms_are_the_same_in_every_file_and_under_the_same_key(district: Path,
                                                                      tmp_path: Path) -> None:
    assert export(district, tmp_path / "bundle") == 0
    roster = tmp_path / "roster.csv"
    assert main(["export", "roster-map", str(roster), "--out", str(tmp_path / "map.csv")]) == 0
    mapping = {row["user_sourced_id"]: row["pseudonym"]
               for row in csv.DictReader((tmp_path / "map.csv").open())}
    ada = mapping["SIS-1"]
    profiles = duckdb.sql(f"SELECT learner, class_id, org FROM"
                          f" '{tmp_path}/bundle/tables/learner_profiles.parquet'").fetchall()
    assert (ada, "7B", "north") in profiles
    users = (tmp_path / "bundle/oneroster/users.csv").read_text()
    statements = (tmp_path / "bundle/statements.jsonl").read_text()
    assert ada in users and ada in statements


def test_an_incremental_export_under_another_secret_is_refused(district: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert export(district, tmp_path / "monday") == 0
    monkeypatch.setenv("LRS_EXPORT_SECRET", "another-secret-0123456789")
    assert export(district, tmp_path / "tuesday", "--since-export", str(tmp_path / "monday")) == 2
    assert "another district secret" in capsys.readouterr().err
    assert not (tmp_path / "tuesday").exists()


# --- files -----------------------------------------------------------------------------------

ONEROSTER_HEADERS = {
    "users.csv": "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,"
                 "middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,"
                 "userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,"
                 "preferredFamilyName,primaryOrgSourcedId,pronouns",
    "classes.csv": "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,"
                   "location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods",
    "enrollments.csv": "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,"
                       "role,primary,beginDate,endDate",
    "lineItems.csv": "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,"
                     "classSourcedId,categorySourcedId,gradingPeriodSourcedId,academicSessionSourcedId,"
                     "schoolSourcedId,resultValueMin,resultValueMax",
    "results.csv": "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,classSourcedId,"
                   "scoreStatus,score,textScore,scoreDate,comment",
    "orgs.csv": "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId",
    "manifest.csv": "propertyName,value",
}


def test_oneroster_files_open_with_the_expected_headers(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "bundle") == 0
    for name, header in ONEROSTER_HEADERS.items():
        with (tmp_path / "bundle/oneroster" / name).open(newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == header.split(","), name
        assert len(rows) > 1, name
        assert all(len(row) == len(rows[0]) for row in rows), name
    manifest = dict(table_rows(tmp_path / "bundle/oneroster/manifest.csv"))  # type: ignore[arg-type]
    assert manifest["oneroster.version"] == "1.2" and manifest["file.users"] == "bulk"


def test_results_reference_line_items_and_users_in_the_bundle(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "bundle") == 0
    folder = tmp_path / "bundle/oneroster"
    users = {row["sourcedId"] for row in csv.DictReader((folder / "users.csv").open())}
    items = {row["sourcedId"] for row in csv.DictReader((folder / "lineItems.csv").open())}
    results = list(csv.DictReader((folder / "results.csv").open()))
    assert results and all(r["studentSourcedId"] in users and r["lineItemSourcedId"] in items
                           for r in results)


def test_manifest_hashes_and_row_counts_verify(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "bundle") == 0
    folder = tmp_path / "bundle"
    listed = manifest_of(folder)
    assert set(listed) == set(files_of(folder)) - {"manifest.json"}
    for path, entry in listed.items():
        data = (folder / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], path
        assert len(data) == entry["bytes"]
        if path.endswith(".parquet"):
            assert scalar(f"SELECT count(*) FROM '{folder / path}'") == entry["rows"], path
        elif path.endswith(".csv"):
            assert len(data.decode().splitlines()) - 1 == entry["rows"], path
        else:
            assert len(data.splitlines()) == entry["rows"], path


def test_every_column_of_every_table_is_in_the_data_dictionary(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "bundle") == 0
    folder = tmp_path / "bundle"
    with (folder / "data_dictionary.csv").open() as f:
        described = {(row["file"], row["column"]) for row in csv.DictReader(f)}
    for path in folder.rglob("*.parquet"):
        relative = str(path.relative_to(folder))
        columns = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
        assert {(relative, c) for c in columns} <= described, relative
    for path in (folder / "oneroster").glob("*.csv"):
        relative = str(path.relative_to(folder))
        if path.name != "manifest.csv":
            header = path.read_text().splitlines()[0].split(",")
            assert {(relative, c) for c in header} <= described, relative
    assert ("statements.jsonl", "") in described


def test_statements_are_json_lines_in_log_order_with_pseudonymous_agents(district: Path,
                                                                         tmp_path: Path) -> None:
    assert export(district, tmp_path / "bundle") == 0
    lines = (tmp_path / "bundle/statements.jsonl").read_text().splitlines()
    statements = [json.loads(line) for line in lines]
    stored = [s["stored"] for s in statements]
    assert stored == sorted(stored)
    assert all(s["actor"]["account"]["homePage"] == "urn:lrs:pseudonym" for s in statements)
    mentoring = next(s for s in statements if s["verb"]["id"].endswith("/mentored")
                     and s["object"].get("objectType") == "Agent")
    assert mentoring["object"]["account"]["homePage"] == "urn:lrs:pseudonym"


# --- scope -----------------------------------------------------------------------------------

def test_org_keeps_only_the_learners_the_roster_places_there(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "north", "--org", "north") == 0
    profiles = duckdb.sql(f"SELECT DISTINCT org FROM '{tmp_path}/north/tables/learner_profiles.parquet'"
                          ).fetchall()
    assert profiles == [("north",)]
    count = manifest_of(tmp_path / "north")["tables/learner_profiles.parquet"]["rows"]
    assert count == 2


def test_from_and_to_keep_the_days_statements_and_goals_of_the_period(district: Path,
                                                                     tmp_path: Path) -> None:
    assert export(district, tmp_path / "week", "--from", "2026-09-07", "--to", "2026-09-08") == 0
    days = duckdb.sql(f"SELECT min(day), max(day) FROM '{tmp_path}/week/tables/engagement_daily.parquet'"
                      ).fetchall()[0]
    assert str(days[0]) >= "2026-09-07" and str(days[1]) <= "2026-09-08"
    timestamps = [json.loads(line)["timestamp"] for line in
                  (tmp_path / "week/statements.jsonl").read_text().splitlines()]
    assert timestamps and all("2026-09-07" <= t[:10] <= "2026-09-08" for t in timestamps)


# --- bad input: a clear error before anything is written -------------------------------------

@pytest.mark.parametrize(("flags", "message"), [
    (["--org", "atlantis"], "--org 'atlantis': unknown; the roster's orgs are north, south"),
    (["--from", "2026-02-30"], "--from '2026-02-30': must be a date as YYYY-MM-DD"),
    (["--to", "yesterday"], "--to 'yesterday': must be a date as YYYY-MM-DD"),
    (["--from", "2026-10-02", "--to", "2026-10-01"], "--from 2026-10-02 is after --to 2026-10-01"),
    (["--position", "999999"], "--position 999999: the log holds positions 1.."),
    (["--since-export", "/nonexistent"], "--since-export /nonexistent: not a bundle"),
])
def test_bad_options_are_refused_before_anything_is_written(
        district: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        flags: list[str], message: str) -> None:
    assert export(district, tmp_path / "bundle", *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()
    assert not list(tmp_path.glob(".bundle.partial-*"))


def test_an_output_folder_that_is_not_a_bundle_is_refused(district: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("keep me")
    assert export(district, folder) == 2
    assert "exists and is not an earlier bundle" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["thesis.txt"]


def test_a_missing_secret_is_refused(district: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LRS_EXPORT_SECRET")
    assert export(district, tmp_path / "bundle") == 2
    assert "needs the district's secret" in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()


def test_a_short_secret_is_refused(district: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "key"
    key.write_text("short")
    assert export(district, tmp_path / "bundle", "--secret-file", str(key)) == 2
    assert "at least 16 bytes" in capsys.readouterr().err


def test_a_secret_file_works_instead_of_the_variable(district: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert export(district, tmp_path / "by-variable") == 0
    monkeypatch.delenv("LRS_EXPORT_SECRET")
    key = tmp_path / "key"
    key.write_text(SECRET + "\n")
    assert export(district, tmp_path / "by-file", "--secret-file", str(key)) == 0
    assert files_of(tmp_path / "by-file") == files_of(tmp_path / "by-variable")


def test_an_interrupted_export_leaves_no_bundle(district: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle.DistrictExporter, "_write_statements", interrupted)
    assert export(district, tmp_path / "bundle") == 130  # "interrupted", exit 130
    assert not (tmp_path / "bundle").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_an_interrupted_export_keeps_the_earlier_bundle_it_would_replace(
        district: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert export(district, tmp_path / "latest") == 0
    before = files_of(tmp_path / "latest")
    add_more(district)

    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle.DistrictExporter, "_write_statements", interrupted)
    assert export(district, tmp_path / "latest") == 130
    assert files_of(tmp_path / "latest") == before


def test_an_earlier_bundle_is_replaced_by_the_new_one(district: Path, tmp_path: Path) -> None:
    assert export(district, tmp_path / "latest") == 0
    add_more(district)
    assert export(district, tmp_path / "latest") == 0
    assert export(district, tmp_path / "fresh") == 0
    assert files_of(tmp_path / "latest") == files_of(tmp_path / "fresh")


# --- live ------------------------------------------------------------------------------------

def test_an_export_runs_while_statements_keep_arriving(district: Path, tmp_path: Path) -> None:
    store = LearningRecordStore(env=Settings(data_dir=district).event_store_env())
    stop = threading.Event()

    def ingest() -> None:
        day = 11
        while not stop.is_set():
            append(store, personal_history(day % 28 + 1))
            day += 1

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        exporter = DistrictExporter(store, district / "export-views.duckdb", SECRET.encode(),
                                    progress=False)
        manifest = exporter.export(ExportRequest(out=tmp_path / "live"))
    finally:
        stop.set()
        writer.join()
    lines = (tmp_path / "live/statements.jsonl").read_text().splitlines()
    statement_positions = [n.id for n in store.recorder.select_notifications(
        1, 100_000, stop=manifest["position"], topics=[bundle.STATEMENT_TOPIC])]
    assert len(lines) == len(statement_positions)
    assert (store.recorder.max_notification_id() or 0) >= manifest["position"]
    store.close()


@pytest.mark.postgres
def test_a_postgresql_log_exports_the_same_bytes_twice(postgres_database: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_database)
    flags = ["--data-dir", str(tmp_path / "data"), "--event-store", postgres_database]
    assert main(["simulate", "--learners", "4", "--days", "3", "--start", "2026-09-07", "--seed", "4",
                 *flags]) == 0
    monkeypatch.setenv("LRS_EXPORT_SECRET", SECRET)
    for name in ("one", "two"):
        assert main(["export", "district", "--out", str(tmp_path / name), *flags]) == 0
    assert files_of(tmp_path / "one") == files_of(tmp_path / "two")
    assert scalar(f"SELECT count(*) FROM '{tmp_path}/one/tables/learner_profiles.parquet'") == 4


def test_a_long_export_shows_its_progress_on_the_terminal(district: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    store = LearningRecordStore(env=Settings(data_dir=district).event_store_env())
    DistrictExporter(store, tmp_path / "views.duckdb", SECRET.encode(), progress=True).export(
        ExportRequest(out=tmp_path / "bundle"))
    store.close()
    shown = capsys.readouterr().err
    assert "projections" in shown and "statements" in shown and "tables" in shown
