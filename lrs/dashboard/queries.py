"""View queries for people: lists to find classes and learners, and the data of each page.

Every function here runs in the views process (lrs/views_process.py) with a DuckDB cursor as its
first argument, and is sent there by reference, so it is a plain module-level function. The
ones that take a ``ViewScope`` keep a teacher to their classes and a learner to themself inside
the same query call: nothing outside the scope leaves the views process.

"As of" a day D means the end of D: mastery after the last evidence at or before it, engagement
over the days up to D, weeks counted back from D (week 0 is the seven days ending on D).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from statistics import median
from typing import Any

import orjson

from lrs.auth import ViewScope
from lrs.errors import NotFound

WEEKS_SHOWN = 8  # engagement trend and learner's days: this many weeks back from D
EVIDENCE_SHOWN = 12  # newest pieces of evidence listed per competency on a learner's page
MIN_CLASS_FOR_AVERAGE = 5  # below this a class average would show the other learners
SEARCH_LIMIT = 50
INACTIVE_DAYS = 7  # the at-risk rules of the engagement views (projections/schema.py)


def _records(cursor: Any) -> list[dict[str, Any]]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


# --- who may see what -------------------------------------------------------------------------


def learner_classes(con: Any, learner: str) -> set[str]:
    return {row[0] for row in con.execute(
        "SELECT class_id FROM learner_class WHERE learner = ? AND class_id IS NOT NULL",
        [learner]).fetchall()}


def for_learner(con: Any, scope: ViewScope, fn: Callable[..., Any], learner: str,
                *args: Any) -> Any:
    """``fn(con, learner, *args)`` if the scope may see the learner; 403 otherwise, the same
    whether or not the learner exists."""
    if not scope.every and not scope.may_see(learner, learner_classes(con, learner)):
        raise scope.refuse_learner(learner)
    return fn(con, learner, *args)


# --- lists ------------------------------------------------------------------------------------


def classes(con: Any, scope: ViewScope) -> list[dict[str, Any]]:
    """The classes the scope may see, with their size, active learners and learners at risk.
    A teacher's classes are listed even before any of their learners is in the views."""
    rows = _records(con.execute(
        "SELECT class_id, learners, active_this_week, at_risk FROM class_engagement"
        " WHERE class_id IS NOT NULL ORDER BY class_id"))
    if scope.every:
        return rows
    found = {row["class_id"]: row for row in rows}
    return [found.get(c, {"class_id": c, "learners": 0, "active_this_week": 0, "at_risk": 0})
            for c in sorted(scope.classes)]


def class_learners(con: Any, class_id: str) -> list[dict[str, Any]]:
    rows = _records(con.execute(
        "SELECT c.learner, p.names[1] AS name, e.last_active, COALESCE(e.at_risk, false) AS at_risk"
        " FROM learner_class c LEFT JOIN learner_profile p ON p.learner = c.learner"
        " LEFT JOIN engagement_with_risk e ON e.learner = c.learner"
        " WHERE c.class_id = ? ORDER BY name, c.learner", [class_id]))
    return rows


def search_learners(con: Any, scope: ViewScope, text: str) -> list[dict[str, Any]]:
    """Learners whose name or identifier holds ``text`` (any case), within the scope."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    where = ["(p.learner ILIKE ? ESCAPE '\\' OR array_to_string(p.names, ' ') ILIKE ? ESCAPE '\\')"]
    params: list[Any] = [pattern, pattern]
    if not scope.every and scope.learner is not None:
        where.append("p.learner = ?")
        params.append(scope.learner)
    elif not scope.every:
        where.append("list_contains(?, c.class_id)")
        params.append(sorted(scope.classes))
    return _records(con.execute(
        "SELECT p.learner, p.names[1] AS name, c.class_id FROM learner_profile p"
        " LEFT JOIN learner_class c ON c.learner = p.learner"
        f" WHERE {' AND '.join(where)} ORDER BY name, p.learner LIMIT {SEARCH_LIMIT}", params))


# --- the day a page shows ---------------------------------------------------------------------


def _today(con: Any) -> date:
    """The views' "now" (the newest stored time in the log), as a day."""
    day: date = con.execute("SELECT day FROM as_of").fetchone()[0]
    return day


def _moment(day: date) -> datetime:
    """The end of a day: what "as of D" includes."""
    return datetime.combine(day + timedelta(days=1), time()) - timedelta(microseconds=1)


def _day(con: Any, as_of: str | None) -> tuple[date, date]:
    """The day asked for (no later than the views' today) and the views' today."""
    today = _today(con)
    return (min(date.fromisoformat(as_of), today) if as_of else today), today


# --- the class overview -----------------------------------------------------------------------


def class_overview(con: Any, class_id: str, as_of: str | None = None) -> dict[str, Any]:
    """Learners x competencies, engagement by week, risk in words and pace, as of a day."""
    day, today = _day(con, as_of)
    moment = _moment(day)
    learners = _records(con.execute(
        "SELECT c.learner, p.names[1] AS name, p.first_seen FROM learner_class c"
        " JOIN learner_profile p ON p.learner = c.learner"
        " WHERE c.class_id = ? AND p.first_seen <= ? ORDER BY c.learner", [class_id, moment]))
    if not learners and not con.execute("SELECT 1 FROM learner_class WHERE class_id = ? LIMIT 1",
                                        [class_id]).fetchone():
        raise NotFound(f"no class '{class_id}' in the views (yet)")
    if day >= today:
        cells = con.execute(
            "SELECT m.learner, m.competency, m.probability, m.level FROM mastery m"
            " JOIN learner_class c ON c.learner = m.learner WHERE c.class_id = ?",
            [class_id]).fetchall()
    else:
        cells = con.execute(
            "SELECT e.learner, e.competency, arg_max(e.probability, e.n), arg_max(e.level, e.n)"
            " FROM mastery_evidence e JOIN learner_class c ON c.learner = e.learner"
            " WHERE c.class_id = ? AND e.ts <= ? GROUP BY e.learner, e.competency",
            [class_id, moment]).fetchall()
    weekly = _weekly_minutes(con, "c.class_id = ?", [class_id], day)
    last = dict(con.execute(
        "SELECT d.learner, max(d.day) FROM engagement_daily d JOIN learner_class c"
        " ON c.learner = d.learner WHERE c.class_id = ? AND d.day <= ? GROUP BY d.learner",
        [class_id, day]).fetchall())
    competencies = sorted({c[1] for c in cells})
    mastery: dict[str, dict[str, list[Any]]] = {}
    for learner, competency, probability, level in cells:
        mastery.setdefault(learner, {})[competency] = [round(probability, 3), level]
    rows = []
    for learner in learners:
        key = learner["learner"]
        minutes = weekly.get(key, [0.0] * WEEKS_SHOWN)
        mastered = sum(1 for _, level in mastery.get(key, {}).values() if level == "mastered")
        weeks = max((moment - learner["first_seen"]).days, 1) / 7
        rows.append({
            "learner": key, "name": learner["name"] or key, "mastery": mastery.get(key, {}),
            "mastered": mastered, "per_week": round(mastered / weeks, 3),
            "last_active": last.get(key), "minutes_this_week": round(minutes[-1], 1),
            "weekly_minutes": [round(m, 1) for m in minutes],
            "risk_reasons": risk_reasons(day, last.get(key), minutes[-4:]),
        })
    class_median = round(median([r["per_week"] for r in rows]), 3) if rows else 0.0
    for row in rows:
        row["pace_vs_median"] = round(row["per_week"] - class_median, 3)
    trend = [round(sum(r["weekly_minutes"][w] for r in rows), 1) for w in range(WEEKS_SHOWN)]
    active = sum(1 for r in rows if r["last_active"] and (day - r["last_active"]).days < INACTIVE_DAYS)
    return {"class_id": class_id, "as_of": day.isoformat(), "today": today.isoformat(),
            "competencies": competencies, "learners": rows, "median_per_week": class_median,
            "active_this_week": active, "weekly_minutes": trend,
            "week_ends": [(day - timedelta(days=7 * w)).isoformat()
                          for w in range(WEEKS_SHOWN - 1, -1, -1)]}


def _weekly_minutes(con: Any, where: str, params: list[Any], day: date) -> dict[str, list[float]]:
    """Active minutes per learner per week, oldest first, the last ending on ``day``."""
    rows = con.execute(
        f"SELECT d.learner, CAST((? - d.day) // 7 AS INTEGER) AS week, sum(d.active_minutes)"
        f" FROM engagement_daily d JOIN learner_class c ON c.learner = d.learner"
        f" WHERE {where} AND d.day <= ? AND d.day > ? GROUP BY ALL",
        [day, *params, day, day - timedelta(days=7 * WEEKS_SHOWN)]).fetchall()
    weekly: dict[str, list[float]] = {}
    for learner, week, minutes in rows:
        weekly.setdefault(learner, [0.0] * WEEKS_SHOWN)[WEEKS_SHOWN - 1 - week] = float(minutes)
    return weekly


def risk_reasons(day: date, last_active: date | None, last_four_weeks: list[float]) -> list[str]:
    """The engagement views' at-risk rules (projections/schema.py), in words a teacher reads."""
    reasons = []
    if last_active is not None and (day - last_active).days >= INACTIVE_DAYS:
        reasons.append(f"no activity for {(day - last_active).days} days")
    prior = last_four_weeks[:-1]
    before = sum(prior) / len(prior) if prior else 0.0
    if before > 0 and last_four_weeks[-1] < before / 2:
        reasons.append(f"{last_four_weeks[-1]:.0f} minutes this week, under half of the three"
                       f" weeks before ({before:.0f} a week)")
    return reasons


# --- a learner's page -------------------------------------------------------------------------


def learner_page(con: Any, learner: str, as_of: str | None = None) -> dict[str, Any]:
    """Goals, interests, reflections, mastery with its timeline and evidence, engagement by day
    and streaks, and where the learner stands against the class average, as of a day."""
    day, today = _day(con, as_of)
    moment = _moment(day)
    profiles = _records(con.execute(
        "SELECT p.names, p.first_seen, p.goals, p.interests, p.reflections, c.class_id"
        " FROM learner_profile p LEFT JOIN learner_class c ON c.learner = p.learner"
        " WHERE p.learner = ?", [learner]))
    if not profiles:
        raise NotFound(f"no learner '{learner}' in the views (yet)")
    profile = profiles[0]
    cutoff = moment.isoformat()
    goals = [g for g in orjson.loads(profile["goals"]) if g["set_at"] <= cutoff]
    reflections = sorted((r for r in orjson.loads(profile["reflections"]) if r["at"] <= cutoff),
                         key=lambda r: r["at"])
    estimates = _records(con.execute(
        "SELECT competency, arg_max(probability, n) AS probability, arg_max(level, n) AS level,"
        " max(n) AS evidence_count, max(ts) AS last_evidence FROM mastery_evidence"
        " WHERE learner = ? AND ts <= ? GROUP BY competency ORDER BY competency",
        [learner, moment]))
    transitions = con.execute(
        "SELECT competency, level, reached_at, probability FROM mastery_transitions"
        " WHERE learner = ? AND reached_at <= ? ORDER BY reached_at", [learner, moment]).fetchall()
    evidence = _records(con.execute(
        "SELECT e.competency, e.n, e.ts, e.correct, e.item_kind, e.probability, e.level,"
        " e.statement_id, f.object_id, f.verb FROM ("
        "   SELECT *, row_number() OVER (PARTITION BY competency ORDER BY n DESC) AS newest"
        "   FROM mastery_evidence WHERE learner = ? AND ts <= ?) e"
        " LEFT JOIN (SELECT statement_id, object_id, verb FROM statement_facts WHERE learner = ?) f"
        " ON f.statement_id = e.statement_id"
        f" WHERE e.newest <= {EVIDENCE_SHOWN} ORDER BY e.competency, e.n DESC",
        [learner, moment, learner]))
    for estimate in estimates:
        competency = estimate["competency"]
        estimate["timeline"] = [{"level": level, "reached_at": at, "probability": p}
                                for c, level, at, p in transitions if c == competency]
        estimate["evidence"] = [e for e in evidence if e["competency"] == competency]
    days = con.execute(
        "SELECT day, active_minutes, statements FROM engagement_daily"
        " WHERE learner = ? AND day <= ? ORDER BY day", [learner, day]).fetchall()
    current, longest = streaks([d[0] for d in days], day)
    shown_from = day - timedelta(days=7 * WEEKS_SHOWN - 1)
    by_day = {d[0]: (float(d[1]), int(d[2])) for d in days if d[0] >= shown_from}
    calendar = [{"day": (shown_from + timedelta(days=i)).isoformat(),
                 "minutes": round(by_day.get(shown_from + timedelta(days=i), (0.0, 0))[0], 1)}
                for i in range(7 * WEEKS_SHOWN)]
    mastered = sum(1 for e in estimates if e["level"] == "mastered")
    minutes_week = sum(m for d, (m, _) in by_day.items() if (day - d).days < 7)
    return {
        "learner": learner, "name": (profile["names"] or [learner])[0], "names": profile["names"],
        "class_id": profile["class_id"], "as_of": day.isoformat(), "today": today.isoformat(),
        "goals": goals, "reflections": reflections,
        "interests": sorted(orjson.loads(profile["interests"]).items(), key=lambda kv: -kv[1]),
        "competencies": estimates, "days": calendar, "current_streak": current,
        "longest_streak": longest, "active_days": len(days), "mastered": mastered,
        "minutes_this_week": round(minutes_week, 1),
        "standing": _standing(con, profile["class_id"], day, moment, mastered, minutes_week),
    }


def streaks(days: list[date], day: date) -> tuple[int, int]:
    """The current streak (days in a row ending on ``day`` or the day before, as the views
    count it) and the longest, from the sorted days with activity up to ``day``."""
    longest = run = 0
    previous: date | None = None
    for d in days:
        run = run + 1 if previous is not None and (d - previous).days == 1 else 1
        longest = max(longest, run)
        previous = d
    current = run if previous is not None and (day - previous).days <= 1 else 0
    return current, longest


def _standing(con: Any, class_id: str | None, day: date, moment: datetime, mastered: int,
              minutes_week: float) -> dict[str, Any] | None:
    """The learner against the class average: averages only, and none for a class so small
    that its average would tell the learner about the others."""
    if class_id is None:
        return None
    row = con.execute(
        "WITH members AS (SELECT c.learner FROM learner_class c JOIN learner_profile p"
        "   ON p.learner = c.learner WHERE c.class_id = ? AND p.first_seen <= ?),"
        " est AS (SELECT e.learner, e.competency, arg_max(e.level, e.n) AS level"
        "   FROM mastery_evidence e JOIN members m ON m.learner = e.learner WHERE e.ts <= ?"
        "   GROUP BY e.learner, e.competency),"
        " mastered AS (SELECT m.learner, count(*) FILTER (WHERE est.level = 'mastered') AS n"
        "   FROM members m LEFT JOIN est ON est.learner = m.learner GROUP BY m.learner),"
        " minutes AS (SELECT m.learner, COALESCE(sum(d.active_minutes), 0) AS n FROM members m"
        "   LEFT JOIN engagement_daily d ON d.learner = m.learner AND d.day <= ? AND d.day > ?"
        "   GROUP BY m.learner)"
        " SELECT (SELECT count(*) FROM members), (SELECT avg(n) FROM mastered),"
        " (SELECT avg(n) FROM minutes)",
        [class_id, moment, moment, day, day - timedelta(days=7)]).fetchone()
    size, avg_mastered, avg_minutes = row
    if size < MIN_CLASS_FOR_AVERAGE:
        return {"class_size": size, "shown": False}
    return {"class_size": size, "shown": True,
            "mastered": mastered, "class_mastered": round(float(avg_mastered or 0), 1),
            "minutes_this_week": round(minutes_week, 1),
            "class_minutes_this_week": round(float(avg_minutes or 0), 1)}


# --- the admin page ---------------------------------------------------------------------------


def ingest_rate(con: Any, now: datetime, minutes: int = 15) -> list[dict[str, Any]]:
    """Statements stored per minute over the last minutes, as far as the views have them."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    counts = dict(con.execute(
        "SELECT date_trunc('minute', stored), count(*) FROM statement_facts"
        " WHERE stored >= ? GROUP BY ALL", [start]).fetchall())
    return [{"minute": (start + timedelta(minutes=i)).isoformat(),
             "label": f"{start + timedelta(minutes=i):%H:%M} UTC",
             "statements": int(counts.get(start + timedelta(minutes=i), 0))}
            for i in range(minutes)]


def short_name(iri: str) -> str:
    """A competency's label: the last segment of its IRI."""
    tail = iri.rstrip("/").rsplit("/", 1)[-1]
    return tail.rsplit("#", 1)[-1] or iri

