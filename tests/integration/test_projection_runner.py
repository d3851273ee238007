"""The projection runner on a real event store and DuckDB: pages, positions, rebuilds."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings
from projections.refresh import RESUMED_FACTS_PER_FULL
from projections.runner import ProjectionRunner
from projections.schema import DERIVED
from tests.statements import agent

WRITER = Principal("tool", "tool", frozenset({"all"}), "urn:lrs:credentials")
FRACTIONS = "https://example.org/c/fractions"
OBJECTIVE = "http://adlnet.gov/expapi/activities/objective"
PARAMETERS = {"prior": 0.3, "learn": 0.1, "guess": 0.2, "slip": 0.1}


def answer(learner: str, day: int, success: bool, hour: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "actor": agent(learner), "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": f"https://example.org/q/{day}"},
        "result": {"success": success, "duration": "PT10M"},
        "context": {"contextActivities": {"category": [{"id": FRACTIONS,
                                                        "definition": {"type": OBJECTIVE}}]}},
        "timestamp": f"2026-11-{day:02d}T{hour:02d}:00:00Z", **extra,
    }


def append(store: LearningRecordStore, docs: list[dict[str, Any]], stored: str | None = None) -> list[str]:
    """Append as one batch; ``stored`` (ISO, UTC) is when the LRS stored it (default: now)."""
    now = datetime.fromisoformat(stored.replace("Z", "+00:00")) if stored else None
    outcome = store.store_batches([prepare_statements(docs, WRITER, "1.0.3", 1000)], now=now)[0]
    assert not isinstance(outcome, Exception)
    return outcome


def history(store: LearningRecordStore) -> None:
    learners = ["ada", "bob", "cy", "dee"]
    for day in range(1, 15):
        append(store, [answer(name, day, (day + n) % 3 != 0, hour=9 + n)
                       for n, name in enumerate(learners) if (day + n) % 4 != 0])


def folded_then_applied(store: LearningRecordStore, runner: ProjectionRunner,
                        learners: list[str], later: list[dict[str, Any]]) -> None:
    """Each learner's first statement folded, then ``later`` applied but not yet refreshed."""
    append(store, [answer(name, 1, True) for name in learners])
    runner.catch_up()
    append(store, later)
    runner.catch_up(refresh=False)


def tables(con: Any) -> dict[str, list[Any]]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("statement_facts", *DERIVED)}


def rebuilt_tables(store: LearningRecordStore, tmp_path: Path) -> dict[str, list[Any]]:
    """Every table as a rebuild from position 0 makes it, in a views file of its own."""
    rebuilt = ProjectionRunner(store, tmp_path / "rebuilt.duckdb", page_size=1000)
    rebuilt.rebuild()
    return tables(rebuilt.con)


EVENING_6, EVENING_14 = "2026-11-06T20:00:00Z", "2026-11-14T20:00:00Z"


@pytest.fixture
def runner(sqlite_store: LearningRecordStore, tmp_path: Path) -> ProjectionRunner:
    return ProjectionRunner(sqlite_store, tmp_path / "views.duckdb", page_size=7)


def test_rebuild_gives_the_same_tables_as_the_incremental_path(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, tmp_path: Path
) -> None:
    for day in range(1, 15):  # incremental: the runner catches up after every append
        append(sqlite_store, [answer(n, day, (day + i) % 3 != 0, hour=9 + i)
                              for i, n in enumerate(["ada", "bob", "cy"]) if (day + i) % 4 != 0])
        runner.catch_up()
    assert tables(runner.con) == rebuilt_tables(sqlite_store, tmp_path)


def test_a_runner_opens_its_file_on_the_threads_it_is_given_again_after_a_compaction(
        sqlite_store: LearningRecordStore, tmp_path: Path) -> None:
    """`lrs project` follows the log as `lrs serve`'s views do, on LRS_VIEWS_THREADS."""
    runner = ProjectionRunner(sqlite_store, tmp_path / "views.duckdb", threads=3)
    try:
        append(sqlite_store, [answer("ada", 1, True)])
        runner.catch_up()
        threads = "SELECT current_setting('threads')"
        assert runner.con.execute(threads).fetchone() == (3,)
        runner.compact()  # an erasure's: the file is copied and opened again
        assert runner.con.execute(threads).fetchone() == (3,)
    finally:
        runner.close()


def test_each_page_and_its_position_commit_together(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, tmp_path: Path
) -> None:
    history(sqlite_store)
    clean = ProjectionRunner(sqlite_store, tmp_path / "clean.duckdb")
    clean.catch_up()
    pages = 0
    original = runner._apply_facts

    def crash_on_the_third_page(states: list[Any], skip_known: bool) -> dict[str, int]:
        nonlocal pages
        pages += 1
        affected = original(states, skip_known)  # the page's facts are written...
        if pages == 3:
            raise RuntimeError("power cut")  # ...and lost with the transaction
        return affected

    runner._apply_facts = crash_on_the_third_page  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        runner.catch_up()
    assert runner.position() == 14  # two pages of 7 applied, the third rolled back whole
    assert runner.con.execute("SELECT count(*) FROM statement_facts").fetchone() == (14,)
    runner._apply_facts = original  # type: ignore[method-assign]
    runner.catch_up()
    assert tables(runner.con) == tables(clean.con)


def test_a_crash_while_refreshing_recomputes_the_learners_next_time(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, tmp_path: Path
) -> None:
    history(sqlite_store)
    clean = ProjectionRunner(sqlite_store, tmp_path / "clean.duckdb")
    clean.catch_up()
    original = runner._recompute

    def crash(*chunk: Any) -> None:
        original(*chunk)
        raise RuntimeError("power cut")

    runner._recompute = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        runner.catch_up()
    runner._recompute = original  # type: ignore[method-assign]
    runner.catch_up()
    assert tables(runner.con) == tables(clean.con)


def test_a_voided_statement_leaves_every_view(sqlite_store: LearningRecordStore,
                                              runner: ProjectionRunner) -> None:
    (first,) = append(sqlite_store, [answer("ada", 1, True)])
    append(sqlite_store, [answer("ada", 2, True)])
    runner.catch_up()
    assert runner.con.execute("SELECT evidence_count FROM mastery").fetchone() == (2,)
    append(sqlite_store, [{"actor": agent("teacher"),
                           "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
                           "object": {"objectType": "StatementRef", "id": first}}])
    runner.catch_up()
    assert runner.con.execute("SELECT evidence_count FROM mastery").fetchone() == (1,)
    days = runner.con.execute("SELECT day FROM engagement_daily WHERE learner LIKE '%ada%'").fetchall()
    assert [str(d[0]) for d in days] == ["2026-11-02"]


def test_loaded_alignments_make_activities_evidence(sqlite_store: LearningRecordStore,
                                                    runner: ProjectionRunner) -> None:
    plain = answer("ada", 1, True)
    del plain["context"]
    append(sqlite_store, [plain])
    runner.catch_up()
    assert runner.con.execute("SELECT count(*) FROM mastery").fetchone() == (0,)
    sqlite_store.load_alignments("https://example.org/framework", [("https://example.org/q/1", FRACTIONS)],
                                 {FRACTIONS: {"prior": 0.5, "learn": 0.1, "guess": 0.2, "slip": 0.1}})
    runner.catch_up()
    row = runner.con.execute("SELECT competency, prior, evidence_count FROM mastery").fetchone()
    assert row == (FRACTIONS, 0.5, 1)


def test_mastery_as_of_a_past_date_is_answerable(sqlite_store: LearningRecordStore,
                                                 runner: ProjectionRunner) -> None:
    append(sqlite_store, [answer("ada", day, True) for day in (1, 2, 3, 4)])
    runner.catch_up()
    levels = [runner.con.execute("SELECT level FROM mastery_as_of(?)", [moment]).fetchone()
              for moment in ("2026-11-01 12:00:00", "2026-11-02 12:00:00", "2026-11-30 00:00:00")]
    assert levels == [("developing",), ("approaching",), ("mastered",)]


def test_streaks_and_risk_are_computed_as_of_the_newest_stored_time(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    append(sqlite_store, [answer("ada", day, True) for day in (1, 2, 3, 5, 6)], stored=EVENING_6)
    append(sqlite_store, [answer("bob", day, True) for day in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14)],
           stored=EVENING_14)
    runner.catch_up()
    rows = dict((r[0].split(":")[2].split("@")[0], r[1:]) for r in runner.con.execute(
        "SELECT learner, current_streak, longest_streak, at_risk, risk_reasons"
        " FROM engagement_with_risk").fetchall())
    # As of Nov 14: ada last active Nov 6, and 0 minutes this week against 50 the week before.
    assert rows["ada"] == (0, 3, True, ["no activity for 7 days or more",
                                        "weekly minutes fell below half of the three weeks before"])
    assert rows["bob"][:2] == (1, 10)


def test_lag_reports_events_and_seconds_behind(sqlite_store: LearningRecordStore,
                                               runner: ProjectionRunner) -> None:
    append(sqlite_store, [answer("ada", 1, True), answer("bob", 1, True)])
    assert runner.lag()["events_behind"] == 2
    runner.catch_up()
    assert runner.lag() == {**runner.lag(), "events_behind": 0, "seconds_behind": 0.0}


def test_a_catch_up_says_when_it_leaves_the_views_at_the_head(
        sqlite_store: LearningRecordStore, runner: ProjectionRunner) -> None:
    append(sqlite_store, [answer("ada", 1, True), answer("bob", 1, True)])
    runner.catch_up(until=1)
    assert not runner.reached_head.is_set()
    runner.catch_up(refresh=False)  # at the head, but learners still to refresh
    assert not runner.reached_head.is_set()
    runner.catch_up()
    assert runner.reached_head.is_set()
    assert runner.lag()["events_behind"] == runner.lag()["learners_to_refresh"] == 0


def test_lag_counts_each_range_of_the_log_once_and_stays_exact(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[tuple[int, int | None]] = []
    count = sqlite_store.index.events_after

    def counting(position: int, topics: Any, through: int | None = None) -> int:
        counted.append((position, through))
        return count(position, topics, through)

    monkeypatch.setattr(sqlite_store.index, "events_after", counting)
    append(sqlite_store, [answer(f"p{n}", 1, True) for n in range(20)])
    assert runner.lag()["events_behind"] == 20
    runner.catch_up(until=7, refresh=False)
    append(sqlite_store, [answer(f"q{n}", 2, True) for n in range(5)])
    assert runner.lag()["events_behind"] == 25 - 7
    assert runner.lag()["events_behind"] == 25 - 7
    # The second count read only the 7 events applied and the 5 appended, the third nothing.
    assert counted == [(0, 20), (0, 7), (20, 25)]
    runner.catch_up()
    assert runner.lag()["events_behind"] == 0
    append(sqlite_store, [answer("r", 3, True)])
    assert runner.lag()["events_behind"] == 1


def test_following_the_log_waits_after_less_than_a_page_and_not_after_a_full_one(
    sqlite_store: LearningRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up has a fixed cost (the refresh, DuckDB's transactions): statements that
    trickle in are applied together, waiting the interval or, after a slow catch-up, nine
    times its time up to a second; a backlog goes on at once."""
    runner = ProjectionRunner(sqlite_store, tmp_path / "views.duckdb", page_size=10)
    # (statements applied, seconds the catch-up took)
    catch_ups = iter([(3, 0.01), (10, 0.2), (25, 0.3), (0, 0.01), (9, 0.1), (2, 0.5), (1, 0.05)])
    now = [0.0]
    steps: list[str] = []

    def catch_up() -> int:
        applied, seconds = next(catch_ups, (0, 0.0))
        if seconds == 0.0:
            runner.stop.set()
        now[0] += seconds
        steps.append(f"applied {applied}")
        return applied

    monkeypatch.setattr(runner, "catch_up", catch_up)
    monkeypatch.setattr(runner, "clock", lambda: now[0])
    monkeypatch.setattr(runner.stop, "wait", lambda seconds: runner.stop.is_set()
                        or steps.append(f"waited {seconds:g}"))
    runner.run(interval=0.2)
    assert steps == ["applied 3", "waited 0.2", "applied 10", "applied 25", "applied 0",
                     "waited 0.2", "applied 9", "waited 0.9", "applied 2", "waited 1",
                     "applied 1", "waited 0.45", "applied 0"]


def test_analysts_can_read_the_views_with_plain_duckdb(sqlite_store: LearningRecordStore,
                                                       tmp_path: Path) -> None:
    runner = ProjectionRunner(sqlite_store, tmp_path / "views.duckdb")
    append(sqlite_store, [answer("ada", 1, True)])
    runner.catch_up()
    runner.con.close()
    with duckdb.connect(str(tmp_path / "views.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM learner_profile").fetchone() == (1,)


def test_a_roster_puts_learners_in_their_class(sqlite_store: LearningRecordStore,
                                               runner: ProjectionRunner) -> None:
    append(sqlite_store, [answer("ada", 1, True, context={"team": {
        "objectType": "Group", "name": "7B", "member": [agent("t")]}})])
    runner.catch_up()
    assert runner.con.execute("SELECT class_id FROM learner_class").fetchone() == ("team:7B",)
    sqlite_store.load_roster([("mbox:mailto:ada@example.org", "sis:class-42")])
    runner.catch_up()
    assert runner.con.execute("SELECT class_id, learners FROM class_engagement").fetchone() == (
        "sis:class-42", 1)


def test_a_later_roster_load_replaces_an_earlier_one_in_the_same_page(
    sqlite_store: LearningRecordStore, tmp_path: Path
) -> None:
    ada = "mbox:mailto:ada@example.org"
    sqlite_store.load_roster([(ada, "sis:class-1", "org-a"), ("mbox:mailto:bob@example.org",
                                                              "sis:class-1", "org-a")])
    sqlite_store.load_roster([(ada, "sis:class-2", "org-b"), (ada, "sis:class-3", "org-b")])
    read = "SELECT learner, class_id, org FROM roster ORDER BY ALL"
    one_page = ProjectionRunner(sqlite_store, tmp_path / "one.duckdb", page_size=5000)
    one_page.catch_up()
    page_each = ProjectionRunner(sqlite_store, tmp_path / "each.duckdb", page_size=1)
    page_each.catch_up()
    # A district export picks an org's learners from the roster: Ada has left org-a.
    assert one_page.con.execute(read).fetchall() == [
        (ada, "sis:class-2", "org-b"), (ada, "sis:class-3", "org-b"),
        ("mbox:mailto:bob@example.org", "sis:class-1", "org-a")]
    assert page_each.con.execute(read).fetchall() == one_page.con.execute(read).fetchall()


def test_a_later_alignment_load_replaces_an_earlier_one_in_the_same_page(
    sqlite_store: LearningRecordStore, tmp_path: Path
) -> None:
    question = "https://example.org/q/1"
    decimals = "https://example.org/c/decimals"
    sqlite_store.load_alignments("fw", [(question, FRACTIONS)], {FRACTIONS: PARAMETERS | {"prior": 0.2}})
    sqlite_store.load_alignments("fw", [(question, decimals)], {FRACTIONS: PARAMETERS | {"prior": 0.4}})
    one_page = ProjectionRunner(sqlite_store, tmp_path / "one.duckdb", page_size=5000)
    one_page.catch_up()
    page_each = ProjectionRunner(sqlite_store, tmp_path / "each.duckdb", page_size=1)
    page_each.catch_up()
    for read in ("SELECT activity_id, competency_id FROM alignments ORDER BY ALL",
                 "SELECT competency_id, prior FROM competency_parameters ORDER BY ALL"):
        assert one_page.con.execute(read).fetchall() == page_each.con.execute(read).fetchall()
    assert one_page.con.execute("SELECT competency_id FROM alignments").fetchall() == [(decimals,)]
    assert one_page.con.execute("SELECT prior FROM competency_parameters").fetchall() == [(0.4,)]


def test_folds_resumed_after_every_batch_give_the_same_tables_as_a_rebuild(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, tmp_path: Path
) -> None:
    from projections.simulator import School

    statements = [s for day in School(6, seed=5).days(8) for s in day]
    for start in range(0, len(statements), 9):
        append(sqlite_store, statements[start:start + 9])
        runner.catch_up()
    assert runner.con.execute("SELECT count(*) FROM learner_state").fetchone() == (6,)
    assert tables(runner.con) == rebuilt_tables(sqlite_store, tmp_path)


def test_a_catch_up_ends_at_the_head_it_reached_and_refreshes_under_steady_ingest(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    append(sqlite_store, [answer("ada", 1, True)])
    read_page = sqlite_store.index.event_states
    arriving = [answer("bob", day, True) for day in (2, 3, 4)]

    def read_while_statements_arrive(*args: Any, **kwargs: Any) -> Any:
        if arriving:
            append(sqlite_store, [arriving.pop(0)])
        return read_page(*args, **kwargs)

    sqlite_store.index.event_states = read_while_statements_arrive  # type: ignore[method-assign]
    runner.catch_up()
    # The head was Ada's statement when the catch-up began. Bob's statements wait for the
    # next catch-up, and the learners applied so far are refreshed now, not after the stream.
    assert runner.con.execute("SELECT count(*) FROM statement_facts").fetchone() == (1,)
    assert runner.con.execute("SELECT count(*) FROM dirty_learners").fetchone() == (0,)
    assert runner.con.execute("SELECT count(*) FROM learner_profile").fetchone() == (1,)
    sqlite_store.index.event_states = read_page  # type: ignore[method-assign]
    append(sqlite_store, arriving)
    runner.catch_up()
    assert runner.con.execute("SELECT count(*) FROM statement_facts").fetchone() == (4,)


def test_the_position_passes_events_the_views_do_not_read(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    append(sqlite_store, [answer("ada", 1, True)])
    runner.catch_up()
    for n in range(3):  # credentials: events of the log that no view reads
        sqlite_store.ensure_credential(f"key-{n}", "a-secret-of-enough-length", ["all"], name="tool")
    head = sqlite_store.recorder.max_notification_id()
    assert runner.position() < head
    runner.catch_up()
    # Else every poll of the follow loop and of the lag reads those events again.
    assert runner.position() == head
    assert runner.lag()["events_behind"] == 0
    append(sqlite_store, [answer("bob", 2, True)])
    runner.catch_up()
    assert runner.con.execute("SELECT count(*) FROM statement_facts").fetchone() == (2,)


def test_a_refresh_transaction_holds_few_full_folds_and_many_resumed_ones(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, tmp_path: Path
) -> None:
    folded = [f"a{n:02d}" for n in range(25)]
    folded_then_applied(sqlite_store, runner, folded, [answer(name, 2, False) for name in folded]
                        + [answer(f"new{n}", 2, True) for n in range(5)])
    chunks: list[int] = []
    committed = runner.folds.committed

    def commit_counted(written: dict[str, tuple[int, str] | None]) -> None:
        chunks.append(len(written))  # one commit per refresh transaction
        committed(written)

    runner.folds.committed = commit_counted  # type: ignore[method-assign]
    runner.refresh(chunk=2)
    # Ordered by key, the 25 resumed learners ("mbox:mailto:a00@…") come first: 20 in the
    # first transaction, with no full fold; then the last 5 with two of the new learners.
    assert chunks == [20, 7, 2, 1]
    assert tables(runner.con) == rebuilt_tables(sqlite_store, tmp_path)


def test_a_refresh_transaction_reads_a_bounded_number_of_new_facts(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, tmp_path: Path
) -> None:
    folded = [f"a{n:02d}" for n in range(20)]
    # A backlog: 30 new statements for each learner (the views were stopped for a while).
    folded_then_applied(sqlite_store, runner, folded, [
        answer(name, day, day % 2 == 0, hour=hour) for name in folded for day in range(2, 12)
        for hour in (9, 10, 11)])
    held: list[int] = []
    facts_of = runner._facts_of

    def counted(*args: Any, **kwargs: Any) -> dict[str, list[Any]]:
        found = facts_of(*args, **kwargs)
        held.append(sum(map(len, found.values())))
        return found

    runner._facts_of = counted  # type: ignore[method-assign]
    runner.refresh(chunk=2)
    # chunk 2: up to 20 resumed learners, but no more than 200 of their new facts at once.
    assert max(held) <= 2 * RESUMED_FACTS_PER_FULL
    assert sum(held) == 20 * 30
    assert tables(runner.con) == rebuilt_tables(sqlite_store, tmp_path)


def test_a_statement_older_than_the_saved_fold_refolds_its_learner(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner, tmp_path: Path
) -> None:
    history(sqlite_store)
    runner.catch_up()
    late = answer("ada", 3, False, hour=7)  # day 3, after days 1..14 were folded
    late["result"] = {"success": False}  # no duration: its gap to the next statement counts
    append(sqlite_store, [late])
    runner.catch_up()
    assert tables(runner.con) == rebuilt_tables(sqlite_store, tmp_path)
    minutes = runner.con.execute(
        "SELECT active_minutes FROM engagement_daily WHERE learner = ? AND day = DATE '2026-11-03'",
        ["mbox:mailto:ada@example.org"]).fetchone()
    assert minutes is not None and minutes[0] > 10.0  # the late statement's gap joined the day


def test_mastery_as_of_a_moment_is_the_probability_after_the_last_evidence_before_it(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    # Nov 1 right: 0.6; Nov 2 wrong: 0.275200 (the learner's speed now leans slower; plain
    # BKT 0.284211), still "developing", so no change of level.
    append(sqlite_store, [answer("ada", 1, True), answer("ada", 2, False)])
    runner.catch_up()
    row = runner.con.execute("SELECT level, probability, since FROM mastery_as_of(?)",
                             ["2026-11-02 12:00:00"]).fetchone()
    assert row == ("developing", pytest.approx(0.275200, abs=1e-6), datetime(2026, 11, 1, 10))


def test_now_is_the_newest_stored_time_not_the_newest_timestamp(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    append(sqlite_store, [answer("ada", day, True) for day in (1, 2, 3)], stored="2026-11-03T12:00:00Z")
    append(sqlite_store, [answer("bob", 3, True, timestamp="9999-12-31T00:00:00Z")],
           stored="2026-11-03T12:30:00Z")
    runner.catch_up()
    assert runner.con.execute("SELECT ts, day FROM as_of").fetchone() == (
        datetime(2026, 11, 3, 12, 30), date(2026, 11, 3))


def test_a_timestamp_later_than_stored_is_clamped_to_stored_and_flagged(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    append(sqlite_store, [answer("ada", 3, True), answer("bob", 3, True, timestamp="9999-12-31T00:00:00Z")],
           stored="2026-11-03T12:30:00Z")
    runner.catch_up()
    facts = runner.con.execute(
        "SELECT split_part(learner, ':', 3), ts, stored, timestamp_in_future FROM statement_facts"
        " ORDER BY learner").fetchall()
    stored = datetime(2026, 11, 3, 12, 30)
    assert facts == [("ada@example.org", datetime(2026, 11, 3, 10), stored, False),
                     ("bob@example.org", stored, stored, True)]
    days = runner.con.execute("SELECT day FROM engagement_daily WHERE learner LIKE '%bob%'").fetchall()
    assert days == [(date(2026, 11, 3),)]


def test_active_this_week_counts_learners_active_in_the_last_7_days(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    # As of Nov 14: ada was last active on Nov 10, bob on Nov 14, cy on Nov 7 (8 days before).
    append(sqlite_store, [answer("ada", 10, True), answer("bob", 14, True), answer("cy", 7, True)],
           stored=EVENING_14)
    runner.catch_up()
    assert runner.con.execute("SELECT learners, active_this_week FROM class_engagement").fetchone() == (3, 2)


def test_pace_counts_the_competencies_mastered_now(
    sqlite_store: LearningRecordStore, runner: ProjectionRunner
) -> None:
    # Mastered on Nov 3 (0.6, 0.89, 0.98), then a wrong answer on Nov 4 falls back to approaching.
    append(sqlite_store, [answer("ada", day, day != 4) for day in (1, 2, 3, 4)])
    runner.catch_up()
    assert runner.con.execute("SELECT level FROM mastery").fetchone() == ("approaching",)
    assert runner.con.execute("SELECT competencies_mastered FROM learner_pace").fetchone() == (0,)


class _CountedConnection:
    """The runner's DuckDB connection, counting every use (execute, cursor, register, …)."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.uses = 0

    def __getattr__(self, name: str) -> Any:
        self.uses += 1
        return getattr(self.con, name)


@pytest.fixture
def views_of(store: LearningRecordStore, tmp_path: Path) -> ProjectionRunner:
    return ProjectionRunner(store, tmp_path / "views.duckdb", page_size=7)


def _counted(runner: ProjectionRunner) -> _CountedConnection:
    counted = _CountedConnection(runner.con)
    runner.con = counted
    return counted


def test_idle_views_read_nothing_of_duckdb_while_the_log_stands_still(
        store: LearningRecordStore, views_of: ProjectionRunner) -> None:
    history(store)
    views_of.catch_up()
    head = store.recorder.max_notification_id()
    counted = _counted(views_of)
    assert views_of.catch_up() == 0
    assert views_of.lag() == {"position": head, "log_position": head, "events_behind": 0,
                              "learners_to_refresh": 0, "seconds_behind": 0.0}
    assert counted.uses == 0


def test_views_go_idle_in_one_poll_past_events_they_do_not_read(
        store: LearningRecordStore, views_of: ProjectionRunner) -> None:
    append(store, [answer("ada", 1, True)])
    views_of.catch_up()
    store.ensure_credential("key-0", "a-secret-of-enough-length", ["all"], name="tool")
    views_of.catch_up()  # passes the credential's event
    counted = _counted(views_of)
    views_of.catch_up()
    assert counted.uses == 0


def test_a_statement_another_process_writes_after_the_views_went_idle_reaches_them(
        store: LearningRecordStore, views_of: ProjectionRunner, settings: Settings) -> None:
    history(store)
    views_of.catch_up()
    views_of.catch_up()  # idle
    other = LearningRecordStore(env=settings.event_store_env())  # as `lrs ingest` would be
    try:
        (sid,) = append(other, [answer("eve", 20, True)])
    finally:
        other.close()
    assert views_of.lag()["events_behind"] == 1
    assert views_of.catch_up() == 1
    assert views_of.con.execute("SELECT learner FROM statement_facts WHERE statement_id = ?",
                                [sid]).fetchone() is not None
    assert views_of.lag()["learners_to_refresh"] == 0


def test_idle_views_rebuilt_apply_the_whole_log_again(
        store: LearningRecordStore, views_of: ProjectionRunner, tmp_path: Path) -> None:
    history(store)
    views_of.catch_up()
    views_of.catch_up()  # idle
    before = tables(views_of.con)
    assert views_of.rebuild() > 0
    assert tables(views_of.con) == before == rebuilt_tables(store, tmp_path)
