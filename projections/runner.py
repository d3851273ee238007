"""Applies the event log to DuckDB in pages: each page and its new position in one transaction.

A page inserts its statement facts and marks the learners it touched as dirty, with its new
position, in one transaction, so a crash between pages loses and repeats nothing. Once the
runner has reached the head of the log, it recomputes the dirty learners from all of their
facts, clearing them in the same transaction. A learner's rows depend only on that learner's
facts, never on where pages began and ended, so a rebuild from position 0 gives the same tables
as the incremental path, and recomputes each learner once rather than once per page.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from lrs.application import LearningRecordStore
from lrs.domain import AlignmentSet, Roster, StoredStatement
from projections.bkt import BKTParameters
from projections.engagement import latest_class, learner_days
from projections.facts import Fact, fact_of
from projections.mastery import learner_mastery
from projections.profile import learner_profile
from projections.schema import DERIVED, MACROS, SCHEMA_VERSION, TABLES, VIEWS

log = logging.getLogger("lrs.projections")

NAME = "projections"
STATEMENT_TOPIC = get_topic(StoredStatement.Stored)
TOPICS = [STATEMENT_TOPIC, get_topic(AlignmentSet.Loaded), get_topic(Roster.Loaded)]
_FACT_COLUMNS = ("seq", "statement_id", "learner", "learner_name", "ts", "verb", "object_id",
                 "object_type", "success", "scaled", "duration_s", "response", "registration",
                 "class_id", "competencies", "voids", "peer", "goal_target")


def insert_columns(con: Any, table: str, columns: dict[str, list[Any]]) -> None:
    """Insert through column lists: one statement per table, not one per row."""
    selects = ", ".join("unnest(?)" for _ in columns)
    con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selects}", list(columns.values()))


def insert_rows(con: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        transposed = zip(*rows, strict=True)
        insert_columns(con, table, {c: list(v) for c, v in zip(columns, transposed, strict=True)})


def create_schema(con: Any) -> None:
    """The tables, views and macros; a file of an older shape is emptied, to be rebuilt."""
    tables = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        " AND table_type = 'BASE TABLE'").fetchall()}
    version = None
    if "projection_state" in tables:
        row = con.execute("SELECT position FROM projection_state WHERE name = 'schema_version'"
                          ).fetchone()
        version = row[0] if row else None
    if tables and version != SCHEMA_VERSION:
        log.warning("views file has schema version %s, not %s: rebuilding from the log",
                    version, SCHEMA_VERSION)
        for table in tables:
            con.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        tables = set()
    for table, columns in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    for view, query in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {query}")
    for macro in MACROS:
        con.execute(macro)
    if not tables:
        con.execute("INSERT INTO projection_state VALUES ('schema_version', ?)", [SCHEMA_VERSION])


@dataclass
class PageItems:
    """What one page of events brings: statement facts, alignments, parameters, roster rows."""

    facts: list[Fact] = field(default_factory=list)
    alignments: list[tuple[Any, ...]] = field(default_factory=list)
    parameters: list[tuple[Any, ...]] = field(default_factory=list)
    roster: list[tuple[Any, ...]] = field(default_factory=list)

    def add_statement(self, position: int, statement: dict[str, Any]) -> None:
        fact = fact_of(position, statement)
        if fact is not None:
            self.facts.append(fact)

    def add_alignments(self, position: int, framework: str, alignments: list[list[str]],
                       parameters: dict[str, dict[str, float]]) -> None:
        self.alignments += [(a, c, framework, position) for a, c in alignments]
        self.parameters += [(c, p["prior"], p["learn"], p["guess"], p["slip"], position)
                            for c, p in parameters.items()]

    def add_roster(self, position: int, entries: list[list[str]]) -> None:
        # Older roster events carry no org.
        self.roster += [(e[0], e[1], e[2] if len(e) > 2 else None, position) for e in entries]


class ProjectionRunner:
    def __init__(self, store: LearningRecordStore, database: str | Path, page_size: int = 5000,
                 connection: Any = None) -> None:
        self.store = store
        self.page_size = page_size
        self.con = connection if connection is not None else duckdb.connect(str(database))
        self.lock = threading.Lock()
        create_schema(self.con)
        self.stop = threading.Event()

    # --- position and lag --------------------------------------------------------------------

    def position(self, con: Any = None) -> int:
        row = (con or self.con).execute("SELECT position FROM projection_state WHERE name = ?",
                                        [NAME]).fetchone()
        return int(row[0]) if row else 0

    def lag(self) -> dict[str, Any]:
        """How far behind the log the views are, in events and in seconds (any thread)."""
        with self.con.cursor() as cursor:
            position = self.position(cursor)
            counted = cursor.execute("SELECT count(DISTINCT learner) FROM dirty_learners").fetchone()
            dirty = counted[0] if counted else 0
        behind = self.store.recorder.select_notifications(position + 1, 1, topics=TOPICS)
        log_position = self.store.recorder.max_notification_id() or 0
        seconds = 0.0
        if behind:
            event: Any = self.store.mapper.to_domain_event(behind[0])
            seconds = max((datetime.now(event.timestamp.tzinfo) - event.timestamp).total_seconds(), 0)
        pending = self.store.index.events_after(position, TOPICS) if behind else 0
        return {"position": position, "log_position": log_position, "events_behind": pending,
                "learners_to_refresh": int(dirty), "seconds_behind": round(seconds, 3)}

    # --- applying the log --------------------------------------------------------------------

    def catch_up(self, until: int | None = None,
                 progress: Callable[[int], object] | None = None) -> int:
        """Apply every page available now (or up to log position ``until``), then refresh;
        returns how many events were applied. ``progress`` hears each page's size."""
        applied = 0
        while not self.stop.is_set():
            start = self.position() + 1
            if until is not None and start > until:
                break
            page = self.store.recorder.select_notifications(
                start, self.page_size, stop=until, topics=TOPICS)
            if not page:
                break
            self.apply_page(page)
            applied += len(page)
            if progress is not None:
                progress(len(page))
        self.refresh()
        return applied

    def refresh(self, chunk: int = 500) -> None:
        """Recompute the dirty learners, a chunk per transaction."""
        while True:
            learners = [row[0] for row in self.con.execute(
                "SELECT DISTINCT learner FROM dirty_learners ORDER BY learner LIMIT ?",
                [chunk]).fetchall()]
            if not learners:
                return
            with self.lock:
                self.con.execute("BEGIN TRANSACTION")
                try:
                    self._recompute(learners)
                    self.con.execute("DELETE FROM dirty_learners WHERE learner IN (SELECT unnest(?))",
                                     [learners])
                    self.con.execute("COMMIT")
                except BaseException:
                    self.con.execute("ROLLBACK")
                    raise

    def rebuild(self) -> int:
        """Every view from position 0."""
        with self.lock:
            for table in TABLES:
                self.con.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            create_schema(self.con)
        return self.catch_up()

    def learners_changed_after(self, position: int) -> list[str]:
        return [row[0] for row in self.con.execute(
            "SELECT learner FROM learner_versions WHERE position > ? ORDER BY learner",
            [position]).fetchall()]

    def run(self, interval: float = 0.2) -> None:
        while not self.stop.is_set():
            try:
                if self.catch_up() == 0:
                    self.stop.wait(interval)
            except Exception:  # logged; the page is retried, nothing was half-applied
                log.exception("projection page failed")
                self.stop.wait(2.0)

    def apply_page(self, page: Sequence[Notification]) -> None:
        items = PageItems()
        mapper = self.store.mapper
        plain = mapper.cipher is None and mapper.compressor is None
        for notification in page:
            if plain and notification.topic == STATEMENT_TOPIC:
                # The hot path: the statement straight from the event's state, no event object.
                items.add_statement(notification.id,
                                    mapper.transcoder.decode(notification.state)["statement"])
                continue
            event: Any = mapper.to_domain_event(notification)
            if isinstance(event, StoredStatement.Stored):
                items.add_statement(notification.id, event.statement)
            elif isinstance(event, Roster.Loaded):
                items.add_roster(notification.id, event.entries)
            else:
                items.add_alignments(notification.id, event.framework, event.alignments,
                                     event.parameters)
        self.apply_items(items, page[-1].id)

    def apply_items(self, items: PageItems, position: int, skip_known: bool = False) -> None:
        """One transaction: the facts, the learners they touch, and the new position.

        ``skip_known`` drops facts whose log position is already applied, for sources that may
        deliver an event twice (a Kafka topic).
        """
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                facts = items.facts
                if skip_known and facts:
                    known = {row[0] for row in self.con.execute(
                        "SELECT seq FROM statement_facts WHERE seq IN (SELECT unnest(?))",
                        [[f.seq for f in facts]]).fetchall()}
                    facts = [f for f in facts if f.seq not in known]
                versions = self._apply_facts(facts)
                if items.alignments or items.parameters:
                    loaded = max(row[-1] for row in items.alignments + items.parameters)
                    for learner in self._apply_alignments(items.alignments, items.parameters):
                        versions[learner] = max(versions.get(learner, 0), loaded)
                if items.roster:
                    for learner, seq in self._apply_roster(items.roster).items():
                        versions[learner] = max(versions.get(learner, 0), seq)
                insert_rows(self.con, "dirty_learners", ("learner",), [(a,) for a in sorted(versions)])
                self._record_versions(versions)
                position = max(position, self.position())
                self.con.execute("DELETE FROM projection_state WHERE name = ?", [NAME])
                self.con.execute("INSERT INTO projection_state VALUES (?, ?)", [NAME, position])
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise

    def _apply_facts(self, facts: Sequence[Fact]) -> dict[str, int]:
        """Insert the facts; returns each affected learner with the position that changed it."""
        if facts:
            columns = {c: [getattr(f, c) for f in facts] for c in _FACT_COLUMNS}
            columns["competencies"] = [list(f.competencies) for f in facts]
            columns["voided"] = [False] * len(facts)
            insert_columns(self.con, "statement_facts", columns)
        versions: dict[str, int] = {}
        for f in facts:
            versions[f.learner] = max(versions.get(f.learner, 0), f.seq)
        ids = [f.statement_id for f in facts] + [f.voids for f in facts if f.voids]
        if ids:
            # A voiding statement may come before or after its target; either way the target
            # leaves every view, and its learner is recomputed from the later of the two.
            voided = self.con.execute(
                "UPDATE statement_facts SET voided = true WHERE NOT voided AND voids IS NULL"
                " AND statement_id IN (SELECT unnest(?)) AND statement_id IN"
                " (SELECT voids FROM statement_facts WHERE voids IS NOT NULL)"
                " RETURNING learner, seq, statement_id", [ids]).fetchall()
            if voided:
                voiders = dict(self.con.execute(
                    "SELECT voids, max(seq) FROM statement_facts WHERE voids IN (SELECT unnest(?))"
                    " GROUP BY voids", [[row[2] for row in voided]]).fetchall())
                for learner, seq, statement_id in voided:
                    changed = max(seq, voiders.get(statement_id, seq))
                    versions[learner] = max(versions.get(learner, 0), changed)
        return versions

    def _record_versions(self, versions: dict[str, int]) -> None:
        if not versions:
            return
        learners = sorted(versions)
        known = dict(self.con.execute(
            "SELECT learner, position FROM learner_versions WHERE learner IN (SELECT unnest(?))",
            [learners]).fetchall())
        self.con.execute("DELETE FROM learner_versions WHERE learner IN (SELECT unnest(?))", [learners])
        insert_rows(self.con, "learner_versions", ("learner", "position"),
                    [(a, max(versions[a], known.get(a, 0))) for a in learners])

    def _apply_alignments(self, alignments: list[tuple[Any, ...]],
                          parameters: list[tuple[Any, ...]]) -> set[str]:
        # The latest load of an activity (or a competency's parameters) replaces earlier ones.
        for activity in {row[0] for row in alignments}:
            self.con.execute("DELETE FROM alignments WHERE activity_id = ?", [activity])
        for competency in {row[0] for row in parameters}:
            self.con.execute("DELETE FROM competency_parameters WHERE competency_id = ?", [competency])
        insert_rows(self.con, "alignments", ("activity_id", "competency_id", "framework", "seq"),
                    alignments)
        insert_rows(self.con, "competency_parameters",
                    ("competency_id", "prior", "learn", "guess", "slip", "seq"), parameters)
        return {row[0] for row in self.con.execute(
            "SELECT DISTINCT learner FROM statement_facts").fetchall()}

    def _apply_roster(self, rows: list[tuple[Any, ...]]) -> dict[str, int]:
        learners = sorted({row[0] for row in rows})
        self.con.execute("DELETE FROM roster WHERE learner IN (SELECT unnest(?))", [learners])
        insert_rows(self.con, "roster", ("learner", "class_id", "org", "seq"), rows)
        return {row[0]: row[-1] for row in rows}

    def _recompute(self, learners: list[str]) -> None:
        if not learners:
            return
        alignments: dict[str, list[str]] = defaultdict(list)
        for activity, competency in self.con.execute(
                "SELECT activity_id, competency_id FROM alignments ORDER BY ALL").fetchall():
            alignments[activity].append(competency)
        parameters = {row[0]: BKTParameters(*row[1:]) for row in self.con.execute(
            "SELECT competency_id, prior, learn, guess, slip FROM competency_parameters").fetchall()}
        by_learner = self._facts_of(learners)
        rostered = dict(self.con.execute(
            "SELECT learner, class_id FROM roster WHERE learner IN (SELECT unnest(?))",
            [learners]).fetchall())
        for table in DERIVED:
            self.con.execute(f"DELETE FROM {table} WHERE learner IN (SELECT unnest(?))", [learners])
        profiles, mastery, transitions, days, classes = [], [], [], [], []
        for learner in learners:
            facts = by_learner.get(learner)
            if not facts:
                continue  # every statement of this learner was voided
            p = learner_profile(learner, facts)
            profiles.append((p.learner, list(p.names), p.first_seen, p.last_seen, p.statements,
                             _json(p.activities_by_type), _json(p.goals), _json(p.interests),
                             _json(p.reflections), p.comments, p.shares, p.helped,
                             list(p.peers_helped)))
            rows, changes = learner_mastery(learner, facts, alignments, parameters)
            mastery += [(r.learner, r.competency, r.probability, r.level, r.evidence_count,
                         r.last_evidence, list(r.statement_ids), r.prior, r.learn, r.guess, r.slip,
                         r.mastered_at) for r in rows]
            transitions += [(t.learner, t.competency, t.level, t.reached_at, t.probability, t.statement_id)
                            for t in changes]
            days += [(d.learner, d.day, d.active_minutes, d.statements, d.sessions)
                     for d in learner_days(learner, facts)]
            # A roster says which class a learner is in; otherwise the statements do.
            classes.append((learner, rostered.get(learner) or latest_class(facts)))
        insert_rows(self.con, "learner_profile", _columns("learner_profile"), profiles)
        insert_rows(self.con, "mastery", _columns("mastery"), mastery)
        insert_rows(self.con, "mastery_transitions", _columns("mastery_transitions"), transitions)
        insert_rows(self.con, "engagement_daily", _columns("engagement_daily"), days)
        insert_rows(self.con, "learner_class", _columns("learner_class"), classes)

    def _facts_of(self, learners: Iterable[str]) -> dict[str, list[Fact]]:
        rows = self.con.execute(
            f"SELECT {', '.join(_FACT_COLUMNS)} FROM statement_facts"
            " WHERE learner IN (SELECT unnest(?)) AND NOT voided AND voids IS NULL"
            " ORDER BY learner, ts, seq", [list(learners)]).fetchall()
        grouped: dict[str, list[Fact]] = defaultdict(list)
        for row in rows:
            values = dict(zip(_FACT_COLUMNS, row, strict=True))
            values["competencies"] = tuple(values["competencies"] or ())
            grouped[values["learner"]].append(Fact(**values))
        return grouped

    def close(self) -> None:
        self.stop.set()
        self.con.close()


def _columns(table: str) -> list[str]:
    return [part.split()[0] for part in TABLES[table].replace("\n", " ").split(",")]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
