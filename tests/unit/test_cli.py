"""The `lrs` command: credentials add, list and revoke against a real SQLite store."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lrs.cli.main import build_parser, main


def test_credentials_add_prints_key_and_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["credentials", "add", "quiz-app", "--scopes", "statements/write",
                 "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("key: ") and "\nsecret: " in out


def test_credentials_list_shows_scopes_but_never_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["credentials", "add", "quiz-app", "--scopes", "all/read", "--data-dir", str(tmp_path)])
    secret = capsys.readouterr().out.split("secret: ")[1].split()[0]
    main(["credentials", "list", "--data-dir", str(tmp_path)])
    listing = capsys.readouterr().out
    assert "quiz-app" in listing and "all/read" in listing and "active" in listing
    assert secret not in listing


def test_credentials_revoke_marks_it_revoked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["credentials", "add", "app", "--key", "app-key", "--data-dir", str(tmp_path)])
    assert main(["credentials", "revoke", "app-key", "--data-dir", str(tmp_path)]) == 0
    main(["credentials", "list", "--data-dir", str(tmp_path)])
    assert "revoked" in capsys.readouterr().out


def test_a_teacher_is_added_with_classes_and_listed_with_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["credentials", "add", "Ms Rivera", "--scopes", "teacher", "--classes", "team:7A",
                 "team:7B", "--data-dir", str(tmp_path)]) == 0
    assert "classes: team:7A, team:7B" in capsys.readouterr().out
    main(["credentials", "list", "--data-dir", str(tmp_path)])
    assert "teacher (classes: team:7A, team:7B)" in capsys.readouterr().out


def test_a_learner_given_as_an_email_is_listed_as_its_mbox_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["credentials", "add", "Ada", "--scopes", "learner", "--learner", "ada@example.org",
          "--data-dir", str(tmp_path)])
    main(["credentials", "list", "--data-dir", str(tmp_path)])
    assert "learner (learner: mbox:mailto:ada@example.org)" in capsys.readouterr().out


def test_a_teacher_without_classes_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["credentials", "add", "T", "--scopes", "teacher", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scope teacher needs the classes" in err


def test_revoking_an_unknown_key_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["credentials", "revoke", "ghost", "--data-dir", str(tmp_path)]) == 2
    assert "no credential with key 'ghost'" in capsys.readouterr().err


def test_unknown_scope_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["credentials", "add", "x", "--scopes", "everything"])


def test_serve_accepts_host_port_and_data_dir() -> None:
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9000",
                                      "--data-dir", "/tmp/x", "--bootstrap-credential", "k:s"])
    assert (args.host, args.port, str(args.data_dir)) == ("0.0.0.0", 9000, "/tmp/x")


def test_event_store_setting_selects_postgresql() -> None:
    from lrs.config import Settings

    env = Settings(event_store="postgresql://u:p%40ss@db.internal:6543/lrs").event_store_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_PASSWORD"]) == (
        "db.internal", "6543", "p@ss")


def test_unknown_event_store_scheme_is_an_error() -> None:
    from lrs.config import Settings

    with pytest.raises(ValueError, match="not supported"):
        Settings(event_store="mysql://x").event_store_env()


@pytest.mark.parametrize("url", ["http://lrs.example:8000", "http://lrs.example:8000/",
                                 "http://lrs.example:8000/xAPI/", "http://lrs.example:8000/xAPI",
                                 "http://lrs.example:8000/xapi/"])
def test_url_takes_the_xapi_endpoint_serve_prints_as_well_as_the_server_root(url: str) -> None:
    from lrs.cli.remote import server_root

    assert server_root(url) == "http://lrs.example:8000"


def test_url_keeps_a_path_before_the_xapi_endpoint() -> None:
    from lrs.cli.remote import server_root

    assert server_root("https://school.example/lrs/xAPI/") == "https://school.example/lrs"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("url", ["127.0.0.1:8000/xAPI/", "http//127.0.0.1:8000", "ftp://lrs.example/",
                                 "http://127.0.0.1:eighty/xAPI/"])
def test_a_malformed_url_fails_in_one_line_naming_it(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "SELECT 1", "--url", url, "--credential", "k:s"]) == 1
    line = one_line(capsys.readouterr().err)
    assert url in line and "http://127.0.0.1:8000/xAPI/" in line  # the URL used, and an example


def test_a_url_without_a_credential_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LRS_CREDENTIAL", raising=False)
    assert main(["sql", "SELECT 1", "--url", "http://127.0.0.1:9/xAPI/"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "http://127.0.0.1:9/xAPI/" in line and "LRS_CREDENTIAL" in line


def test_a_missing_option_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sql"])
    assert exited.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert "required: query" in line and "lrs sql --help" in line


def test_sql_on_a_data_folder_without_views_says_how_to_build_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LRS_URL", raising=False)
    assert main(["sql", "SELECT 1", "--data-dir", str(tmp_path)]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"lrs projections rebuild --data-dir {tmp_path}" in line and "in use" not in line
    assert not (tmp_path / "views.duckdb").exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def simulated_day(day: int) -> list[dict[str, Any]]:
    return [{"timestamp": f"2026-03-{day + 2:02d}T10:00:00Z"}] * 3


def test_simulate_shows_progress_on_a_terminal() -> None:
    from lrs.cli.progress import days_progress

    terminal, sent = Terminal(), []
    with days_progress(sent.append, 5, datetime(2026, 3, 2, tzinfo=UTC), terminal) as send:
        for day in range(5):
            send(simulated_day(day))
    assert len(sent) == 5
    assert "5/5" in terminal.getvalue() and "statements=15" in terminal.getvalue()


def test_simulate_shows_no_progress_when_not_on_a_terminal() -> None:
    from lrs.cli.progress import days_progress

    piped, sent = io.StringIO(), []
    with days_progress(sent.append, 5, datetime(2026, 3, 2, tzinfo=UTC), piped) as send:
        for day in range(5):
            send(simulated_day(day))
    assert len(sent) == 5 and piped.getvalue() == ""


def test_a_batch_limit_larger_than_one_write_is_refused_in_one_line_naming_the_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A batch is never split across writes, and a write of more than 5,000 statements names
    more ids in one lookup than SQLite takes: such a setting is refused at start, not at the
    first large batch (which would fail whole, and a Kafka message for ever)."""
    monkeypatch.setenv("LRS_MAX_BATCH_STATEMENTS", "6000")
    monkeypatch.setenv("LRS_EVENT_STORE", "postgresql://lrs:hunter2@127.0.0.1:1/none")
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: LRS_MAX_BATCH_STATEMENTS:")
    assert "5000" in err and "hunter2" not in err


@pytest.mark.parametrize("threads", ["-1", "65", "1.5"])
def test_a_views_thread_count_out_of_0_to_64_is_refused_in_one_line_naming_the_setting(
        threads: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LRS_VIEWS_THREADS", threads)
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: LRS_VIEWS_THREADS:")


def test_lrs_project_follows_the_log_on_lrs_views_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import projections.runner

    given: dict[str, Any] = {}

    class Stopped(Exception):
        pass

    def runner(*args: Any, **kwargs: Any) -> None:
        given.update(kwargs)
        raise Stopped

    monkeypatch.setattr(projections.runner, "ProjectionRunner", runner)
    monkeypatch.setenv("LRS_VIEWS_THREADS", "3")
    with pytest.raises(Stopped):
        main(["project", "--data-dir", str(tmp_path)])
    assert given["threads"] == 3
