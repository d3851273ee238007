"""`lrs sql` on a local views file keeps the same sandbox and limits as POST /api/sql."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrs.cli.main import main

SECRET = "cli-sandbox-secret-51c2"


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data folder with a views file (built from an empty log) and a secret beside it."""
    assert main(["projections", "rebuild", "--data-dir", str(tmp_path)]) == 0
    (tmp_path / "secret.txt").write_text(SECRET)
    capsys.readouterr()
    return tmp_path


def test_local_sql_cannot_read_server_files(data_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    query = f"SELECT content FROM read_text('{data_dir / 'secret.txt'}')"
    assert main(["sql", query, "--data-dir", str(data_dir)]) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "read_text() is not allowed" in err


def test_local_sql_runaway_query_is_stopped_at_the_time_limit(
        data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRS_SQL_TIMEOUT_SECONDS", "1")
    query = "SELECT sum(a.range * b.range) FROM range(1000000000) a, range(1000000000) b"
    assert main(["sql", query, "--data-dir", str(data_dir)]) == 2
    assert "ran longer than 1 s (LRS_SQL_TIMEOUT_SECONDS)" in capsys.readouterr().err


def test_local_sql_says_when_it_stopped_at_the_row_limit(
        data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRS_SQL_MAX_ROWS", "3")
    assert main(["sql", "SELECT range AS n FROM range(10)", "--data-dir", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    assert [line.strip() for line in out.splitlines()[2:]] == ["0", "1", "2"]
    assert "the first 3 rows: LRS_SQL_MAX_ROWS" in err
