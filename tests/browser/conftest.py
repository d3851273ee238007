"""A simulated school on a real `lrs serve` (uvicorn on a loopback port, views embedded), and
Debian's Chromium driven by Playwright. `make test` installs Chromium and axe-core first (the
Makefile's browser step); without them these tests are skipped, and under CI=true they fail."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET
from tests.live_server import running

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
AXE = REPO / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("LRS_SCREENSHOTS", REPO / "build" / "screenshots"))
LEARNERS, DAYS = 60, 35  # three classes of 20 (the simulator's classes hold 25 at most)
TEACHER = ("teacher-1", "a-teachers-secret-1")
LEARNER = ("learner-3", "a-learners-secret-3")
CLASS_1, CLASS_2 = "team:Class 1", "team:Class 2"
WIDE_CLASS = "team:Year 8 Maths"  # 40 pupils x 30 competencies
# The simulator puts learner n in class n % 3 + 1: s00003 and s00006 are in Class 1, s00001 in 2.
LEARNER_3 = "account:https://school.example.org/sis|s00003"
LEARNER_6 = "account:https://school.example.org/sis|s00006"
LEARNER_1 = "account:https://school.example.org/sis|s00001"


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed (make browser installs it)")
    pytest.skip(f"{what} is not installed (make browser installs it)")


@dataclass
class SchoolServer:
    url: str
    settings: Settings


def simulate_into(settings: Settings, learners: int, days: int) -> None:
    """The simulator's school, through the real ingest path, in-process (as `lrs simulate`
    without --url does)."""
    from ingest.pipeline import prepare_statements
    from lrs.committer import GroupCommitter
    from projections.simulator import simulate

    store = LearningRecordStore(env=settings.event_store_env())
    writer = Principal("simulator", "simulator", frozenset({"all"}), settings.authority_home_page)
    committer = GroupCommitter(store)
    try:
        def send(batch: list[dict[str, Any]]) -> None:
            committer.store(prepare_statements(batch, writer, "1.0.3", len(batch)))

        start = datetime.combine(datetime.now(UTC).date() - timedelta(days=days),
                                 datetime.min.time(), UTC)
        simulate(learners, days, seed=7, send=send, start=start)
        wide = wide_class(start)
        for first in range(0, len(wide), 500):
            send(wide[first:first + 500])
        store.ensure_credential(ADMIN_KEY, ADMIN_SECRET, ["all"], name="admin")
        store.issue_credential("Ms Rivera", ["teacher"], key=TEACHER[0], secret=TEACHER[1],
                               classes=[CLASS_1])
        store.issue_credential("Learner 3", ["learner"], key=LEARNER[0], secret=LEARNER[1],
                               learner=LEARNER_3)
    finally:
        committer.close()
        store.close()


def wide_class(start: datetime) -> list[dict[str, Any]]:
    """A class of 40 pupils practising 30 competencies over 20 days: the simulator's school has
    8 competencies, and a teacher's heat-map must read at a glance with 30."""
    rng = random.Random(5)
    competencies = [f"https://school.example.org/competencies/skill-{n:02d}" for n in range(1, 31)]
    team = {"objectType": "Group", "name": WIDE_CLASS[len("team:"):],
            "member": [{"mbox": "mailto:teacher@school.example.org"}]}
    statements = []
    for pupil in range(1, 41):
        skill = rng.random()
        for day in range(20):
            if rng.random() < 0.5:
                continue
            for item in range(8):
                competency = rng.choice(competencies[:5 + day + int(10 * skill)])
                statements.append({
                    "actor": {"name": f"Pupil {pupil}", "mbox": f"mailto:p{pupil}@school.example.org"},
                    "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                    "object": {"id": f"https://school.example.org/items/{competency[-8:]}/{item}"},
                    "result": {"success": rng.random() < 0.4 + 0.5 * skill, "duration": "PT3M"},
                    "context": {"team": team, "contextActivities": {"category": [{
                        "id": competency,
                        "definition": {"type": "http://adlnet.gov/expapi/activities/objective"}}]}},
                    "timestamp": (start + timedelta(days=day + 10, minutes=5 * item)).isoformat()
                    .replace("+00:00", "Z")})
    return statements


def wait_for_views(url: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        lag = httpx.get(f"{url}/api/health").json()["projections"]
        if lag.get("events_behind") == 0 and lag.get("learners_to_refresh") == 0:
            return
        assert time.monotonic() < deadline, f"the views did not catch up: {lag}"
        time.sleep(0.2)


@pytest.fixture(scope="session")
def school_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchoolServer]:
    if not Path(CHROMIUM).exists():
        missing("chromium")
    settings = Settings(data_dir=tmp_path_factory.mktemp("browser-school"), port=0,
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}", projections="embedded")
    simulate_into(settings, LEARNERS, DAYS)
    with running(settings) as (host, port):
        url = f"http://{host}:{port}"
        wait_for_views(url)
        yield SchoolServer(url, settings)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        missing("axe-core")
    return AXE.read_text()

