"""The `lrs` command: credentials add, list and revoke against a real SQLite store."""

from __future__ import annotations

from pathlib import Path

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
