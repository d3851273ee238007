"""Rewriting PostgreSQL's tables after an erasure, so the deleted rows' bytes leave their files.

VACUUM FULL copies into the new files every row version some open transaction may still see:
one begun before the erasure committed, in any database of the server (the rewrite's own
snapshot holds back the horizon for them all), or a replication slot's standby. Rewriting while
one is open keeps the learner's rows, so the scrub first waits for them to end, and says so
when they have not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier

# Long enough for the writes and reads of a busy server to end; an admin's erasure may wait.
SCRUB_WAIT_SECONDS = 10.0
# How long a rewrite waits for its table's lock before leaving that table for a rerun.
LOCK_WAIT_SECONDS = 2.0


# A session holding back the horizon: a transaction begun before it, anywhere on the server,
# or a snapshot taken before it in this database (a read holds one without a transaction id)
# or by a standby's feedback (its walsender holds every database's rows).
_HOLDS_ROWS = (
    "pid <> pg_backend_pid() AND (age(backend_xid) > age(xid(%(h)s::xid8))"
    " OR (age(backend_xmin) > age(xid(%(h)s::xid8))"
    "     AND (datname = current_database() OR backend_type = 'walsender')))")


def scrub_tables(conn: Any, tables: Sequence[str]) -> str:
    """VACUUM FULL of these tables once nothing older than now holds their rows (or
    SCRUB_WAIT_SECONDS have passed); what it did."""
    # Every transaction that may see the deleted rows began before this snapshot's xmax.
    horizon = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x"
                           ).fetchone()["x"]
    deadline = time.monotonic() + SCRUB_WAIT_SECONDS
    passed = _horizon_passed(conn, horizon)
    while not passed and time.monotonic() < deadline:
        time.sleep(0.05)
        passed = _horizon_passed(conn, horizon)
    holders = ([] if passed else _transactions_holding(conn, horizon)) + _slots_holding(conn, horizon)
    busy = []
    # The rewrite waits for the table's lock, and every read and write of the table queues
    # behind it meanwhile: behind a long export, that would stall the whole store.
    conn.execute(SQL("SET lock_timeout = {}").format(f"{int(LOCK_WAIT_SECONDS * 1000)}ms"))
    try:
        for table in tables:
            try:
                conn.execute(SQL("VACUUM FULL {}").format(Identifier(table)))
            except psycopg.errors.LockNotAvailable:
                busy.append(table)
    finally:
        conn.execute("RESET lock_timeout")
    if not holders and not busy:
        return "tables rewritten (VACUUM FULL)"
    told = []
    if busy:
        told.append(f"{', '.join(busy)} in use past {LOCK_WAIT_SECONDS:g} s, not rewritten")
    if holders:
        told.append("the deleted rows stay in their files while " + "; ".join(holders)
                    + " stays open")
    return "tables rewritten (VACUUM FULL), but " + "; ".join(told) + "; run it again once it has ended"


def _horizon_passed(conn: Any, horizon: str) -> bool:
    """Nothing holds rows older than the horizon: the snapshot's xmin also covers prepared
    transactions, which pg_stat_activity does not list."""
    return bool(conn.execute(
        "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= %(h)s::xid8 AND NOT EXISTS ("
        f" SELECT 1 FROM pg_stat_activity WHERE {_HOLDS_ROWS}) AS ok", {"h": horizon}
    ).fetchone()["ok"])


def _transactions_holding(conn: Any, horizon: str) -> list[str]:
    """The sessions holding rows older than the horizon (a transaction's start shows only to
    its own role, or to one with pg_read_all_stats)."""
    rows = conn.execute(
        "SELECT pid, datname = current_database() AS here, xact_start FROM pg_stat_activity"
        f" WHERE {_HOLDS_ROWS} ORDER BY xact_start NULLS LAST LIMIT 3", {"h": horizon}).fetchall()
    # Another database's name is the server's, not this store's to tell.
    return [f"transaction of pid {r['pid']} in"
            f" {'this database' if r['here'] else 'another database'}"
            + (f" open since {r['xact_start']:%H:%M:%S %Z}" if r["xact_start"] else "")
            for r in rows] or ["a transaction begun before the erasure"]


def _slots_holding(conn: Any, horizon: str) -> list[str]:
    slots = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE xmin IS NOT NULL"
                         " AND age(xmin) > age(xid(%s::xid8))", [horizon]).fetchall()
    return [f"replication slot {r['slot_name']}" for r in slots]
