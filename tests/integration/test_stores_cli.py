"""`lrs stores ...`, `lrs credentials ... --store` and the per-store commands (`lrs projections
rebuild --store`, `lrs sql --store`, `lrs export district --store`), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.cli.main import main
from lrs.config import Settings

WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")


def cli(settings: Settings, *args: str) -> int:
    where = ["--data-dir", str(settings.data_dir)]
    if settings.event_store:
        where += ["--event-store", settings.event_store]
    return main([*args, *where])


def answered(who: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"mbox": f"mailto:{who}@example.org", "name": who},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": "https://example.org/q/1"}, "result": {"success": True},
            "timestamp": "2026-09-07T10:00:00Z"}


def append(settings: Settings, store: str, docs: list[dict[str, Any]]) -> None:
    app = LearningRecordStore(env=settings.for_store(store).event_store_env())
    try:
        outcome = app.store_batches([prepare_statements(docs, WRITER, "1.0.3", 1000)])[0]
        assert not isinstance(outcome, Exception), outcome
    finally:
        app.close()


def test_a_created_store_is_listed_and_an_archived_one_says_so(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(settings, "stores", "create", "north-high") == 0
    assert cli(settings, "stores", "create", "south-high") == 0
    assert cli(settings, "stores", "archive", "south-high") == 0
    capsys.readouterr()
    assert cli(settings, "stores", "list") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["default", "active"], ["north-high", "active"], ["south-high", "archived"]]


@pytest.mark.parametrize("name", ["North", "1st", "a_b", "x" * 41, "", "é"])
def test_a_store_name_outside_the_rule_is_refused_in_one_line_naming_it(
        settings: Settings, capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert cli(settings, "stores", "create", name) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "a lowercase letter, then lowercase letters, digits and '-'" in error


def test_a_store_name_is_given_once(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(settings, "stores", "create", "north") == 0
    assert cli(settings, "stores", "create", "north") == 2
    assert cli(settings, "stores", "create", "default") == 2
    assert "exists already" in capsys.readouterr().err


def test_the_default_store_cannot_be_archived(settings: Settings,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(settings, "stores", "archive", "default") == 2
    assert "cannot be archived" in capsys.readouterr().err


def test_a_credential_is_issued_in_a_store_and_listed_with_it(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    cli(settings, "stores", "create", "north")
    assert cli(settings, "credentials", "add", "quiz", "--store", "north", "--key", "quiz-key") == 0
    assert cli(settings, "credentials", "add", "other", "--key", "other-key") == 0
    assert "store: north" in capsys.readouterr().out
    assert cli(settings, "credentials", "list", "--store", "north") == 0
    out = capsys.readouterr().out
    assert "quiz-key" in out and "other-key" not in out
    assert cli(settings, "credentials", "list") == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {"quiz-key": "north", "other-key": "default"}


def test_a_credential_in_a_store_that_does_not_exist_is_refused(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(settings, "credentials", "add", "quiz", "--store", "nowhere") == 2
    assert "--store nowhere: no such store" in capsys.readouterr().err


def test_an_archived_store_takes_no_new_credentials(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    cli(settings, "stores", "create", "old")
    cli(settings, "stores", "archive", "old")
    assert cli(settings, "credentials", "add", "quiz", "--store", "old") == 2
    assert "store 'old' is archived" in capsys.readouterr().err


def test_scope_admin_is_only_for_the_default_stores_credentials(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    cli(settings, "stores", "create", "north")
    assert cli(settings, "credentials", "add", "boss", "--store", "north", "--scopes", "admin") == 2
    assert "scope admin is the deployment's" in capsys.readouterr().err


def test_a_credential_keeps_its_store(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Reissuing a key into another store would hand that store's credential another's data."""
    cli(settings, "stores", "create", "north")
    cli(settings, "credentials", "add", "quiz", "--key", "k1")
    assert cli(settings, "credentials", "add", "quiz", "--key", "k1", "--store", "north") == 2
    assert "a credential stays in its store" in capsys.readouterr().err


def test_a_district_credential_names_the_stores_it_reads(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    cli(settings, "stores", "create", "north")
    cli(settings, "stores", "create", "south")
    assert cli(settings, "credentials", "add", "district", "--scopes", "statements/read",
               "--reads-stores", "north,south", "--key", "d") == 0
    capsys.readouterr()
    cli(settings, "credentials", "list")
    assert "(also reads: north, south)" in capsys.readouterr().out
    assert cli(settings, "credentials", "add", "district", "--scopes", "statements/read",
               "--reads-stores", "nowhere") == 2
    assert cli(settings, "credentials", "add", "d2", "--scopes", "statements/write",
               "--reads-stores", "north") == 2


def test_views_are_built_and_queried_per_store(settings: Settings,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cli(settings, "stores", "create", "north")
    append(settings, "north", [answered("nina"), answered("noah")])
    append(settings, "default", [answered("dora")])
    assert cli(settings, "projections", "rebuild", "--store", "north") == 0
    assert (settings.data_dir / "stores" / "north" / "views.duckdb").exists()
    capsys.readouterr()
    assert cli(settings, "sql", "SELECT learner FROM statement_facts ORDER BY 1",
               "--store", "north") == 0
    out = capsys.readouterr().out
    assert "nina" in out and "noah" in out and "dora" not in out


def test_a_district_export_of_a_store_holds_that_stores_statements_only(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(settings, "stores", "create", "north")
    append(settings, "north", [answered("nina"), answered("noah")])
    append(settings, "default", [answered("dora")])
    secret = tmp_path / "district.key"
    secret.write_text("district-secret-0123456789")
    out = tmp_path / "bundle"
    assert cli(settings, "export", "district", "--store", "north", "--out", str(out),
               "--secret-file", str(secret)) == 0
    assert len((out / "statements.jsonl").read_text().splitlines()) == 2


def test_a_command_on_a_store_that_does_not_exist_is_refused(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(settings, "projections", "rebuild", "--store", "nowhere") == 2
    assert "--store nowhere: no such store (lrs stores list)" in capsys.readouterr().err
