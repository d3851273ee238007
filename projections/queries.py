"""Queries over the read models, for the HTTP API and `lrs sql`: plain SQL, one function each.

Analysts' SQL (``read_only_sql``) runs on a DuckDB instance opened with ``sandbox_config`` and
then locked (``lock_sandbox``): it can read the views and nothing else. The engine refuses files,
extensions and settings; ``read_only_sql`` refuses, before running anything, what the engine
would let through: more than one statement, anything but SELECT, and functions that write,
run SQL from a string, or read outside the views.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import duckdb
import orjson

from lrs.errors import BadRequest, NotFound, PayloadTooLarge

if TYPE_CHECKING:
    from lrs.config import Settings


def _records(cursor: Any) -> list[dict[str, Any]]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def learner_profile(con: Any, learner: str) -> dict[str, Any]:
    rows = _records(con.execute("SELECT * FROM learner_profile WHERE learner = ?", [learner]))
    if not rows:
        raise NotFound(f"no learner '{learner}' in the projections (yet)")
    profile = rows[0]
    for column in ("activities_by_type", "goals", "interests", "reflections"):
        profile[column] = orjson.loads(profile[column])
    pace = _records(con.execute(
        "SELECT competencies_mastered, mastered_per_week, cohort_median_per_week"
        " FROM learner_pace WHERE learner = ?", [learner]))
    profile["pace"] = pace[0] if pace else None
    return profile


def learner_mastery(con: Any, learner: str, as_of: str | None = None) -> list[dict[str, Any]]:
    if as_of is None:
        return _records(con.execute(
            "SELECT competency, probability, level, evidence_count, last_evidence, mastered_at,"
            " statement_ids, prior, learn, guess, slip FROM mastery WHERE learner = ?"
            " ORDER BY competency", [learner]))
    return _records(con.execute(
        "SELECT competency, probability, level, since FROM mastery_as_of(CAST(? AS TIMESTAMP))"
        " WHERE learner = ? ORDER BY competency", [as_of, learner]))


def learner_engagement(con: Any, learner: str) -> dict[str, Any]:
    summary = _records(con.execute("SELECT * FROM engagement_with_risk WHERE learner = ?", [learner]))
    if not summary:
        raise NotFound(f"no learner '{learner}' in the projections (yet)")
    days = _records(con.execute(
        "SELECT day, active_minutes, statements, sessions FROM engagement_daily"
        " WHERE learner = ? AND day > (SELECT day FROM as_of) - 28 ORDER BY day", [learner]))
    return {**summary[0], "days": days}


def class_engagement(con: Any, class_id: str) -> dict[str, Any]:
    rollup = _records(con.execute("SELECT * FROM class_engagement WHERE class_id = ?", [class_id]))
    if not rollup:
        raise NotFound(f"no class '{class_id}' in the projections (yet)")
    learners = _records(con.execute(
        "SELECT learner, active_days, current_streak, weekly_minutes, at_risk, risk_reasons"
        " FROM engagement_with_risk WHERE class_id = ? ORDER BY learner", [class_id]))
    return {**rollup[0], "learners": learners}


def class_mastery(con: Any, class_id: str) -> list[dict[str, Any]]:
    return _records(con.execute(
        "SELECT m.competency, count(*) AS learners,"
        " count(*) FILTER (WHERE level = 'mastered') AS mastered,"
        " count(*) FILTER (WHERE level = 'approaching') AS approaching,"
        " count(*) FILTER (WHERE level = 'developing') AS developing,"
        " round(avg(probability), 3) AS mean_probability"
        " FROM mastery m JOIN learner_class c ON c.learner = m.learner"
        " WHERE c.class_id = ? GROUP BY m.competency ORDER BY m.competency", [class_id]))


# --- analysts' SQL -----------------------------------------------------------------------------

# Table functions an analyst may call; every other built-in one reads files, runs SQL from a
# string (query, json_execute_serialized_sql), scans memory by address (arrow_scan), writes
# (checkpoint, logging, profiling) or shows the server's paths and settings.
SAFE_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree",
    "histogram", "histogram_values", "summary", "test_all_types", "pragma_table_info",
    "pragma_show", "duckdb_tables", "duckdb_columns", "duckdb_views", "duckdb_schemas",
    "duckdb_types", "duckdb_functions", "duckdb_keywords", "duckdb_constraints",
    "duckdb_indexes"})
# Scalar functions that write (a sequence, the log) or reach outside the views.
REFUSED_FUNCTIONS = frozenset({"nextval", "setval", "write_log", "getenv",
                               "json_execute_serialized_sql", "current_setting"})
# Catalogue views that show the server's settings, paths or memory rather than the views.
REFUSED_TABLES = frozenset({"pg_settings", "duckdb_settings", "duckdb_databases", "duckdb_memory",
                            "duckdb_temporary_files", "duckdb_secrets", "duckdb_extensions",
                            "duckdb_variables", "pragma_database_list", "pragma_database_size",
                            "pragma_storage_info", "pragma_metadata_info", "pragma_version",
                            "pragma_platform", "pragma_user_agent"})
FETCH_ROWS = 50  # rows made Python objects at a time, after their size was measured in DuckDB
MAX_SQL_CHARS = 64 * 1024  # the parse tree that is checked grows with the text
MAX_EXACT_DIGITS = 15  # a double holds any decimal of up to 15 significant digits exactly


@dataclass(frozen=True)
class SQLLimits:
    """What one analyst query may take: time, rows answered, bytes answered."""

    timeout_seconds: float
    max_rows: int
    max_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> SQLLimits:
        return cls(settings.sql_timeout_seconds, settings.sql_max_rows, settings.sql_max_bytes)


def threads_config(threads: int) -> dict[str, Any]:
    """DuckDB's option for ``threads`` (LRS_VIEWS_THREADS): 0 leaves DuckDB its default, one per
    core or the CPU quota."""
    return {"threads": threads} if threads else {}


def sandbox_config(memory_limit: str, threads: int = 0) -> dict[str, Any]:
    """DuckDB options for an instance that analysts query: no files beyond its own, no
    extensions beyond the built-in ones, no Python objects by name, bounded memory; its
    ``threads`` (threads_config)."""
    return {
        "enable_external_access": False, "autoinstall_known_extensions": False,
        "autoload_known_extensions": False, "allow_community_extensions": False,
        "python_enable_replacements": False, "memory_limit": memory_limit,
        # Spilling stays allowed (the runner needs it past the memory limit), but a runaway
        # query must not fill the disk before its time limit stops it.
        "max_temp_directory_size": "10GB", **threads_config(threads)}


def lock_sandbox(con: Any) -> None:
    """Freeze the instance's options: nothing run after this (by anyone) can SET them."""
    con.execute("SET lock_configuration = true")


@contextmanager
def time_limit(cursor: Any, seconds: float) -> Iterator[None]:
    """Interrupt the cursor's query after ``seconds``: DuckDB has no statement timeout."""
    timer = threading.Timer(seconds, cursor.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def read_only_sql(con: Any, sql: str, limits: SQLLimits) -> dict[str, Any]:
    """Run one SELECT (analysts' ad-hoc queries) within ``limits``; anything else is refused."""
    if len(sql) > MAX_SQL_CHARS:
        raise PayloadTooLarge(f"sql: a query may be at most {MAX_SQL_CHARS} characters"
                              f" (this one has {len(sql)})")
    statement = _one_select(con, sql)
    _check_functions(con, sql)
    try:
        with time_limit(con, limits.timeout_seconds):
            _check_answer_size(con, statement.query, limits)
            cursor = con.execute(statement)
            columns = [d[0] for d in cursor.description]
            rows, truncated = _json_rows(cursor, limits)
    except duckdb.InterruptException:
        raise BadRequest(f"sql: the query ran longer than {limits.timeout_seconds:g} s"
                         " (LRS_SQL_TIMEOUT_SECONDS)") from None
    except duckdb.OutOfMemoryException:
        raise BadRequest("sql: the query needs more memory than the views may use"
                         " (LRS_VIEWS_MEMORY_LIMIT)") from None
    except duckdb.PermissionException as exc:
        raise BadRequest(f"sql: the views are all a query may read ({exc})") from None
    except duckdb.Error as exc:
        raise BadRequest(f"sql: {exc}") from None
    return {"columns": columns, "rows": rows, "truncated": truncated}


def _one_select(con: Any, sql: str) -> Any:
    try:
        statements = con.extract_statements(sql)
    except (duckdb.Error, ValueError) as exc:  # ValueError: a statement type the client lacks
        raise BadRequest(f"sql: {exc}") from None
    if len(statements) != 1:
        raise BadRequest(f"sql: send one statement, not {len(statements)}"
                         " (one SELECT; the views are read-only)")
    statement = statements[0]
    try:
        select = statement.type == duckdb.StatementType.SELECT
    except ValueError:  # a statement type newer than the client's enum, never a SELECT
        select = False
    if not select:
        words = statement.query.split()
        kind = words[0].upper() if words and words[0].isalpha() else "this statement"
        raise BadRequest(f"sql: only SELECT is allowed, not {kind} (the views are read-only)")
    return statement


def _check_functions(con: Any, sql: str) -> None:
    scalars: set[str] = set()
    tables: set[str] = set()
    names: set[str] = set()
    try:
        tree = orjson.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
        if tree.get("error"):
            raise BadRequest(f"sql: the query could not be checked: {tree.get('error_message')}")
        _collect(tree, scalars, tables, names)
    except (orjson.JSONDecodeError, RecursionError):
        raise BadRequest("sql: the query is nested too deeply to be checked") from None
    # A quoted name with a path or an extension is a file DuckDB would scan by its name.
    files = sorted(name for name in names if any(c in name for c in "/\\.:"))
    if files:
        raise BadRequest(f"sql: '{files[0]}' names a file; analysts' SQL reads the views only")
    hidden = sorted(name for name in names if name.lower() in REFUSED_TABLES)
    if hidden:
        raise BadRequest(f"sql: {hidden[0]} shows the server's settings or files, not the views")
    refused = sorted(scalars & REFUSED_FUNCTIONS | (tables - SAFE_TABLE_FUNCTIONS - _macros(con))
                     | {f for f in scalars | tables if f.startswith("__internal")})
    if refused:
        raise BadRequest(f"sql: {refused[0]}() is not allowed: analysts' SQL reads the views and"
                         " nothing else, and writes nothing")


def _collect(node: Any, scalars: set[str], tables: set[str], names: set[str]) -> None:
    """Every function the parse tree calls (scalar, aggregate, window or table), and every
    table it names."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            tables.add(str(node["function"]["function_name"]).lower())
        elif kind == "BASE_TABLE":
            names.add(str(node.get("table_name", "")))
        elif "function_name" in node:
            scalars.add(str(node["function_name"]).lower())
        for value in node.values():
            _collect(value, scalars, tables, names)
    elif isinstance(node, list):
        for value in node:
            _collect(value, scalars, tables, names)


def _macros(con: Any) -> set[str]:
    """The views' own table macros (mastery_as_of): defined by us, not by the analyst."""
    return {row[0] for row in con.execute(
        "SELECT function_name FROM duckdb_functions() WHERE function_type = 'table_macro'"
        " AND database_name <> 'system'").fetchall()}


def _check_answer_size(con: Any, query: str, limits: SQLLimits) -> None:
    """Measure the answer in DuckDB, under its memory limit, before any row becomes a Python
    object: a thousand 15 MB strings fetched at once took 20 GB and the whole machine down."""
    def measure(text: str) -> int:
        return int(con.execute(
            "SELECT coalesce(sum(strlen(CAST(to_json(answer) AS VARCHAR))), 0)"
            f" FROM (SELECT * FROM ({text}\n) LIMIT {limits.max_rows}) AS answer").fetchone()[0])

    try:  # the statement's own text may keep its semicolon, and a comment after it
        measured = measure(query.strip().rstrip(";"))
    except duckdb.ParserException:  # then as DuckDB writes the parsed query back
        measured = measure(con.execute("SELECT json_deserialize_sql(json_serialize_sql(?))",
                                       [query]).fetchone()[0])
    if measured > limits.max_bytes:
        raise PayloadTooLarge(
            f"sql: the answer is larger than {limits.max_bytes} bytes (LRS_SQL_MAX_BYTES);"
            " select fewer rows or columns, or aggregate")


def _json_rows(cursor: Any, limits: SQLLimits) -> tuple[list[list[Any]], bool]:
    """Rows as JSON values, up to ``max_rows`` (then truncated) and ``max_bytes`` (then 413)."""
    rows: list[list[Any]] = []
    size = 0
    while chunk := cursor.fetchmany(FETCH_ROWS):
        for row in chunk:
            if len(rows) == limits.max_rows:
                return rows, True
            values = [json_value(v) for v in row]
            size += len(orjson.dumps(values)) + 1
            if size > limits.max_bytes:
                raise PayloadTooLarge(
                    f"sql: the answer is larger than {limits.max_bytes} bytes (LRS_SQL_MAX_BYTES);"
                    " select fewer rows or columns, or aggregate")
            rows.append(values)
    return rows, False


def json_value(value: Any) -> Any:
    """A DuckDB value as JSON: BLOB as base64, DECIMAL as a number (a string beyond 15 digits),
    integers beyond 64 bits and UUIDs as strings, INTERVAL as an ISO 8601 duration."""
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, Decimal):
        exact = len(value.as_tuple().digits) <= MAX_EXACT_DIGITS and value.is_finite()
        return float(value) if exact else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):  # a STRUCT, or a MAP, whose keys may be of any type
        return {k if isinstance(k, str) else str(json_value(k)): json_value(v)
                for k, v in value.items()}
    if hasattr(value, "isoformat"):  # date, time, datetime
        return value.isoformat()
    return str(value)


def iso_duration(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    second = f"{seconds + value.microseconds / 1e6:g}S" if seconds or value.microseconds else ""
    time = f"{hours}H" * bool(hours) + f"{minutes}M" * bool(minutes) + second
    days = f"{value.days}D" if value.days else ""
    return f"{sign}P{days}{'T' + time if time else ''}" if days or time else "PT0S"
