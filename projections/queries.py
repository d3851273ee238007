"""Queries over the read models, for the HTTP API and `lrs sql`: plain SQL, one function each."""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from lrs.errors import BadRequest, NotFound

MAX_SQL_ROWS = 10_000


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


def read_only_sql(con: Any, sql: str) -> dict[str, Any]:
    """Run one SELECT (analysts' ad-hoc queries); anything that writes is refused."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise BadRequest(f"sql: {exc}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise BadRequest("sql: send exactly one SELECT statement; the views are read-only")
    try:
        cursor = con.execute(sql)
    except duckdb.Error as exc:
        raise BadRequest(f"sql: {exc}") from None
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchmany(MAX_SQL_ROWS + 1)
    return {"columns": columns, "rows": [list(r) for r in rows[:MAX_SQL_ROWS]],
            "truncated": len(rows) > MAX_SQL_ROWS}
