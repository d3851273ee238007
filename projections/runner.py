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
import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from eventsourcing.utils import get_topic

from lrs.application import LearningRecordStore
from lrs.domain import AlignmentSet, LearnerErasure, ParameterFit, Retention, Roster, StoredStatement
from lrs.sealing import ERASED_HOME_PAGE
from projections.facts import create_fact_macros, facts_sql
from projections.lag import EventsBehind
from projections.page_items import PageItems, checked_parameters, latest_loads
from projections.queries import threads_config
from projections.refresh import (
    FACT_COLUMNS,
    LearnerRefresh,
    collector_paused,
    insert_rows,
    table_columns,
)
from projections.saved_folds import SavedFolds
from projections.schema import MACROS, SCHEMA_VERSION, TABLES, VIEWS

log = logging.getLogger("lrs.projections")

NAME = "projections"
STATEMENT_TOPIC = get_topic(StoredStatement.Stored)
ROSTER_TOPIC = get_topic(Roster.Loaded)
FIT_TOPIC = get_topic(ParameterFit.Fitted)
ERASED_TOPIC = get_topic(LearnerErasure.LearnerErased)
RETENTION_TOPIC = get_topic(Retention.RetentionApplied)
FOLLOW_SHARE = 9.0  # the following loop waits this many times a catch-up's time (see run)
FOLLOW_MAX_WAIT = 1.0
TOPICS = [STATEMENT_TOPIC, get_topic(AlignmentSet.Loaded), ROSTER_TOPIC, FIT_TOPIC, ERASED_TOPIC,
          RETENTION_TOPIC]
# Every table that keys rows by learner: an erased learner leaves each of them.
LEARNER_TABLES = ("statement_facts", "learner_profile", "mastery", "mastery_evidence",
                  "mastery_transitions", "engagement_daily", "learner_class", "roster",
                  "learner_versions", "dirty_learners", "projection_failures", "learner_state")


def create_schema(con: Any) -> None:
    """The tables, views and macros; a file of an older shape is emptied, to be rebuilt."""
    create_fact_macros(con)
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


class ProjectionRunner(LearnerRefresh):
    def __init__(self, store: LearningRecordStore, database: str | Path, page_size: int = 5000,
                 connection: Any = None, threads: int = 0) -> None:
        """``threads``: DuckDB's, for a file this opens (0: its default; LRS_VIEWS_THREADS)."""
        self.store = store
        self.threads = threads
        self.events_behind = EventsBehind(
            lambda after, through: store.index.events_after(after, TOPICS, through))
        self.page_size = page_size
        self.con = connection if connection is not None else self._connect(database)
        self.lock = threading.Lock()
        create_schema(self.con)
        self.stop = threading.Event()
        # Set each time a catch-up leaves the views at the log's head, nothing to refresh: the
        # views process publishes its lag then, not only on its clock (lrs/views_child.py).
        self.reached_head = threading.Event()
        self.clock: Callable[[], float] = time.monotonic
        self.folds = SavedFolds()
        self.path = None if str(database) == ":memory:" else Path(database)
        self.erased = False  # an erasure was applied since the file was last compacted
        # Statements applied since every dirty learner was last refreshed (None: not known, as
        # when the file was opened): no resumed fold can have more new facts than that.
        self.applied_since_refresh: int | None = None
        # How the views file is opened again after a compaction, and what must hold meanwhile
        # (the views process: no query under way); see compact().
        self.reopen: Callable[[], Any] = self._open_file
        self.compacting: Callable[[], AbstractContextManager[Any]] = nullcontext
        # The log position the views have applied and refreshed wholly, nothing dirty (None:
        # not known, or changed since): while the log's head stays there, a poll and the lag
        # read no DuckDB. An idle store's views polled it 20 times a second, 3-4 % of a core
        # each, for every store of a district's deployment.
        self._idle_at: int | None = None

    # --- position and lag --------------------------------------------------------------------

    def position(self, con: Any = None) -> int:
        row = (con or self.con).execute("SELECT position FROM projection_state WHERE name = ?",
                                        [NAME]).fetchone()
        return int(row[0]) if row else 0

    def lag(self) -> dict[str, Any]:
        """How far behind the log the views are, in events and in seconds (any thread)."""
        idle_at = self._idle_at
        if idle_at is not None and (self.store.recorder.max_notification_id() or 0) == idle_at:
            return {"position": idle_at, "log_position": idle_at, "events_behind": 0,
                    "learners_to_refresh": 0, "seconds_behind": 0.0}
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
        pending = max(self.events_behind(position, log_position), 1) if behind else 0
        return {"position": position, "log_position": log_position, "events_behind": pending,
                "learners_to_refresh": int(dirty), "seconds_behind": round(seconds, 3)}

    # --- applying the log --------------------------------------------------------------------

    def catch_up(self, until: int | None = None,
                 progress: Callable[[int], object] | None = None, refresh: bool = True) -> int:
        """Apply the log up to its head as it is now (or up to log position ``until``), then
        refresh (unless told not to: facts only); returns how many events were applied.
        ``progress`` hears each page's size.

        What arrives meanwhile waits for the next catch-up: under steady ingest there is
        always more, and pages of a few statements each (~25 ms of DuckDB apiece) never
        reached the refresh. The position then passes the events the views do not read
        (documents, credentials) up to the head, or every poll would read them again."""
        applied = 0
        head = self.store.recorder.max_notification_id() or 0
        whole = until is None and refresh
        if whole and head == self._idle_at and not self.erased:
            return 0
        if until is not None:
            head = min(head, until)
        position = self.position()
        while not self.stop.is_set() and position < head:
            page = self.store.index.event_states(position + 1, self.page_size, TOPICS, stop=head)
            if page:
                with collector_paused():
                    self.apply_page(page)
                applied += len(page)
                if progress is not None:
                    progress(len(page))
                position = self.position()
            if len(page) < self.page_size:
                if position < head:  # nothing more for the views up to the head
                    self._pass_to(head)
                    position = head
                break
        if refresh:
            self.refresh()
        if self.erased and self.path is not None:
            self.compact()
        if whole and position >= head and not self.stop.is_set() and not self.erased:
            self._idle_at = head
            self.reached_head.set()
        return applied

    def _pass_to(self, position: int) -> None:
        self._idle_at = None
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                self._record_position(position)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise

    def _record_position(self, position: int) -> None:
        """Inside the caller's transaction; the position never goes back."""
        position = max(position, self.position())
        self.con.execute("DELETE FROM projection_state WHERE name = ?", [NAME])
        self.con.execute("INSERT INTO projection_state VALUES (?, ?)", [NAME, position])

    def _connect(self, database: str | Path) -> Any:
        return duckdb.connect(str(database), config=threads_config(self.threads))

    def _open_file(self) -> Any:
        assert self.path is not None
        con = self._connect(self.path)
        create_schema(con)
        return con

    def compact(self) -> None:
        """Copy the views into a fresh file, put it in the old one's place, and overwrite the old
        one with zeros: DuckDB leaves deleted rows' bytes in its free blocks, so an erased
        learner would stay readable in the file, if not in any table."""
        self._idle_at = None
        assert self.path is not None
        fresh = self.path.with_name(self.path.name + ".compacting")
        with self.compacting(), self.lock:
            self.con.execute("CHECKPOINT")
            self.con.close()
            for leftover in (fresh, Path(f"{fresh}.wal")):
                leftover.unlink(missing_ok=True)
            copier = duckdb.connect(str(fresh))
            try:
                target = copier.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
                copier.execute(f"ATTACH '{_quoted(self.path)}' AS erased_views (READ_ONLY)")
                copier.execute(f'COPY FROM DATABASE erased_views TO "{target}"')
                copier.execute("DETACH erased_views")
                copier.execute("CHECKPOINT")
            finally:
                copier.close()
            for old in (self.path, Path(f"{self.path}.wal")):
                _zero(old)
            os.replace(fresh, self.path)
            self.con = self.reopen()
            self.erased = False

    def rebuild(self) -> int:
        """Every view from position 0."""
        self._idle_at = None
        with self.lock:
            for table in TABLES:
                self.con.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            create_schema(self.con)
            self.folds = SavedFolds()
        return self.catch_up()

    def learners_changed_after(self, position: int) -> list[str]:
        return [row[0] for row in self.con.execute(
            "SELECT learner FROM learner_versions WHERE position > ? ORDER BY learner",
            [position]).fetchall()]

    def run(self, interval: float = 0.2) -> None:
        """Follow the log, applying what arrived meanwhile together. A catch-up has a fixed
        cost (the refresh, DuckDB's transactions: ~90 ms of CPU for one statement on a
        2-core machine): caught up after every few statements, as under steady batch-1 ingest,
        the views took half a core. After less than a page the loop waits ``interval``, or
        FOLLOW_SHARE times the catch-up's own time if longer (at most a tenth of a core on
        catch-ups), but never past FOLLOW_MAX_WAIT: on a machine with a moment free, a
        statement is in the views a second or so after its write. A full page goes on at once.

        Every core the views take is one ingest lacks: at a fifth of a core and half a second,
        the views took 423 ms of CPU per 1,000 statements at batch 1 on average (bench/ingest.py,
        six runs), and 348 at a tenth and a second (README, "Projections")."""
        while not self.stop.is_set():
            try:
                started = self.clock()
                applied = self.catch_up()
                if applied < self.page_size:
                    spent = self.clock() - started
                    self.stop.wait(max(interval, min(spent * FOLLOW_SHARE, FOLLOW_MAX_WAIT)))
            except Exception:  # logged; the page is retried, nothing was half-applied
                log.exception("projection page failed")
                self.stop.wait(2.0)

    def apply_page(self, page: Sequence[tuple[int, str, bytes]]) -> None:
        """Apply (position, topic, state) rows as the log holds them; a statement whose learner
        was erased (its key is gone) is left out, as if it had never been stored. An erasure is
        applied in its own transaction, after what came before it and before what follows."""
        items = PageItems()
        statements = [state for _, topic, state in page if topic == STATEMENT_TOPIC]
        opened = iter(self.store.open_statement_states(statements) if statements else [])
        last = 0
        for position, topic, state in page:
            if topic == STATEMENT_TOPIC:
                # The hot path: the statement's JSON, parsed by DuckDB.
                statement = next(opened)
                if statement is not None:
                    items.add_state(position, statement)
                last = position
                continue
            event = self.store.decode_state(state)
            if topic in (ERASED_TOPIC, RETENTION_TOPIC):
                if last:
                    self.apply_items(items, last)
                    items = PageItems()
                self.apply_erasure(position, event.get("pseudonym"), event.get("before"))
                last = 0
                continue
            last = position
            if topic == ROSTER_TOPIC:
                items.add_roster(position, event["entries"])
            elif topic == FIT_TOPIC:
                items.add_alignments(position, f"fit: {event['method']}", [], event["parameters"])
            else:
                items.add_alignments(position, event["framework"], event["alignments"],
                                     event["parameters"])
        if last:
            self.apply_items(items, last)

    def apply_erasure(self, position: int, pseudonym: str | None, before: str | None) -> None:
        """A learner erased (by pseudonym) or statements stored before a day forgotten: the
        views become what a rebuild makes, in which those statements cannot be read. Others'
        statements that named the learner now name a placeholder, and their learners refold."""
        self._idle_at = None
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                refold: set[str] = set()
                gone: list[str] = []
                if pseudonym is not None:
                    gone = self._learners_of(pseudonym)
                    stand_in = f"account:{ERASED_HOME_PAGE}|{pseudonym}"
                    for learner in gone:
                        refold |= {row[0] for row in self.con.execute(
                            "SELECT DISTINCT learner FROM statement_facts WHERE peer = ?",
                            [learner]).fetchall()}
                        self.con.execute("UPDATE statement_facts SET peer = ? WHERE peer = ?",
                                         [stand_in, learner])
                        for table in LEARNER_TABLES:
                            self.con.execute(f"DELETE FROM {table} WHERE learner = ?", [learner])
                if before is not None:
                    cutoff = datetime.fromisoformat(before)
                    refold |= {row[0] for row in self.con.execute(
                        "SELECT DISTINCT learner FROM statement_facts WHERE stored < ?",
                        [cutoff]).fetchall()}
                    self.con.execute("DELETE FROM statement_facts WHERE stored < ?", [cutoff])
                refold -= set(gone)
                insert_rows(self.con, "dirty_learners", ("learner", "refold"),
                            [(a, True) for a in sorted(refold)])
                self._record_versions(dict.fromkeys(refold, position))
                self._record_position(position)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.folds.committed(dict.fromkeys(gone))
            self.erased = True

    def _learners_of(self, pseudonym: str) -> list[str]:
        """The views' learner keys whose pseudonym this is (the event never names the learner)."""
        known = [row[0] for row in self.con.execute(
            "SELECT learner FROM statement_facts UNION SELECT peer FROM statement_facts"
            " WHERE peer IS NOT NULL UNION SELECT learner FROM roster").fetchall()]
        return sorted(a for a in known if a and self.store.key_ring.pseudonym(a) == pseudonym)

    def apply_items(self, items: PageItems, position: int, skip_known: bool = False) -> None:
        """One transaction: the facts, the learners they touch, and the new position.

        ``skip_known`` drops facts whose log position is already applied, for sources that may
        deliver an event twice (a Kafka topic).
        """
        self._idle_at = None
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                versions, full = self._apply_facts(items.states, skip_known)
                if items.alignments or items.parameters:
                    loaded = max(row[-1] for row in items.alignments + items.parameters)
                    for learner in self._apply_alignments(items.alignments, items.parameters):
                        versions[learner] = max(versions.get(learner, 0), loaded)
                        full.add(learner)
                if items.roster:
                    for learner, seq in self._apply_roster(items.roster).items():
                        versions[learner] = max(versions.get(learner, 0), seq)
                        full.add(learner)
                insert_rows(self.con, "dirty_learners", ("learner", "refold"),
                            [(a, a in full) for a in sorted(versions)])
                self._record_versions(versions)
                self._record_position(position)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            if self.applied_since_refresh is not None:
                self.applied_since_refresh += len(items.states)

    def _apply_facts(self, states: list[tuple[int, bytes]],
                     skip_known: bool) -> tuple[dict[str, int], set[str]]:
        """Insert the facts of the page's statements; returns each affected learner with the
        position that changed it, and the learners whose fold must start again."""
        if not states:
            return {}, set()
        # Chunks of 4,096 let DuckDB parse on every core; Arrow checks the UTF-8 in one pass.
        seqs = pa.array([seq for seq, _ in states], pa.int64())
        texts = pa.array([state for _, state in states], pa.binary()).cast(pa.string())
        page = pa.Table.from_batches(
            pa.Table.from_arrays([seqs, texts], names=["seq", "state"]).to_batches(4096))
        self.con.register("page_states", page)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE page_facts AS {facts_sql('page_states')}")
        finally:
            self.con.unregister("page_states")
        if skip_known:
            self.con.execute("DELETE FROM page_facts WHERE seq IN (SELECT seq FROM statement_facts)")
        self.con.execute(f"INSERT INTO statement_facts ({', '.join(FACT_COLUMNS)}, voided)"
                         f" SELECT {', '.join(FACT_COLUMNS)}, false FROM page_facts")
        versions: dict[str, int] = dict(self.con.execute(
            "SELECT learner, max(seq) FROM page_facts GROUP BY learner").fetchall())
        # Facts that sort before what a learner's saved fold has seen restart that fold.
        full = {row[0] for row in self.con.execute(
            "SELECT DISTINCT p.learner FROM page_facts p JOIN learner_state s USING (learner)"
            " WHERE p.voids IS NULL AND (p.ts < s.last_ts OR p.seq < s.last_seq)").fetchall()}
        ids = [row[0] for row in self.con.execute(
            "SELECT statement_id FROM page_facts UNION ALL"
            " SELECT voids FROM page_facts WHERE voids IS NOT NULL").fetchall()]
        if ids:
            # A voiding statement may come before or after its target; either way the target
            # leaves every view, and its learner is recomputed from the later of the two.
            # First the (rare) targets, off the mostly-empty voids column; only then an UPDATE.
            targets = [row[0] for row in self.con.execute(
                "SELECT DISTINCT voids FROM statement_facts WHERE voids IN (SELECT unnest(?))",
                [ids]).fetchall()]
            voided = self.con.execute(
                "UPDATE statement_facts SET voided = true WHERE NOT voided AND voids IS NULL"
                " AND statement_id IN (SELECT unnest(?)) RETURNING learner, seq, statement_id",
                [targets]).fetchall() if targets else []
            if voided:
                voiders = dict(self.con.execute(
                    "SELECT voids, max(seq) FROM statement_facts WHERE voids IN (SELECT unnest(?))"
                    " GROUP BY voids", [[row[2] for row in voided]]).fetchall())
                for learner, seq, statement_id in voided:
                    changed = max(seq, voiders.get(statement_id, seq))
                    versions[learner] = max(versions.get(learner, 0), changed)
                    full.add(learner)
        return versions, full

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
        alignments = latest_loads(alignments)
        for activity in {row[0] for row in alignments}:
            self.con.execute("DELETE FROM alignments WHERE activity_id = ?", [activity])
        checked = latest_loads(checked_parameters(parameters))
        for competency in {row[0] for row in checked}:
            self.con.execute("DELETE FROM competency_parameters WHERE competency_id = ?", [competency])
        insert_rows(self.con, "alignments", ("activity_id", "competency_id", "framework", "seq"),
                    alignments)
        insert_rows(self.con, "competency_parameters", table_columns("competency_parameters"), checked)
        return {row[0] for row in self.con.execute(
            "SELECT DISTINCT learner FROM statement_facts").fetchall()}

    def _apply_roster(self, rows: list[tuple[Any, ...]]) -> dict[str, int]:
        rows = latest_loads(rows)
        learners = sorted({row[0] for row in rows})
        self.con.execute("DELETE FROM roster WHERE learner IN (SELECT unnest(?))", [learners])
        insert_rows(self.con, "roster", ("learner", "class_id", "org", "seq"), rows)
        return {row[0]: row[-1] for row in rows}

    def close(self) -> None:
        self.stop.set()
        self.con.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _zero(path: Path) -> None:
    """Overwrite a file with zeros in place (its blocks, not only its name, lose the bytes)."""
    try:
        with path.open("r+b") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            for start in range(0, size, 1 << 20):
                f.write(bytes(min(1 << 20, size - start)))
            f.flush()
            os.fsync(f.fileno())
    except FileNotFoundError:
        return
