"""What a district bundle holds: each file's query and the meaning of each of its columns.

The queries read the DuckDB projections through temporary tables the exporter fills first:
``export_people`` (learner key -> pseudonym, name, email), ``export_scope`` (the learners in
this bundle), ``export_classes`` (each learner's class sourcedId and org), ``export_range`` (the
--from/--to period as timestamps), ``export_meta`` (the bundle's as-of time) and
``export_free_text`` (goal and reflection texts, scrubbed, when free text is disclosed). A column marked
with a disclosure appears only when the export was run with that flag. Descriptions here are
the data dictionary, so a column cannot be exported without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Disclosed = Literal["names", "emails", "free_text"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    sql: str
    needs: Disclosed | None = None


@dataclass(frozen=True)
class ExportFile:
    path: str
    description: str
    source: str
    columns: tuple[Column, ...]

    @property
    def fixed_header(self) -> bool:
        """OneRoster files keep every column (empty when not disclosed); Parquet tables drop it."""
        return self.path.endswith(".csv")

    def select(self, disclosed: set[str]) -> str:
        parts = [f"{c.sql} AS {c.name}" if c.needs is None or c.needs in disclosed
                 else f"CAST(NULL AS VARCHAR) AS {c.name}" for c in self.described(disclosed)]
        return f"SELECT {', '.join(parts)} FROM {self.source} ORDER BY ALL"

    def described(self, disclosed: set[str]) -> list[Column]:
        return [c for c in self.columns
                if c.needs is None or c.needs in disclosed or self.fixed_header]


def _c(name: str, type_: str, description: str, sql: str | None = None,
       needs: Disclosed | None = None) -> Column:
    return Column(name, type_, description, sql or name, needs)


def _blank(name: str) -> Column:
    return Column(name, "string", "always empty: the LRS does not know it", "CAST(NULL AS VARCHAR)")


def _line_item_id(alias: str) -> str:
    """A class's line item for a competency: lineItems.csv names it, results.csv points at it."""
    return f"left(sha256(coalesce({alias}.class_id, '') || '|' || {alias}.competency), 32)"


def _free_text(alias: str) -> str:
    """The exporter scrubs goal and reflection texts in Python (names, emails) into a table."""
    return f"(SELECT t.text FROM export_free_text t WHERE t.statement_id = {alias}.statement_id)"


# Every goal's and reflection's text, for the exporter to scrub before the tables read them.
FREE_TEXTS = """
    SELECT statement_id, goal FROM (SELECT unnest(from_json(goals, '[{"goal": "VARCHAR",
        "statement_id": "VARCHAR"}]'), recursive := true) FROM learner_profile) WHERE goal IS NOT NULL
    UNION ALL
    SELECT statement_id, text FROM (SELECT unnest(from_json(reflections, '[{"text": "VARCHAR",
        "statement_id": "VARCHAR"}]'), recursive := true) FROM learner_profile) WHERE text IS NOT NULL
    ORDER BY ALL"""

PSEUDONYM = "HMAC-SHA256 pseudonym of the learner (hex), stable across bundles under one district key"
_SCOPED = "JOIN export_scope USING (learner) JOIN export_people x USING (learner)"
_IN_RANGE = "CROSS JOIN export_range r WHERE {column} >= r.lo AND {column} < r.hi"
_META = "CROSS JOIN export_meta meta"
_STATUS = _c("status", "string", "OneRoster status: always 'active'", "'active'")
_MODIFIED = _c("dateLastModified", "datetime", "the time of the log position the bundle reflects",
               "meta.as_of_text")

PARQUET = (
    ExportFile(
        "tables/learner_profiles.parquet",
        "One row per learner: activity, goals, interests, reflections, community and pace.",
        f"learner_profile p {_SCOPED} LEFT JOIN export_classes c USING (learner)"
        " LEFT JOIN learner_pace lp USING (learner)",
        (
            _c("learner", "string", PSEUDONYM, "x.pseudonym"),
            _c("names", "list<string>", "names the learner's statements gave (with --include-names)",
               "p.names", "names"),
            _c("email", "string", "the learner's email address, where the IFI is one (with"
               " --include-emails)", "x.email", "emails"),
            _c("class_id", "string", "class sourcedId: from the roster, else context.team or"
               " grouping (pseudonymised when it is an agent's identifier)", "c.class_id"),
            _c("org", "string", "org sourcedId from the roster", "c.org"),
            _c("first_seen", "timestamp", "timestamp of the learner's first statement (UTC)",
               "p.first_seen"),
            _c("last_seen", "timestamp", "timestamp of the learner's latest statement (UTC)",
               "p.last_seen"),
            _c("statements", "int32", "statements by the learner (voided ones left out)",
               "p.statements"),
            _c("activities_by_type", "json", "object: activity type IRI -> statements",
               "p.activities_by_type"),
            _c("interests", "json", "object: activity IRI -> times the learner chose it"
               " (verb preferred)", "p.interests"),
            _c("goals_set", "int64", "goals the learner set (rows in goals.parquet)",
               "json_array_length(p.goals)"),
            _c("reflections", "int64", "reflections the learner wrote (rows in reflections.parquet)",
               "json_array_length(p.reflections)"),
            _c("comments", "int32", "comments on peers' work", "p.comments"),
            _c("shares", "int32", "work shared with peers", "p.shares"),
            _c("helped", "int32", "times the learner helped (mentored) a peer", "p.helped"),
            _c("peers_helped", "list<string>", "pseudonyms of the peers the learner helped",
               "(SELECT list(y.pseudonym ORDER BY y.pseudonym) FROM unnest(p.peers_helped) AS u(peer)"
               " JOIN export_people y ON y.learner = u.peer)"),
            _c("competencies_mastered", "int64", "competencies at level mastered",
               "lp.competencies_mastered"),
            _c("mastered_per_week", "double", "competencies mastered per week since first seen",
               "lp.mastered_per_week"),
            _c("cohort_median_per_week", "double", "median of mastered_per_week in the learner's class",
               "lp.cohort_median_per_week"),
        ),
    ),
    ExportFile(
        "tables/mastery.parquet",
        "One row per learner and competency: the Bayesian Knowledge Tracing estimate and its"
        " evidence. With --from/--to: rows whose latest evidence falls in the period.",
        f"mastery m {_SCOPED} {_IN_RANGE.format(column='m.last_evidence')}",
        (
            _c("learner", "string", PSEUDONYM, "x.pseudonym"),
            _c("competency", "string", "competency id (IRI or framework id)", "m.competency"),
            _c("level", "string", "not started / developing (< 0.7) / approaching (>= 0.7) /"
               " mastered (>= 0.98)", "m.level"),
            _c("probability", "double", "P(known) after the latest evidence", "m.probability"),
            _c("evidence_count", "int32", "scored or success/failure results counted",
               "m.evidence_count"),
            _c("last_evidence", "timestamp", "time of the latest evidence (UTC)", "m.last_evidence"),
            _c("mastered_at", "timestamp", "when the current mastered spell began (UTC); empty while"
               " the level is not mastered (mastery can be lost)", "m.mastered_at"),
            _c("first_mastered_at", "timestamp", "when the level first reached mastered (UTC), even"
               " if it was lost since", "m.first_mastered_at"),
            _c("prior", "double", "BKT model parameter P(L0)", "m.prior"),
            _c("learn", "double", "BKT model parameter P(T)", "m.learn"),
            _c("guess", "double", "BKT model parameter P(G) for items of a kind without its own",
               "m.guess"),
            _c("slip", "double", "BKT model parameter P(S) for items of a kind without its own",
               "m.slip"),
            _c("statement_ids", "list<string>", "ids of the statements behind the estimate, oldest"
               " first", "m.statement_ids"),
        ),
    ),
    ExportFile(
        "tables/mastery_transitions.parquet",
        "Each change of mastery level, dated: mastery as of any date is the latest row at or"
        " before it. With --from/--to: transitions in the period.",
        f"mastery_transitions t {_SCOPED} {_IN_RANGE.format(column='t.reached_at')}",
        (
            _c("learner", "string", PSEUDONYM, "x.pseudonym"),
            _c("competency", "string", "competency id", "t.competency"),
            _c("level", "string", "the level reached", "t.level"),
            _c("reached_at", "timestamp", "time of the evidence that moved the level (UTC)",
               "t.reached_at"),
            _c("probability", "double", "P(known) at that moment", "t.probability"),
            _c("statement_id", "string", "the statement that moved the level", "t.statement_id"),
        ),
    ),
    ExportFile(
        "tables/engagement_daily.parquet",
        "One row per learner per active day (UTC). With --from/--to: days in the period.",
        f"engagement_daily d {_SCOPED} {_IN_RANGE.format(column='CAST(d.day AS TIMESTAMP)')}",
        (
            _c("learner", "string", PSEUDONYM, "x.pseudonym"),
            _c("day", "date", "the day (UTC)", "d.day"),
            _c("active_minutes", "double", "from result.duration, else gaps between statements"
               " capped at 30 minutes", "d.active_minutes"),
            _c("statements", "int32", "statements that day", "d.statements"),
            _c("sessions", "int32", "registrations, or runs without a 30-minute gap", "d.sessions"),
        ),
    ),
    ExportFile(
        "tables/goals.parquet",
        "Goals learners set for themselves (verb set-goal). With --from/--to: goals set in the period.",
        "(SELECT learner, unnest(from_json(goals, '[{\"goal\": \"VARCHAR\", \"activity\": \"VARCHAR\","
        " \"competency\": \"VARCHAR\", \"set_at\": \"TIMESTAMP\", \"statement_id\": \"VARCHAR\"}]'),"
        f" recursive := true) FROM learner_profile) g {_SCOPED}"
        f" {_IN_RANGE.format(column='g.set_at')}",
        (
            _c("learner", "string", PSEUDONYM, "x.pseudonym"),
            _c("set_at", "timestamp", "when the goal was set (UTC)", "g.set_at"),
            _c("activity", "string", "the activity the goal was stated on", "g.activity"),
            _c("competency", "string", "the goal's target competency (goal-target extension)",
               "g.competency"),
            _c("statement_id", "string", "the goal statement", "g.statement_id"),
            _c("goal", "string", "the goal in the learner's words, people in it pseudonymised (with"
               " --include-free-text)", _free_text("g"), "free_text"),
        ),
    ),
    ExportFile(
        "tables/reflections.parquet",
        "Reflections learners wrote (verb reflected). With --from/--to: reflections in the period.",
        "(SELECT learner, unnest(from_json(reflections, '[{\"text\": \"VARCHAR\", \"activity\":"
        " \"VARCHAR\", \"at\": \"TIMESTAMP\", \"statement_id\": \"VARCHAR\"}]'), recursive := true)"
        f" FROM learner_profile) f {_SCOPED} {_IN_RANGE.format(column='f.at')}",
        (
            _c("learner", "string", PSEUDONYM, "x.pseudonym"),
            _c("reflected_at", "timestamp", "when (UTC)", "f.at"),
            _c("activity", "string", "the activity reflected on", "f.activity"),
            _c("statement_id", "string", "the reflection statement", "f.statement_id"),
            _c("text", "string", "the reflection in the learner's words, people in it pseudonymised"
               " (with --include-free-text)", _free_text("f"), "free_text"),
        ),
    ),
)

_ROSTER_USERS = f"export_scope JOIN export_people x USING (learner) LEFT JOIN export_classes c" \
    f" USING (learner) LEFT JOIN learner_profile p USING (learner) {_META}"
_CLASSES = f"(SELECT DISTINCT c.class_id, c.org FROM export_scope JOIN export_classes c" \
    f" USING (learner) WHERE c.class_id IS NOT NULL) k {_META}"

ONEROSTER = (
    ExportFile(
        "oneroster/orgs.csv", "Orgs (schools) named by the roster's org column.",
        f"(SELECT DISTINCT c.org FROM export_scope JOIN export_classes c USING (learner)"
        f" WHERE c.org IS NOT NULL) o {_META}",
        (
            _c("sourcedId", "string", "the org as the roster names it", "o.org"),
            _STATUS, _MODIFIED,
            _c("name", "string", "the org as the roster names it", "o.org"),
            _c("type", "string", "always 'school'", "'school'"),
            _blank("identifier"), _blank("parentSourcedId"),
        ),
    ),
    ExportFile(
        "oneroster/users.csv", "One row per learner (role student, in enrollments.csv).",
        _ROSTER_USERS,
        (
            _c("sourcedId", "string", PSEUDONYM, "x.pseudonym"),
            _STATUS, _MODIFIED,
            _c("enabledUser", "boolean", "always true", "'true'"),
            _c("username", "string", "the pseudonym again (OneRoster requires a username)",
               "x.pseudonym"),
            _blank("userIds"),
            _c("givenName", "string", "first word of the learner's name (empty without --include-names)",
               "split_part(p.names[1], ' ', 1)", "names"),
            _c("familyName", "string", "rest of the learner's name (empty without --include-names)",
               "nullif(trim(substr(p.names[1], length(split_part(p.names[1], ' ', 1)) + 1)), '')",
               "names"),
            _blank("middleName"), _blank("identifier"),
            _c("email", "string", "email address (empty without --include-emails)", "x.email", "emails"),
            _blank("sms"), _blank("phone"), _blank("agentSourcedIds"), _blank("grades"),
            _blank("password"), _blank("userMasterIdentifier"), _blank("resourceSourcedIds"),
            _blank("preferredGivenName"), _blank("preferredMiddleName"),
            _blank("preferredFamilyName"),
            _c("primaryOrgSourcedId", "string", "org sourcedId from the roster", "c.org"),
            _blank("pronouns"),
        ),
    ),
    ExportFile(
        "oneroster/classes.csv", "Classes of the learners in the bundle.", _CLASSES,
        (
            _c("sourcedId", "string", "class sourcedId (see learner_profiles.class_id)", "k.class_id"),
            _STATUS, _MODIFIED,
            _c("title", "string", "the class id again", "k.class_id"),
            _blank("grades"), _blank("courseSourcedId"),
            _c("classCode", "string", "the class id again", "k.class_id"),
            _c("classType", "string", "always 'scheduled'", "'scheduled'"),
            _blank("location"),
            _c("schoolSourcedId", "string", "org sourcedId from the roster", "k.org"),
            _blank("termSourcedIds"), _blank("subjects"), _blank("subjectCodes"), _blank("periods"),
        ),
    ),
    ExportFile(
        "oneroster/enrollments.csv", "Learner-in-class, role student.",
        f"export_scope JOIN export_people x USING (learner) JOIN export_classes c USING (learner)"
        f" {_META} WHERE c.class_id IS NOT NULL",
        (
            _c("sourcedId", "string", "SHA-256 of class and learner sourcedIds (first 32 hex)",
               "left(sha256(c.class_id || '|' || x.pseudonym), 32)"),
            _STATUS, _MODIFIED,
            _c("classSourcedId", "string", "the class", "c.class_id"),
            _c("schoolSourcedId", "string", "the class's org", "c.org"),
            _c("userSourcedId", "string", "the learner's pseudonym", "x.pseudonym"),
            _c("role", "string", "always 'student'", "'student'"),
            _c("primary", "boolean", "always true", "'true'"),
            _blank("beginDate"), _blank("endDate"),
        ),
    ),
    ExportFile(
        "oneroster/lineItems.csv", "One line item per class and competency: 'mastery of' it.",
        f"(SELECT DISTINCT class_id, org, competency FROM export_mastery) i {_META}",
        (
            _c("sourcedId", "string", "SHA-256 of class and competency (first 32 hex)",
               _line_item_id("i")),
            _STATUS, _MODIFIED,
            _c("title", "string", "'Mastery of ' and the competency id",
               "'Mastery of ' || i.competency"),
            _c("description", "string", "the competency id", "i.competency"),
            _blank("assignDate"), _blank("dueDate"),
            _c("classSourcedId", "string", "the class", "i.class_id"),
            _blank("categorySourcedId"), _blank("gradingPeriodSourcedId"),
            _blank("academicSessionSourcedId"),
            _c("schoolSourcedId", "string", "the class's org", "i.org"),
            _c("resultValueMin", "float", "0.0: scores are probabilities", "'0.0'"),
            _c("resultValueMax", "float", "1.0", "'1.0'"),
        ),
    ),
    ExportFile(
        "oneroster/results.csv", "Mastery results: one per learner and competency.",
        f"export_mastery e {_META}",
        (
            _c("sourcedId", "string", "SHA-256 of learner and competency (first 32 hex)",
               "left(sha256(e.pseudonym || '|' || e.competency), 32)"),
            _STATUS, _MODIFIED,
            _c("lineItemSourcedId", "string", "the class's line item for the competency",
               _line_item_id("e")),
            _c("studentSourcedId", "string", "the learner's pseudonym", "e.pseudonym"),
            _c("classSourcedId", "string", "the class", "e.class_id"),
            _c("scoreStatus", "string", "always 'fully graded' (the estimate as of the position)",
               "'fully graded'"),
            _c("score", "float", "P(known), as in mastery.parquet", "CAST(e.probability AS VARCHAR)"),
            _c("textScore", "string", "the mastery level", "e.level"),
            _c("scoreDate", "date", "day of the latest evidence (UTC)",
               "strftime(e.last_evidence, '%Y-%m-%d')"),
            _c("comment", "string", "how much evidence", "'evidence: ' || e.evidence_count || ' result(s)'"),
        ),
    ),
)

EXPORT_MASTERY = f"""
    CREATE OR REPLACE TEMP VIEW export_mastery AS
    SELECT x.pseudonym, c.class_id, c.org, m.competency, m.probability, m.level,
           m.evidence_count, m.last_evidence
    FROM mastery m {_SCOPED} LEFT JOIN export_classes c USING (learner)
    {_IN_RANGE.format(column='m.last_evidence')}"""

# Files written by Python rather than by a query: described here for the data dictionary.
OTHER_FILES = {
    "removed_learners.csv": "Incremental bundles: learners the previous bundle had and this one"
    " no longer has (forgotten with `lrs forget`, or every statement of theirs past retention)."
    " They are also in changed_learners.csv, so the merge rule drops their rows; drop them from"
    " anything else derived from earlier bundles too.",
    "statements.jsonl": "xAPI statements, one JSON object per line in log order. Every agent,"
    " wherever it is (actor, object, context, authority, and inside extensions at any depth), is"
    " an account with homePage urn:lrs:pseudonym and the pseudonym as name; names and emails only"
    " with --include-names and --include-emails. Without --include-free-text the statements keep"
    " ids, IRIs, times, scores, success, completion, durations and language tags only: no verb"
    " display, activity name or description, interaction component descriptions,"
    " correctResponsesPattern, moreInfo, result.response, context platform or revision,"
    " attachment display, description or fileUrl, and of extensions only the agents they name and"
    " this LRS's own (competency, goal-target, goal-due). An activity typed user-profile or person"
    " has a pseudonym IRI urn:lrs:pseudonym:activity:<hex>. Voided statements stay, next to the"
    " statements voiding them (xAPI rules apply).",
    "oneroster/manifest.csv": "OneRoster manifest: versions, and per file bulk/delta/absent.",
    "changed_learners.csv": "Incremental bundles only: pseudonyms of the learners whose rows this"
    " bundle replaces (column learner).",
    "data_dictionary.csv": "This dictionary: file, column, type, description.",
    "manifest.json": "Log position, scope, row counts and SHA-256 of every file, tool version.",
}
