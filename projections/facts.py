"""Statement facts: the parts of a statement the read models use, one flat row each.

Facts are extracted in DuckDB (``FACTS_SQL``): a page of raw event states goes in as one Arrow
column and comes out as fact rows, parsed by DuckDB's JSON reader instead of one Python object
per statement. ``actor_key`` is the same naming rule in Python, for the relay and the exporter;
a test holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from projections.vocabulary import (
    COMPETENCY_EXTENSION,
    COMPETENCY_TYPE,
    CORRECT_AT_SCALED,
    GOAL_TARGET_EXTENSION,
)


class Fact(NamedTuple):
    """A tuple, not a dataclass: a rebuild makes one per statement, and tuples build fastest."""

    seq: int
    statement_id: str
    learner: str
    learner_name: str | None
    ts: datetime
    verb: str
    object_id: str | None
    object_type: str | None
    success: bool | None
    scaled: float | None
    duration_s: float | None
    response: str | None
    registration: str | None
    class_id: str | None
    competencies: Sequence[str]
    voids: str | None
    peer: str | None
    goal_target: str | None
    stored: datetime | None  # when the LRS stored the statement
    timestamp_in_future: bool  # the statement's timestamp was later than stored: ts is stored
    interaction_type: str | None  # the activity definition's interactionType (true-false, choice ...)

    @property
    def item_kind(self) -> str:
        """What kind of item the evidence comes from, for its guess and slip rates: the
        interactionType, else the activity type, else '' (unknown)."""
        return self.interaction_type or self.object_type or ""

    @property
    def correct(self) -> bool | None:
        """Evidence rule: success decides; else scaled (or raw in min..max) >= 0.8 is correct."""
        if self.success is not None:
            return self.success
        if self.scaled is not None:
            return self.scaled >= CORRECT_AT_SCALED
        return None


def actor_key(actor: Any) -> str | None:
    """The IFI key (same form as the statement index): how a learner is named everywhere."""
    if not isinstance(actor, dict):
        return None
    if "mbox" in actor:
        local, _, domain = str(actor["mbox"]).partition("@")
        return f"mbox:{local}@{domain.lower()}"
    if "mbox_sha1sum" in actor:
        return f"mbox_sha1sum:{str(actor['mbox_sha1sum']).lower()}"
    if "openid" in actor:
        return f"openid:{actor['openid']}"
    if "account" in actor:
        account = actor["account"]
        return f"account:{account.get('homePage')}|{account.get('name')}"
    members = actor.get("member") or []
    return actor_key(members[0]) if members else None


def to_iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def statement_time(statement: dict[str, Any]) -> datetime:
    """The statement's timestamp as naive UTC, but never later than stored (a client's clock
    cannot place a statement after the LRS received it): the time every view uses."""
    stored = _utc(statement.get("stored"))
    moment = _utc(statement.get("timestamp")) or stored
    assert moment is not None, "a stored statement has a timestamp or a stored time"
    return min(moment, stored) if stored is not None else moment


def _utc(text: Any) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # a statement stored before such times were refused: the nearest
        return datetime.min if moment.year == 1 else datetime.max


# --- extraction in DuckDB --------------------------------------------------------------------

_IFI = ('"mbox": "VARCHAR", "mbox_sha1sum": "VARCHAR", "openid": "VARCHAR",'
        ' "account": {"homePage": "VARCHAR", "name": "VARCHAR"}')
_AGENT = f'{{"objectType": "VARCHAR", "name": "VARCHAR", {_IFI}, "member": [{{{_IFI}}}]}}'
# The parts of an event's state that facts read; json_transform parses each statement once.
_SHAPE = (
    '{"statement": {"id": "VARCHAR", "timestamp": "VARCHAR", "stored": "VARCHAR",'
    f' "actor": {_AGENT}, "verb": {{"id": "VARCHAR"}},'
    f' "object": {{"objectType": "VARCHAR", "id": "VARCHAR", "name": "VARCHAR", {_IFI},'
    f' "member": [{{{_IFI}}}], "definition": {{"type": "VARCHAR", "interactionType": "VARCHAR",'
    ' "extensions": "JSON"}},'
    ' "result": {"success": "BOOLEAN", "response": "VARCHAR", "duration": "VARCHAR",'
    ' "score": {"scaled": "DOUBLE", "raw": "DOUBLE", "min": "DOUBLE", "max": "DOUBLE"},'
    ' "extensions": "JSON"},'
    f' "context": {{"registration": "VARCHAR", "team": {_AGENT}, "extensions": "JSON",'
    ' "contextActivities": {"category": [{"id": "VARCHAR", "definition": {"type": "VARCHAR"}}],'
    ' "grouping": [{"id": "VARCHAR"}]}}}}'
)
_NUMBER = "([0-9]+(?:[.][0-9]+)?)"
DURATION_PATTERN = f"^P(?:{_NUMBER}D)?(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"

FACT_MACROS = [
    # The IFI key (same form as the statement index): how a learner is named everywhere.
    """CREATE OR REPLACE MACRO xapi_ifi_key(a) AS CASE
         WHEN a.mbox IS NOT NULL THEN 'mbox:' || split_part(a.mbox, '@', 1) || '@'
              || lower(substr(a.mbox, strpos(a.mbox, '@') + 1))
         WHEN a.mbox_sha1sum IS NOT NULL THEN 'mbox_sha1sum:' || lower(a.mbox_sha1sum)
         WHEN a.openid IS NOT NULL THEN 'openid:' || a.openid
         WHEN a.account IS NOT NULL THEN 'account:' || a.account.homePage || '|' || a.account.name
       END""",
    # An anonymous group is named by its first member.
    "CREATE OR REPLACE MACRO xapi_agent_key(a) AS coalesce(xapi_ifi_key(a), xapi_ifi_key(a.member[1]))",
    # One regular-expression pass: its groups are empty when the duration does not match, and
    # also for "P" and "PT", which match and mean zero.
    # Seconds of an ISO 8601 duration from its text and its groups (DURATION_PATTERN, extracted
    # once per row): the groups are all empty when the text does not match, and for "P" and
    # "PT", which match and mean zero.
    """CREATE OR REPLACE MACRO xapi_duration_seconds(d, g) AS CASE
         WHEN d IS NULL THEN NULL
         WHEN g.d = '' AND g.h = '' AND g.m = '' AND g.s = ''
         THEN CASE WHEN d IN ('P', 'PT') THEN 0.0 END
         ELSE coalesce(TRY_CAST(nullif(g.d, '') AS DOUBLE), 0) * 86400
              + coalesce(TRY_CAST(nullif(g.h, '') AS DOUBLE), 0) * 3600
              + coalesce(TRY_CAST(nullif(g.m, '') AS DOUBLE), 0) * 60
              + coalesce(TRY_CAST(nullif(g.s, '') AS DOUBLE), 0) END""",
    # A JSON extension value: a string as itself, anything else as its JSON text.
    """CREATE OR REPLACE MACRO xapi_extension(extensions, iri) AS
         json_extract_string(extensions, '$."' || iri || '"')""",
    """CREATE OR REPLACE MACRO xapi_extension_list(extensions, iri) AS
         CASE json_type(json_extract(extensions, '$."' || iri || '"'))
           WHEN 'VARCHAR' THEN [xapi_extension(extensions, iri)]
           WHEN 'ARRAY' THEN from_json(json_extract(extensions, '$."' || iri || '"'), '["VARCHAR"]')
         END""",
]


def facts_sql(source: str) -> str:
    """SELECT the fact columns (in ``Fact`` order) from ``source(seq, state)``: event states as
    JSON text, the statement under the key "statement". Statements with no learner are left out."""
    return f"""
    WITH parsed AS (
        SELECT seq, json_transform(state, '{_SHAPE}').statement AS s FROM {source}),
    -- The statement's parts as columns of their own: with the whole statement as one column
    -- through every step, DuckDB's optimiser worked over its type at each one, and planning
    -- this query, afresh for every page, took 25-26M more instructions (~10 ms) of a catch-up.
    parts AS (
        SELECT seq, s.id AS s_id, s.timestamp AS s_timestamp, s.stored AS s_stored,
               s.actor AS s_actor, s.verb.id AS s_verb, s.object AS s_object,
               s.result AS s_result, s.context AS s_context
        FROM parsed),
    typed AS (
        SELECT seq, s_id, s_actor, s_verb, s_object, s_result, s_context,
               coalesce(s_object.objectType, 'Activity') AS kind,
               xapi_agent_key(s_actor) AS learner,
               list_concat(
                   list_transform(list_filter(s_context.contextActivities.category,
                                              lambda c: c.definition.type = '{COMPETENCY_TYPE}'),
                                  lambda c: c.id),
                   xapi_extension_list(s_object.definition.extensions, '{COMPETENCY_EXTENSION}'))
                   AS named,
               regexp_extract(s_result.duration, '{DURATION_PATTERN}', ['d', 'h', 'm', 's'])
                   AS duration_parts,
               timezone('UTC', CAST(s_timestamp AS TIMESTAMPTZ)) AS client_ts,
               timezone('UTC', CAST(s_stored AS TIMESTAMPTZ)) AS stored
        FROM parts)
    SELECT seq,
           s_id AS statement_id,
           learner,
           s_actor.name AS learner_name,
           -- A client time before year 1 in UTC (stored before such were refused) is year 1,
           -- as in statement_time: a Python datetime cannot hold it.
           CASE WHEN client_ts IS NULL OR client_ts > stored THEN coalesce(stored, client_ts)
                ELSE greatest(client_ts, TIMESTAMP '0001-01-01') END AS ts,
           s_verb AS verb,
           CASE WHEN kind = 'Activity' THEN s_object.id END AS object_id,
           CASE WHEN kind = 'Activity' THEN s_object.definition.type END AS object_type,
           s_result.success AS success,
           CASE WHEN s_result.score.scaled IS NOT NULL THEN s_result.score.scaled
                WHEN s_result.score.max > s_result.score.min
                THEN (s_result.score.raw - s_result.score.min)
                     / (s_result.score.max - s_result.score.min) END AS scaled,
           xapi_duration_seconds(s_result.duration, duration_parts) AS duration_s,
           s_result.response AS response,
           s_context.registration AS registration,
           CASE WHEN s_context.team IS NOT NULL THEN
                    CASE WHEN coalesce(s_context.team.name, '') <> ''
                         THEN 'team:' || s_context.team.name
                         ELSE xapi_agent_key(s_context.team) END
                WHEN len(s_context.contextActivities.grouping) > 0
                THEN 'activity:' || s_context.contextActivities.grouping[1].id END AS class_id,
           coalesce(list_filter(named, lambda x, i: list_position(named, x) = i),
                    CAST([] AS VARCHAR[])) AS competencies,
           CASE WHEN s_verb LIKE '%/voided' AND kind = 'StatementRef' THEN s_object.id END AS voids,
           CASE WHEN kind IN ('Agent', 'Group') THEN xapi_agent_key(s_object) END AS peer,
           coalesce(xapi_extension(s_result.extensions, '{GOAL_TARGET_EXTENSION}'),
                    xapi_extension(s_context.extensions, '{GOAL_TARGET_EXTENSION}')) AS goal_target,
           stored,
           coalesce(client_ts > stored, false) AS timestamp_in_future,
           CASE WHEN kind = 'Activity' THEN s_object.definition.interactionType END AS interaction_type
    FROM typed
    WHERE learner IS NOT NULL"""


def create_fact_macros(con: Any) -> None:
    con.execute("SET TimeZone = 'UTC'")  # a timestamp without an offset is UTC, as in statement_time
    for macro in FACT_MACROS:
        con.execute(macro)


def facts_of(statements: list[tuple[int, dict[str, Any]]]) -> list[Fact]:
    """Facts of (position, statement) pairs through the same SQL, for tests and one-off tools."""
    import duckdb
    import orjson
    import pyarrow as pa

    con = duckdb.connect()
    create_fact_macros(con)
    page = pa.table({"seq": pa.array([p for p, _ in statements], pa.int64()),
                     "state": [orjson.dumps({"statement": s}).decode() for _, s in statements]})
    con.register("page", page)
    rows = con.execute(facts_sql("page")).fetchall()
    con.close()
    return [Fact._make(row) for row in rows]
