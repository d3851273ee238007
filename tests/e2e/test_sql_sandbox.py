"""POST /api/sql reads the views and nothing else, within its time, row and byte limits.

Each test tries one way out of the sandbox on both event stores, with the projections embedded
(a real child process and a real DuckDB file).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import XAPIClient, store_settings
from tests.statements import agent

SECRET = "sandbox-secret-7f3a"
TIMEOUT = 3.0
MAX_ROWS = 50
MAX_BYTES = 20_000


def answered(learner: str, day: int) -> dict[str, Any]:
    return {"actor": agent(learner), "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"id": f"https://example.org/q/{day}"},
            "result": {"success": True, "duration": "PT10M"},
            "context": {"contextActivities": {"category": [
                {"id": "https://example.org/c/fractions",
                 "definition": {"type": "http://adlnet.gov/expapi/activities/objective"}}]}},
            "timestamp": f"2026-11-{day:02d}T10:00:00Z"}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Files of the server's that analysts must not read, each holding SECRET."""
    folder = tmp_path / "server-files"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    (folder / "secret.csv").write_text(f"name,value\nsecret,{SECRET}\n")
    (folder / "secret.json").write_text(f'{{"secret": "{SECRET}"}}')
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT '{SECRET}' AS secret) TO '{folder / 'secret.parquet'}'")
    with duckdb.connect(str(folder / "other.duckdb")) as con:
        con.execute(f"CREATE TABLE t AS SELECT '{SECRET}' AS secret")
    return folder


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One server per event store for the module: each test only tries a query on it, and a
    server with its views process takes a second and a half to start."""
    return store_settings(request, tmp_path_factory.mktemp("sandbox"))


@pytest.fixture(scope="module")
def analyst(settings: Settings) -> Iterator[XAPIClient]:
    yield from serve_analyst(settings, TIMEOUT)


def serve_analyst(settings: Settings, timeout: float) -> Iterator[XAPIClient]:
    embedded = settings.model_copy(update={
        "projections": "embedded", "sql_timeout_seconds": timeout, "sql_max_rows": MAX_ROWS,
        "sql_max_bytes": MAX_BYTES, "views_memory_limit": "256MB"})
    with TestClient(create_app(embedded)) as client:
        xapi = XAPIClient(client)
        assert xapi.post([answered("ada", 1), answered("ada", 2), answered("bo", 3)]).status_code == 200
        deadline = time.monotonic() + 30
        while True:
            lag = xapi.request("GET", "/api/health").json()["projections"]
            if lag["events_behind"] == 0 and lag["learners_to_refresh"] == 0:
                break
            assert time.monotonic() < deadline, "projections did not catch up"
            time.sleep(0.05)
        yield xapi


def run(analyst: XAPIClient, sql: str) -> Any:
    return analyst.request("POST", "/api/sql", json={"sql": sql})


def refused(analyst: XAPIClient, sql: str, rule: str) -> str:
    """The query is answered 400 naming ``rule``, and nothing of SECRET comes back."""
    response = run(analyst, sql)
    assert response.status_code == 400, response.text
    assert SECRET not in response.text
    message: str = response.json()["error"]["message"]
    assert rule in message, message
    return message


# --- files -------------------------------------------------------------------------------------

def test_sql_cannot_read_server_files_with_read_text(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"SELECT * FROM read_text('{files / 'secret.txt'}')", "read_text()")
    refused(analyst, "SELECT content FROM read_text('/proc/self/environ')", "read_text()")


def test_sql_cannot_read_server_files_with_read_blob(analyst: XAPIClient, files: Path,
                                                     settings: Settings) -> None:
    refused(analyst, f"SELECT * FROM read_blob('{files / 'secret.txt'}')", "read_blob()")
    # Not even the views' own file (DuckDB lets an instance read its own files).
    refused(analyst, f"SELECT * FROM read_blob('{settings.data_dir / 'views.duckdb'}')",
            "read_blob()")


def test_sql_cannot_read_server_files_with_read_csv(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"SELECT * FROM read_csv('{files / 'secret.csv'}')", "read_csv()")
    refused(analyst, f"SELECT * FROM '{files / 'secret.csv'}'", "names a file")


def test_sql_cannot_read_server_files_with_read_json(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"SELECT * FROM read_json('{files / 'secret.json'}')", "read_json()")


def test_sql_cannot_read_server_files_with_read_parquet(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"SELECT * FROM read_parquet('{files / 'secret.parquet'}')", "read_parquet()")


def test_sql_cannot_list_server_files_with_glob(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"SELECT * FROM glob('{files}/*')", "glob()")


def test_sql_cannot_run_sql_hidden_in_a_string_with_query(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"SELECT * FROM query('SELECT * FROM read_text(''{files / 'secret.txt'}'')')",
            "query()")


# --- statements other than one SELECT ----------------------------------------------------------

def test_sql_cannot_attach_other_databases(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"ATTACH '{files / 'other.duckdb'}' AS other", "not ATTACH")
    refused(analyst, f"SELECT * FROM read_duckdb('{files / 'other.duckdb'}', table_name := 't')",
            "read_duckdb()")


def test_sql_cannot_copy_to_files(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"COPY (SELECT * FROM mastery) TO '{files / 'out.csv'}'", "not COPY")
    assert not (files / "out.csv").exists()


def test_sql_cannot_export_the_database(analyst: XAPIClient, files: Path) -> None:
    refused(analyst, f"EXPORT DATABASE '{files / 'export'}'", "not EXPORT")
    assert not (files / "export").exists()


def test_sql_cannot_install_extensions(analyst: XAPIClient) -> None:
    refused(analyst, "INSTALL httpfs", "not INSTALL")


def test_sql_cannot_load_extensions(analyst: XAPIClient) -> None:
    refused(analyst, "LOAD httpfs", "not LOAD")


def test_sql_cannot_set_options(analyst: XAPIClient) -> None:
    refused(analyst, "SET enable_external_access = true", "not SET")
    refused(analyst, "RESET lock_configuration", "not RESET")


def test_sql_cannot_run_pragmas(analyst: XAPIClient) -> None:
    refused(analyst, "PRAGMA database_list", "not PRAGMA")
    # The SELECT form of the same pragma shows where the server keeps its files.
    refused(analyst, "SELECT path FROM duckdb_databases()", "duckdb_databases()")


def test_sql_cannot_call_procedures(analyst: XAPIClient) -> None:
    refused(analyst, "CALL checkpoint()", "not CALL")
    refused(analyst, "SELECT * FROM checkpoint()", "checkpoint()")


def test_sql_cannot_send_two_statements(analyst: XAPIClient) -> None:
    refused(analyst, "SELECT 1; SELECT 2", "one statement, not 2")


def test_sql_comment_cannot_hide_a_second_statement(analyst: XAPIClient) -> None:
    refused(analyst, "SELECT count(*) FROM mastery -- only a comment?\n; DELETE FROM mastery",
            "one statement, not 2")
    assert run(analyst, "SELECT count(*) FROM mastery").json()["rows"] == [[2]]


# --- limits ------------------------------------------------------------------------------------

def test_sql_runaway_query_is_stopped_at_the_time_limit(analyst: XAPIClient) -> None:
    refused(analyst, "SELECT sum(a.range * b.range) FROM range(1000000000) a, range(1000000000) b",
            f"ran longer than {TIMEOUT:g} s")
    assert run(analyst, "SELECT 1 AS one").json()["rows"] == [[1]]  # the slot is free again


def test_sql_answer_beyond_the_row_limit_is_truncated(analyst: XAPIClient) -> None:
    body = run(analyst, "SELECT range AS n FROM range(1000)").json()
    assert (len(body["rows"]), body["truncated"]) == (MAX_ROWS, True)
    assert body["rows"][-1] == [MAX_ROWS - 1]


def test_sql_answer_beyond_the_byte_limit_is_413(analyst: XAPIClient) -> None:
    response = run(analyst, "SELECT repeat('x', 1000) AS filler FROM range(40)")
    assert response.status_code == 413
    assert "LRS_SQL_MAX_BYTES" in response.json()["error"]["message"]


def test_sql_answer_too_large_is_refused_before_it_becomes_python_objects(
        analyst: XAPIClient) -> None:
    """A thousand 15 MB strings once took 20 GB and the machine down; measured first now."""
    response = run(analyst, "SELECT repeat('x', 15000000) AS s FROM range(1000)")
    assert response.status_code == 413, response.text
    assert "LRS_SQL_MAX_BYTES" in response.json()["error"]["message"]
    assert run(analyst, "SELECT 1 AS one").json()["rows"] == [[1]]


def test_sql_text_over_the_limit_is_413(analyst: XAPIClient) -> None:
    response = run(analyst, "SELECT 1 WHERE 1 IN (" + ",".join(["1"] * 40_000) + ")")
    assert response.status_code == 413
    assert "at most" in response.json()["error"]["message"]


def test_sql_cannot_read_the_servers_settings_or_paths(analyst: XAPIClient) -> None:
    refused(analyst, "SELECT current_setting('temp_directory')", "current_setting")
    refused(analyst, "SELECT * FROM pg_catalog.pg_settings", "pg_settings")
    refused(analyst, "SELECT * FROM pragma_database_list", "pragma_database_list")


# --- what analysts do --------------------------------------------------------------------------

def test_sql_ordinary_selects_over_the_views_work(analyst: XAPIClient) -> None:
    body = run(analyst, "SELECT p.learner, p.statements, m.level FROM learner_profile p"
                        " JOIN mastery m USING (learner) ORDER BY p.learner").json()
    assert body["columns"] == ["learner", "statements", "level"]
    assert [row[:2] for row in body["rows"]] == [["mbox:mailto:ada@example.org", 2],
                                                 ["mbox:mailto:bo@example.org", 1]]
    assert run(analyst, "WITH days AS (SELECT learner, count(*) AS n FROM engagement_daily"
                        " GROUP BY learner) SELECT max(n) FROM days").json()["rows"] == [[2]]
    as_of = run(analyst, "SELECT count(*) FROM mastery_as_of(TIMESTAMP '2026-11-30')").json()
    assert as_of["rows"] == [[2]]
    described = run(analyst, "DESCRIBE mastery").json()
    assert ["learner", "VARCHAR"] in [row[:2] for row in described["rows"]]


def test_sql_answers_blob_decimal_and_other_non_json_types(analyst: XAPIClient) -> None:
    response = run(analyst, """SELECT 'ab'::BLOB AS blob, 1.25 AS dec,
        123456789012345678.125::DECIMAL(38, 3) AS wide_dec, INTERVAL '1 day 2 hours' AS span,
        '9f3a7c9e-8c39-4b9e-9d8a-0c9e2e3b1f00'::UUID AS id,
        170141183460469231731687303715884105727::HUGEINT AS huge, 7::HUGEINT AS small_huge,
        DATE '2026-11-01' AS day, TIMESTAMP '2026-11-01 10:00:00' AS ts, TIME '10:30:00' AS t,
        [1.5, 2.5] AS list, {'a': 'ab'::BLOB} AS struct, MAP {1: 'one'} AS map""")
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[
        base64.b64encode(b"ab").decode(), 1.25, "123456789012345678.125", "P1DT2H",
        "9f3a7c9e-8c39-4b9e-9d8a-0c9e2e3b1f00", "170141183460469231731687303715884105727", 7,
        "2026-11-01", "2026-11-01T10:00:00", "10:30:00", [1.5, 2.5],
        {"a": base64.b64encode(b"ab").decode()}, {"1": "one"}]]


def test_sql_ordinary_forms_still_work_with_the_answer_measured_first(analyst: XAPIClient) -> None:
    for sql in ("SELECT count(*) AS n FROM mastery;", "SELECT count(*) AS n FROM mastery; -- done",
                "FROM mastery SELECT count(*) AS n", "DESCRIBE mastery", "SHOW TABLES",
                "WITH m AS (SELECT * FROM mastery) SELECT count(*) AS n FROM m"):
        response = run(analyst, sql)
        assert response.status_code == 200, (sql, response.text)
        assert response.json()["rows"], sql
