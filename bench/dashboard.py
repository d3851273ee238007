"""Benchmark: the dashboard's pages on a simulated school. Server time (request to last byte over
loopback, a signed-in teacher) of the class overview and the learner page, now and as of a past
date, beside the JSON routes they are built like; and the browser's time to a drawn page
(Chromium: navigation start to the load event, and to the first contentful paint).

Target (2 cores): p95 under 300 ms server time for a class of 40 at 1M statements stored, under
1 s to a drawn page. The class of 40 is a roster load (an event, as a school's would be) over
the first 40 simulated learners.

    python bench/dashboard.py [--learners 2300 --days 90] [--data-dir DIR] [--requests 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import running_server
from bench.projections import seed as seed_school
from lrs.application import LearningRecordStore
from lrs.config import Settings

CLASS = "Bench 40"
TEACHER = ("bench-teacher", "bench-teacher-secret")
SIS = "account:https://school.example.org/sis|s{:05d}"
CHROMIUM = "/usr/bin/chromium"


def seed(data_dir: Path, learners: int, days: int) -> int:
    """The simulated school in-process (bench/projections.py's seeding, the real ingest path),
    a class of 40 by roster, and a teacher of that class."""
    statements = seed_school(data_dir, learners, days)
    store = LearningRecordStore(env=Settings(data_dir=data_dir).event_store_env())
    store.load_roster([(SIS.format(n), CLASS) for n in range(1, 41)])
    store.issue_credential("Bench teacher", ["teacher"], key=TEACHER[0], secret=TEACHER[1],
                           classes=[CLASS])
    store.close()
    return statements


def wait_for_views(url: str, limit: float = 3600.0) -> float:
    started = time.perf_counter()
    while True:
        lag = httpx.get(f"{url}/api/health", timeout=10).json()["projections"]
        if lag.get("events_behind") == 0 and lag.get("learners_to_refresh") == 0:
            return time.perf_counter() - started
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"the views did not catch up: {lag}")
        time.sleep(1)


def sign_in(client: httpx.Client) -> None:
    """As a browser would; the cookies are Secure, which httpx keeps to HTTPS (browsers also
    send them to 127.0.0.1), so they are carried by hand."""
    form = client.get("/")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/sign-in", data={"key": TEACHER[0], "secret": TEACHER[1],
                                             "csrf": token, "next": ""},
                           headers={"Origin": str(client.base_url).rstrip("/"),
                                    "Cookie": f"lrs-sign-in={form.cookies['lrs-sign-in']}"})
    assert response.status_code == 303, response.text[:500]
    client.cookies.clear()
    client.headers["Cookie"] = f"__Host-lrs-session={response.cookies['__Host-lrs-session']}"


def timed(client: httpx.Client, path: str, n: int, **kwargs: Any) -> list[float]:
    client.get(path, **kwargs).raise_for_status()  # warm: the first query compiles its plan
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, **kwargs)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def ms(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) < 2:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


def browser_times(url: str, paths: list[str], n: int) -> dict[str, tuple[list[float], list[float]]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, tuple[list[float], list[float]]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/")
        page.get_by_label("Key").fill(TEACHER[0])
        page.get_by_label("Secret").fill(TEACHER[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/dashboard")
        for path in paths:
            loads, paints = [], []
            page.goto(url + path)  # warm
            for _ in range(n):
                page.goto(url + path, wait_until="load")
                timing = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " const p = performance.getEntriesByType('paint')"
                    ".find(e => e.name === 'first-contentful-paint');"
                    " return [n.loadEventEnd, p ? p.startTime : null]; }")
                loads.append(timing[0] / 1000)
                if timing[1] is not None:
                    paints.append(timing[1] / 1000)
            found[path] = (loads, paints)
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=2300)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--data-dir", type=Path, help="reuse a folder seeded by an earlier run")
    parser.add_argument("--requests", type=int, default=60, help="per page, for server time")
    parser.add_argument("--loads", type=int, default=15, help="per page, in the browser")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lrs-dashboard-bench-"))
    if not (data_dir / "events.sqlite3").exists():
        started = time.perf_counter()
        statements = seed(data_dir, args.learners, args.days)
        print(f"seeded {statements:,} simulated statements ({args.learners} learners,"
              f" {args.days} days) and a class of 40 in {time.perf_counter() - started:.0f} s")
    with running_server(data_dir=str(data_dir)) as server:
        caught_up = wait_for_views(server.url)
        with httpx.Client(base_url=server.url, timeout=60) as admin:
            admin.headers["Authorization"] = server.headers["Authorization"]
            stored = admin.post("/api/sql", json={"sql": "SELECT count(*) FROM statement_facts"}
                                ).json()["rows"][0][0]
            size = len(admin.get(f"/api/classes/{quote(CLASS, safe='')}/learners").json()["learners"])
        print(f"views caught up in {caught_up:.0f} s: {stored:,} statements in the views,"
              f" class '{CLASS}' of {size} learners\n")
        cls = f"/dashboard/classes/{quote(CLASS, safe='')}"
        learner = f"/dashboard/learners/{quote(SIS.format(3), safe='')}"
        past = (date.today() - timedelta(days=args.days // 2)).isoformat()
        api = {"Authorization": httpx.BasicAuth(*TEACHER)._auth_header}
        rows = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            sign_in(client)
            for name, path, kwargs in [
                ("class overview", cls, {}),
                (f"class overview as of {past}", cls, {"params": {"as_of": past}}),
                ("class overview sorted by a competency", cls,
                 {"params": {"sort": "c:https://school.example.org/competencies/math-3", "dir": "desc"}}),
                ("learner page", learner, {}),
                (f"learner page as of {past}", learner, {"params": {"as_of": past}}),
                ("GET /api/classes/{class}/engagement (JSON)",
                 f"/api/classes/{quote(CLASS, safe='')}/engagement", {"headers": api}),
                ("GET /api/learners/{learner}/profile (JSON)",
                 f"/api/learners/{quote(SIS.format(3), safe='')}/profile", {"headers": api}),
            ]:
                times = timed(client, path, args.requests, **kwargs)
                rows.append((name, ms(times, 50), ms(times, 95), max(times) * 1000))
        print(f"| server time, {args.requests} requests each (signed-in teacher, loopback) |"
              " p50 ms | p95 ms | max ms |")
        print("|---|---:|---:|---:|")
        for name, p50, p95, top in rows:
            print(f"| {name} | {p50:.0f} | {p95:.0f} | {top:.0f} |")
        if Path(CHROMIUM).exists():
            drawn = browser_times(server.url, [cls, learner], args.loads)
            print(f"\n| browser (Chromium, {args.loads} loads each) | load p50 ms | load p95 ms |"
                  " first paint p50 ms | first paint p95 ms |")
            print("|---|---:|---:|---:|---:|")
            for path, (loads, paints) in drawn.items():
                name = "class overview" if path == cls else "learner page"
                print(f"| {name} | {ms(loads, 50):.0f} | {ms(loads, 95):.0f} |"
                      f" {ms(paints, 50):.0f} | {ms(paints, 95):.0f} |")
        else:
            print(f"\n(no {CHROMIUM}: browser times not measured; make browser installs it)")


if __name__ == "__main__":
    main()
