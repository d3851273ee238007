"""The refresh stage of the projection runner: the dirty learners' rows recomputed from their
facts, a chunk of learners per transaction.

A learner folded before resumes from its saved fold with only the facts after it; one flagged
(a voiding, a late statement, new alignments or roster) or never folded starts from its first
fact. Either way its rows depend only on its facts, so the chunks' bounds change nothing but
how much is held in memory at once and how many DuckDB statements a refresh costs.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import orjson

from projections.bkt import BKTParameters
from projections.facts import Fact
from projections.learner import LearnerFold, LearnerRows
from projections.saved_folds import SavedFolds
from projections.schema import TABLES

log = logging.getLogger("lrs.projections")

# A refresh transaction's share of resumed folds, per full fold it may hold: up to this many
# learners (each of its ~25 DuckDB statements costs a transaction 1-2 ms, whatever its size),
# and this many of their new facts (a fact is ~2 KB in Python while it is folded).
RESUMED_PER_FULL = 10
RESUMED_FACTS_PER_FULL = 100
FACT_COLUMNS = ("seq", "statement_id", "learner", "learner_name", "ts", "verb", "object_id",
                "object_type", "success", "scaled", "duration_s", "response", "registration",
                "class_id", "competencies", "voids", "peer", "goal_target", "stored",
                "timestamp_in_future", "interaction_type")


def insert_columns(con: Any, table: str, columns: dict[str, list[Any]]) -> None:
    """Insert through column lists: one statement per table, not one per row."""
    selects = ", ".join("unnest(?)" for _ in columns)
    con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selects}", list(columns.values()))


def insert_rows(con: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        transposed = zip(*rows, strict=True)
        insert_columns(con, table, {c: list(v) for c, v in zip(columns, transposed, strict=True)})


def _delete_learners(con: Any, tables: Sequence[str], learners: list[str]) -> None:
    """Each table's rows of these learners. None to delete, no statement: DuckDB binds and plans
    every one afresh (0.7-1 ms of CPU each, whatever it deletes), and a refresh of resumed folds
    alone, the usual one under steady ingest, refolds nobody."""
    if learners:
        for table in tables:
            con.execute(f"DELETE FROM {table} WHERE learner IN (SELECT unnest(?))", [learners])


def table_columns(table: str) -> list[str]:
    return [part.split()[0] for part in TABLES[table].replace("\n", " ").split(",")]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Folding makes a tuple per fact and no reference cycles: reference counting frees them all,
    and the cyclic collector would only rescan a growing heap (a fifth of a rebuild's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class LearnerRefresh:
    """The refresh stage, a part of ProjectionRunner (which owns the connection, its lock, the
    saved folds and the count of statements applied since the last refresh)."""

    con: Any
    lock: threading.Lock
    folds: SavedFolds
    applied_since_refresh: int | None

    def refresh(self, chunk: int = 200) -> None:
        """Recompute the dirty learners, a chunk per transaction (a chunk's facts are in memory):
        at most ``chunk`` learners folded from their first fact, and learners resumed from a
        saved fold (which read only their facts since) within RESUMED_PER_FULL and
        RESUMED_FACTS_PER_FULL times ``chunk``."""
        with collector_paused():
            self._refresh(chunk)

    def _refresh(self, chunk: int) -> None:
        limit = chunk * RESUMED_PER_FULL
        while True:
            found = dict(self.con.execute(
                "SELECT learner, bool_or(refold) FROM dirty_learners GROUP BY learner ORDER BY learner"
                " LIMIT ?", [limit]).fetchall())
            if not found:
                self.applied_since_refresh = 0
                return
            saved = self.folds.get(self.con, [a for a, refold in found.items() if not refold])
            dirty = self._one_transaction_of(found, saved, chunk)
            learners = list(dirty)
            with self.lock:
                self.con.execute("BEGIN TRANSACTION")
                try:
                    written = self._recompute(dirty, saved)
                    self.con.execute("DELETE FROM dirty_learners WHERE learner IN (SELECT unnest(?))",
                                     [learners])
                    self.con.execute("COMMIT")
                except BaseException:
                    self.con.execute("ROLLBACK")
                    raise
                self.folds.committed(written)
            if len(found) < limit and len(dirty) == len(found):
                # Every dirty learner was in this transaction: asking again would find none
                # (only this runner's thread marks learners dirty, between its refreshes).
                self.applied_since_refresh = 0
                return

    def _one_transaction_of(self, dirty: dict[str, bool], saved: dict[str, tuple[int, str]],
                            chunk: int) -> dict[str, bool]:
        """The first of the dirty learners (in order) that one refresh transaction can hold;
        never none."""
        resumed = [a for a, refold in dirty.items() if not refold and a in saved]
        new_facts: dict[str, int] = {}
        budget = chunk * RESUMED_FACTS_PER_FULL
        if resumed and (self.applied_since_refresh is None or self.applied_since_refresh > budget):
            after = [saved[a][0] for a in resumed]
            new_facts = dict(self.con.execute(
                "SELECT f.learner, count(*) FROM statement_facts f JOIN (SELECT unnest($learners)"
                " AS learner, unnest($after) AS after) a USING (learner)"
                " WHERE f.seq > a.after AND f.seq > $earliest GROUP BY f.learner",
                {"learners": resumed, "after": after, "earliest": min(after)}).fetchall())
        chosen: dict[str, bool] = {}
        full = facts = 0
        for learner, refold in dirty.items():
            if not refold and learner in saved:
                facts += new_facts.get(learner, 0)
            else:
                full += 1
            if chosen and (full > chunk or facts > budget):
                break
            chosen[learner] = refold
        return chosen

    def _recompute(self, dirty: dict[str, bool], saved: dict[str, tuple[int, str]]
                   ) -> dict[str, tuple[int, str] | None]:
        """Fold each dirty learner's facts: from the first fact when flagged full (or never
        folded), else on from its saved fold with only the facts after it. Returns the saved
        folds written (None: removed, every statement voided), for the cache once the
        transaction commits."""
        learners = sorted(dirty)
        alignments, parameters = self.alignments(), self.parameters()
        full = [a for a in learners if dirty[a] or a not in saved]
        resumed = [a for a in learners if a not in set(full)]
        by_learner = self._facts_of(full)
        by_learner.update(self._facts_of(resumed, after={a: saved[a][0] for a in resumed}))
        rostered = dict(self.con.execute(
            "SELECT learner, class_id FROM roster WHERE learner IN (SELECT unnest(?))",
            [learners]).fetchall())
        failed: dict[str, str] = {}
        folds: list[LearnerFold] = []
        for learner in full:
            fold = LearnerFold(learner, alignments, parameters)
            if _folded(fold, by_learner.get(learner, ()), failed):
                folds.append(fold)
        days_from: list[tuple[str, date]] = []
        for learner in resumed:
            facts = by_learner.get(learner)
            if not facts:
                continue  # e.g. only a voiding statement of theirs arrived: nothing of theirs changes
            fold = LearnerFold.resume(learner, alignments, parameters, saved[learner][1])
            folded_until = fold.last_ts
            if _folded(fold, facts, failed):
                folds.append(fold)
                if folded_until is not None:
                    days_from.append((learner, folded_until.date()))
        refolded = set(full)
        rows: list[LearnerRows] = []
        for fold in folds:
            try:
                learner_rows = fold.table_rows(fold.learner not in refolded, rostered.get(fold.learner))
            except Exception as exc:  # one learner's data never stops the runner
                _failed(fold.learner, exc, failed)
                continue
            if learner_rows is not None:
                rows.append(learner_rows)
        # A learner whose fold failed loses every row (and is folded from the first fact next
        # time); the failure is kept in projection_failures.
        refolded |= set(failed)
        days_from = [(a, d) for a, d in days_from if a not in failed]
        # A full fold replaces all of a learner's rows; a resumed one its profile, class and
        # state, the days from its last folded day on, and adds its new transitions and evidence.
        replaced = [f.learner for f in folds] + sorted(failed)
        _delete_learners(self.con, ("learner_profile", "learner_class", "learner_state"), replaced)
        _delete_learners(self.con, ("mastery", "mastery_transitions", "mastery_evidence",
                                    "engagement_daily"), sorted(refolded))
        if days_from:
            self.con.execute(
                "DELETE FROM engagement_daily e USING (SELECT unnest(?) AS learner, unnest(?) AS day) d"
                " WHERE e.learner = d.learner AND e.day >= d.day",
                [[a for a, _ in days_from], [d for _, d in days_from]])
        self.con.execute("DELETE FROM projection_failures WHERE learner IN (SELECT unnest(?))", [learners])
        insert_rows(self.con, "projection_failures", ("learner", "error"), sorted(failed.items()))
        insert_rows(self.con, "learner_profile", table_columns("learner_profile"), [r.profile for r in rows])
        insert_rows(self.con, "mastery", table_columns("mastery"),
                    [m for r in rows if r.profile[0] in refolded for m in r.mastery])
        self._append_evidence([m for r in rows if r.profile[0] not in refolded for m in r.mastery])
        insert_rows(self.con, "mastery_transitions", table_columns("mastery_transitions"),
                    [t for r in rows for t in r.transitions])
        insert_rows(self.con, "mastery_evidence", table_columns("mastery_evidence"),
                    [e for r in rows for e in r.evidence])
        insert_rows(self.con, "engagement_daily", table_columns("engagement_daily"),
                    [d for r in rows for d in r.days])
        insert_rows(self.con, "learner_class", table_columns("learner_class"), [r.class_row for r in rows])
        states = [r.state for r in rows]
        insert_rows(self.con, "learner_state", table_columns("learner_state"), states)
        written: dict[str, tuple[int, str] | None] = dict.fromkeys(replaced)
        written.update({learner: (last_seq, state) for learner, last_seq, _, state in states})
        return written

    def alignments(self) -> dict[str, list[str]]:
        """Activity -> the competencies it is aligned to, as loaded."""
        alignments: dict[str, list[str]] = defaultdict(list)
        for activity, competency in self.con.execute(
                "SELECT activity_id, competency_id FROM alignments ORDER BY ALL").fetchall():
            alignments[activity].append(competency)
        return alignments

    def parameters(self) -> dict[str, BKTParameters]:
        """Competency -> the BKT parameters loaded or fitted last (others use the defaults)."""
        return {c: BKTParameters(prior, learn, guess, slip,
                                 tuple((k, g, s) for k, g, s in orjson.loads(items)))
                for c, prior, learn, guess, slip, items in self.con.execute(
                    "SELECT competency_id, prior, learn, guess, slip, items"
                    " FROM competency_parameters").fetchall()}

    def facts_by_learner(self, chunk: int = 500) -> Iterator[list[Fact]]:
        """Every learner's facts in fold order (voided ones left out), a learner at a time."""
        learners = [row[0] for row in self.con.execute(
            "SELECT DISTINCT learner FROM statement_facts ORDER BY learner").fetchall()]
        for start in range(0, len(learners), chunk):
            yield from self._facts_of(learners[start:start + chunk]).values()

    def _append_evidence(self, rows: list[tuple[Any, ...]]) -> None:
        """Resumed folds' mastery: new values, and new evidence ids after the saved ones."""
        if not rows:
            return
        self.con.execute("CREATE OR REPLACE TEMP TABLE mastery_delta AS SELECT * FROM mastery LIMIT 0")
        insert_rows(self.con, "mastery_delta", table_columns("mastery"), rows)
        self.con.execute(
            "UPDATE mastery SET probability = d.probability, level = d.level,"
            " evidence_count = d.evidence_count, last_evidence = d.last_evidence,"
            " statement_ids = list_concat(mastery.statement_ids, d.statement_ids),"
            " mastered_at = d.mastered_at, first_mastered_at = d.first_mastered_at FROM mastery_delta d"
            " WHERE mastery.learner = d.learner AND mastery.competency = d.competency")
        self.con.execute(
            "INSERT INTO mastery SELECT * FROM mastery_delta d WHERE NOT EXISTS (SELECT 1 FROM mastery m"
            " WHERE m.learner = d.learner AND m.competency = d.competency)")

    def _facts_of(self, learners: Iterable[str],
                  after: dict[str, int] | None = None) -> dict[str, list[Fact]]:
        """Each learner's facts in fold order; with ``after``, only those past a position."""
        learners = list(learners)
        if not learners:
            return {}
        positions = [after.get(a, 0) if after else 0 for a in learners]
        # Through Arrow, a column at a time: several times faster than a Python tuple per row.
        table = self.con.sql(
            f"SELECT {', '.join('f.' + c for c in FACT_COLUMNS)} FROM statement_facts f"
            " JOIN (SELECT unnest($learners) AS learner, unnest($after) AS after) a USING (learner)"
            " WHERE NOT f.voided AND f.voids IS NULL AND f.seq > a.after AND f.seq > $earliest"
            " ORDER BY f.learner, f.ts, f.seq",  # $earliest lets DuckDB skip old row groups
            params={"learners": learners, "after": positions,
                    "earliest": min(positions)}).to_arrow_table()
        grouped: dict[str, list[Fact]] = defaultdict(list)
        columns = [column.to_pylist() for column in table.columns]
        for fact in map(Fact._make, zip(*columns, strict=True)):
            grouped[fact.learner].append(fact)
        return grouped


def _folded(fold: LearnerFold, facts: Iterable[Fact], failed: dict[str, str]) -> bool:
    """Fold the facts in; a failure is the learner's alone: logged and noted, never raised."""
    try:
        for fact in facts:
            fold.add(fact)
    except Exception as exc:
        _failed(fold.learner, exc, failed)
        return False
    return True


def _failed(learner: str, exc: Exception, failed: dict[str, str]) -> None:
    log.exception("the rows of learner %s could not be computed; they are left out", learner)
    failed[learner] = f"{type(exc).__name__}: {exc}"
