"""DuckDB tables and views of the read models: the names analysts query (README: Projections)."""

from __future__ import annotations

# Bumped whenever a table changes shape or a rule changes its rows (6: mastered from 0.98; 7:
# each learner's own learning speed; 8: a later roster or alignment load in the same page
# replaces an earlier one); a views file of another version is rebuilt from the log.
SCHEMA_VERSION = 8

# Derived tables have no primary keys: each page deletes and re-inserts a learner's rows, which
# DuckDB's index checks do not allow within one transaction.
TABLES = {
    "statement_facts": """
        seq BIGINT, statement_id VARCHAR, learner VARCHAR, learner_name VARCHAR, ts TIMESTAMP,
        verb VARCHAR, object_id VARCHAR, object_type VARCHAR, success BOOLEAN, scaled DOUBLE,
        duration_s DOUBLE, response VARCHAR, registration VARCHAR, class_id VARCHAR,
        competencies VARCHAR[], voids VARCHAR, peer VARCHAR, goal_target VARCHAR,
        stored TIMESTAMP, timestamp_in_future BOOLEAN, interaction_type VARCHAR, voided BOOLEAN""",
    "alignments": "activity_id VARCHAR, competency_id VARCHAR, framework VARCHAR, seq BIGINT",
    # items: [[item kind, guess, slip], ...]; source: the framework loaded, or "fit: ..." for a fit.
    "competency_parameters": """
        competency_id VARCHAR, prior DOUBLE, learn DOUBLE, guess DOUBLE, slip DOUBLE, items JSON,
        source VARCHAR, seq BIGINT""",
    "learner_profile": """
        learner VARCHAR, names VARCHAR[], first_seen TIMESTAMP, last_seen TIMESTAMP,
        statements INTEGER, activities_by_type JSON, goals JSON, interests JSON,
        reflections JSON, comments INTEGER, shares INTEGER, helped INTEGER,
        peers_helped VARCHAR[]""",
    "mastery": """
        learner VARCHAR, competency VARCHAR, probability DOUBLE, level VARCHAR,
        evidence_count INTEGER, last_evidence TIMESTAMP, statement_ids VARCHAR[], prior DOUBLE,
        learn DOUBLE, guess DOUBLE, slip DOUBLE, mastered_at TIMESTAMP, first_mastered_at TIMESTAMP""",
    # The estimate after each piece of evidence: what mastery_as_of reads.
    "mastery_evidence": """
        learner VARCHAR, competency VARCHAR, n INTEGER, ts TIMESTAMP, statement_id VARCHAR,
        correct BOOLEAN, item_kind VARCHAR, probability DOUBLE, level VARCHAR""",
    "mastery_transitions": """
        learner VARCHAR, competency VARCHAR, level VARCHAR, reached_at TIMESTAMP, probability DOUBLE,
        statement_id VARCHAR""",
    "engagement_daily": """
        learner VARCHAR, day DATE, active_minutes DOUBLE, statements INTEGER, sessions INTEGER""",
    "learner_class": "learner VARCHAR, class_id VARCHAR",
    "roster": "learner VARCHAR, class_id VARCHAR, org VARCHAR, seq BIGINT",
    # The log position of the newest event that changed each learner's rows: what an
    # incremental export asks ("who changed since position P?").
    "learner_versions": "learner VARCHAR, position BIGINT",
    "projection_state": "name VARCHAR, position BIGINT",
    # Learners whose facts changed since their derived rows were last computed; refold: the change
    # lands before facts already folded (a voiding, a late timestamp, new alignments or roster).
    "dirty_learners": "learner VARCHAR, refold BOOLEAN",
    # Learners whose rows could not be computed (and are left out), with the error.
    "projection_failures": "learner VARCHAR, error VARCHAR",
    # Each learner's fold, saved with its rows, to resume when later facts arrive.
    "learner_state": "learner VARCHAR, last_seq BIGINT, last_ts TIMESTAMP, state VARCHAR",
}

# Ordered: the order in which a rebuild compares and an export writes them.
DERIVED = ("learner_profile", "mastery", "mastery_transitions", "mastery_evidence", "engagement_daily",
           "learner_class")

VIEWS = {
    # "Now" is when the LRS last stored a statement (never a client's timestamp), so every
    # view is a function of the log alone.
    "as_of": """
        SELECT COALESCE(max(stored), max(ts), TIMESTAMP '1970-01-01') AS ts,
               CAST(COALESCE(max(stored), max(ts), TIMESTAMP '1970-01-01') AS DATE) AS day
        FROM statement_facts""",
    "engagement": """
        WITH islands AS (
            SELECT learner, day,
                   day - CAST(row_number() OVER (PARTITION BY learner ORDER BY day) AS INTEGER) AS grp
            FROM engagement_daily),
        streaks AS (
            SELECT learner, max(day) AS last_day, count(*) AS length FROM islands GROUP BY learner, grp),
        weeks AS (
            SELECT l.learner, w.week,
                   COALESCE(sum(d.active_minutes), 0) AS minutes
            FROM (SELECT DISTINCT learner FROM engagement_daily) l
            CROSS JOIN (SELECT CAST(range AS INTEGER) AS week FROM range(4)) w
            CROSS JOIN as_of
            LEFT JOIN engagement_daily d ON d.learner = l.learner
                 AND d.day > as_of.day - 7 * (w.week + 1) AND d.day <= as_of.day - 7 * w.week
            GROUP BY l.learner, w.week),
        summary AS (
            SELECT learner,
                   list(minutes ORDER BY week DESC) AS weekly_minutes,
                   max(minutes) FILTER (WHERE week = 0) AS minutes_this_week,
                   avg(minutes) FILTER (WHERE week > 0) AS minutes_prior_weeks_avg,
                   regr_slope(minutes, -week) AS weekly_minutes_trend
            FROM weeks GROUP BY learner)
        SELECT d.learner, c.class_id,
               count(*) AS active_days, sum(d.statements) AS statements,
               round(sum(d.active_minutes), 1) AS active_minutes, sum(d.sessions) AS sessions,
               max(d.day) AS last_active,
               COALESCE((SELECT max(s.length) FROM streaks s CROSS JOIN as_of
                         WHERE s.learner = d.learner AND s.last_day >= as_of.day - 1), 0)
                   AS current_streak,
               (SELECT max(s.length) FROM streaks s WHERE s.learner = d.learner) AS longest_streak,
               any_value(m.weekly_minutes) AS weekly_minutes,
               round(any_value(m.weekly_minutes_trend), 2) AS weekly_minutes_trend,
               list_filter([
                   CASE WHEN any_value(a.day) - max(d.day) >= 7
                        THEN 'no activity for 7 days or more' END,
                   CASE WHEN any_value(m.minutes_prior_weeks_avg) > 0
                         AND any_value(m.minutes_this_week) < any_value(m.minutes_prior_weeks_avg) / 2
                        THEN 'weekly minutes fell below half of the three weeks before' END
               ], lambda r: r IS NOT NULL) AS risk_reasons
        FROM engagement_daily d
        CROSS JOIN as_of a
        LEFT JOIN learner_class c ON c.learner = d.learner
        LEFT JOIN summary m ON m.learner = d.learner
        GROUP BY d.learner, c.class_id""",
    "engagement_with_risk": """
        SELECT *, len(risk_reasons) > 0 AS at_risk FROM engagement""",
    "class_engagement": """
        SELECT class_id, count(*) AS learners,
               count(*) FILTER (WHERE last_active > (SELECT day FROM as_of) - 7) AS active_this_week,
               round(avg(weekly_minutes[4]), 1) AS avg_minutes_this_week,
               count(*) FILTER (WHERE at_risk) AS at_risk
        FROM engagement_with_risk GROUP BY class_id""",
    "learner_pace": """
        WITH pace AS (
            SELECT p.learner, c.class_id,
                   count(*) FILTER (WHERE m.level = 'mastered') AS competencies_mastered,
                   greatest(date_diff('day', p.first_seen, any_value(a.ts)), 1) / 7.0 AS weeks
            FROM learner_profile p CROSS JOIN as_of a
            LEFT JOIN mastery m ON m.learner = p.learner
            LEFT JOIN learner_class c ON c.learner = p.learner
            GROUP BY p.learner, c.class_id, p.first_seen)
        SELECT learner, class_id, competencies_mastered,
               round(competencies_mastered / weeks, 3) AS mastered_per_week,
               round(median(competencies_mastered / weeks) OVER (PARTITION BY class_id), 3)
                   AS cohort_median_per_week
        FROM pace""",
}

MACROS = [
    # Mastery as it stood at a moment: the estimate after the last evidence at or before it,
    # and since when the learner had been at that level.
    """CREATE OR REPLACE MACRO mastery_as_of(moment) AS TABLE
       WITH estimate AS (
           SELECT learner, competency, arg_max(level, n) AS level,
                  arg_max(probability, n) AS probability, max(n) AS evidence_count
           FROM mastery_evidence WHERE ts <= moment GROUP BY learner, competency),
       reached AS (
           SELECT learner, competency, max(reached_at) AS since
           FROM mastery_transitions WHERE reached_at <= moment GROUP BY learner, competency)
       SELECT e.learner, e.competency, e.level, e.probability, r.since, e.evidence_count
       FROM estimate e LEFT JOIN reached r
            ON r.learner = e.learner AND r.competency = e.competency""",
]
