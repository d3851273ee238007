"""The dashboard as a teacher and a learner use it, in Chromium, on a simulated school.

Each test saves a screenshot of what it ends on (build/screenshots/, or LRS_SCREENSHOTS).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.conftest import (
    CLASS_2,
    LEARNER,
    LEARNER_1,
    LEARNER_3,
    LEARNER_6,
    TEACHER,
    WIDE_CLASS,
    SchoolServer,
)
from tests.conftest import ADMIN_KEY, ADMIN_SECRET

Page = Any
SUMMARY_COLUMNS = 5  # risk, mastered, pace, minutes, last active: then the competencies


def sign_in(page: Page, server: SchoolServer, key: str, secret: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Key").fill(key)
    page.get_by_label("Secret").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    # Every role lands on a dashboard page. Waiting for the page that was already loaded (the
    # sign-in form) returned at once, and a read could then meet the old document.
    page.wait_for_url(re.compile(r"/dashboard"))


def open_class_1(page: Page) -> None:
    """From the teacher's dashboard to Class 1, once its page has loaded: the click returns
    when the navigation starts, and a read that does not wait (all_inner_texts, is_visible)
    then found the old page's nothing, under a loaded CI machine."""
    page.get_by_role("link", name="Class 1").click()
    page.wait_for_url(re.compile(r"/dashboard/classes/"))


def shot(page: Page, screenshots: Path, name: str, full: bool = True) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=full)


def heat_values(page: Page, column: int) -> list[int]:
    """The numbers in a competency's column of the heat-map (1 = the first), '·' as -1."""
    cells = page.locator(f"#heatmap tbody tr td.cell:nth-of-type({column + SUMMARY_COLUMNS})"
                         ).all_inner_texts()
    return [int(c) if c.strip().isdigit() else -1 for c in cells]


def test_a_teacher_signs_in_and_sees_their_class(page: Page, school_server: SchoolServer,
                                                 screenshots: Path) -> None:
    page.goto(school_server.url + "/")
    shot(page, screenshots, "01-sign-in")
    sign_in(page, school_server, *TEACHER)
    assert page.url.endswith("/dashboard")
    assert page.get_by_role("link", name="Class 1").is_visible()
    assert page.get_by_role("link", name="Class 2").count() == 0
    shot(page, screenshots, "02-classes")


def test_the_session_cookie_is_secure_http_only_and_strict(page: Page, school_server: SchoolServer) -> None:
    sign_in(page, school_server, *TEACHER)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-lrs-session"]
    assert (session["httpOnly"], session["secure"], session["sameSite"]) == (True, True, "Strict")
    assert page.evaluate("document.cookie") == ""  # no script can read it


def test_a_teacher_opens_the_class_and_sorts_the_heat_map(page: Page, school_server: SchoolServer,
                                                         screenshots: Path) -> None:
    sign_in(page, school_server, *TEACHER)
    open_class_1(page)
    assert page.get_by_role("heading", name="Class 1", level=1).is_visible()
    rows = page.locator("#heatmap tbody tr")
    assert rows.count() == 20
    shot(page, screenshots, "03-class-overview")
    header = page.locator("#heatmap thead th.comp").first
    header.get_by_role("link").click()  # a competency's column, highest first
    page.wait_for_url(re.compile(r"sort=c%3A.*dir=desc"))
    values = heat_values(page, 1)
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    assert page.locator("#heatmap thead th.comp").first.get_attribute("aria-sort") == "descending"
    page.locator("#heatmap thead th.comp").first.get_by_role("link").click()  # and lowest first
    page.wait_for_url(re.compile(r"dir=asc"))
    values = heat_values(page, 1)
    assert values == sorted(values)
    shot(page, screenshots, "04-class-sorted", full=False)


def test_a_teacher_filters_the_heat_map_by_competency(page: Page, school_server: SchoolServer) -> None:
    sign_in(page, school_server, *TEACHER)
    open_class_1(page)
    page.get_by_label("Competency", exact=True).select_option(label="math-2")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"competency="))
    assert page.locator("#heatmap thead th.comp").all_inner_texts() == ["math-2"]


def test_the_at_risk_list_gives_its_reasons_in_words(page: Page, school_server: SchoolServer) -> None:
    sign_in(page, school_server, *TEACHER)
    open_class_1(page)
    reasons = page.locator("ul.risks li").all_inner_texts()
    assert reasons, "nobody at risk in a simulated class with disengaging learners"
    assert all(re.search(r"no activity for \d+ days|minutes this week, under half", r) for r in reasons)


def test_a_teacher_opens_a_learner_with_mastery_evidence(page: Page, school_server: SchoolServer,
                                                        screenshots: Path) -> None:
    sign_in(page, school_server, *TEACHER)
    open_class_1(page)
    page.locator("#heatmap").get_by_role("link", name="Learner 3", exact=True).click()
    page.wait_for_url(re.compile(r"/dashboard/learners/"))
    assert page.get_by_role("heading", name="Learner 3", level=1).is_visible()
    first = page.locator("details.comp").first
    first.locator("summary").click()
    assert first.locator("table.evidence tbody tr").count() > 0
    assert first.locator("ol.timeline li").count() > 0
    shot(page, screenshots, "05-learner")


def test_changing_the_as_of_date_shows_the_learner_as_they_stood(page: Page, school_server: SchoolServer,
                                                                screenshots: Path) -> None:
    sign_in(page, school_server, *TEACHER)
    page.goto(f"{school_server.url}/dashboard/learners/{quote(LEARNER_3, safe='')}")
    evidence_now = sum(int(t.split()[0]) for t in page.locator("details.comp summary .muted")
                       .all_inner_texts() for t in [t.split("·")[1].strip()])
    earlier = (date.today() - timedelta(days=20)).isoformat()
    page.get_by_label("As of", exact=True).fill(earlier)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(f"as_of={earlier}"))
    assert f"at the end of {earlier}" in page.locator(".as-of-note").inner_text()
    evidence_then = sum(int(t.split()[0]) for t in page.locator("details.comp summary .muted")
                        .all_inner_texts() for t in [t.split("·")[1].strip()])
    assert 0 < evidence_then < evidence_now
    shot(page, screenshots, "06-learner-as-of", full=False)


def test_the_class_as_of_a_date_shows_less_mastery(page: Page, school_server: SchoolServer) -> None:
    sign_in(page, school_server, *TEACHER)
    open_class_1(page)
    mastered = "#heatmap tbody td.mastered"
    mastered_now = sum(int(v) for v in page.locator(mastered).all_inner_texts())
    page.get_by_label("As of", exact=True).fill((date.today() - timedelta(days=25)).isoformat())
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile("as_of="))
    mastered_then = sum(int(v) for v in page.locator(mastered).all_inner_texts())
    assert mastered_then < mastered_now


def test_signing_out_ends_the_session(page: Page, school_server: SchoolServer, screenshots: Path) -> None:
    sign_in(page, school_server, *TEACHER)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.goto(school_server.url + "/dashboard")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "__Host-lrs-session"]


def test_a_teacher_is_refused_another_classs_url(page: Page, school_server: SchoolServer,
                                                screenshots: Path) -> None:
    sign_in(page, school_server, *TEACHER)
    response = page.goto(f"{school_server.url}/dashboard/classes/{quote(CLASS_2, safe='')}")
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", name="Not yours to see").is_visible()
    assert "Learner" not in page.locator("main").inner_text().replace("learner", "")
    shot(page, screenshots, "07-refused", full=False)
    response = page.goto(f"{school_server.url}/dashboard/learners/{quote(LEARNER_1, safe='')}")
    assert response is not None and response.status == 403


def test_a_learner_sees_only_themself(page: Page, school_server: SchoolServer, screenshots: Path) -> None:
    sign_in(page, school_server, *LEARNER)
    assert page.get_by_role("heading", name="Learner 3", level=1).is_visible()
    assert page.get_by_role("link", name="Classes").count() == 0
    standing = page.locator(".tile .compare").all_inner_texts()
    assert any("Class average" in s for s in standing)
    shot(page, screenshots, "08-learner-own-page")
    for url in (f"/dashboard/learners/{quote(LEARNER_6, safe='')}",
                f"/dashboard/classes/{quote('team:Class 1', safe='')}"):
        response = page.goto(school_server.url + url)
        assert response is not None and response.status == 403, url


def test_a_page_redraws_when_new_statements_arrive(page: Page, school_server: SchoolServer) -> None:
    sign_in(page, school_server, *TEACHER)
    page.goto(f"{school_server.url}/dashboard/learners/{quote(LEARNER_3, safe='')}")
    before = page.locator("#s-w + .big").inner_text()
    statement = {"actor": {"objectType": "Agent", "name": "Learner 3", "account": {
        "homePage": "https://school.example.org/sis", "name": "s00003"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": "https://school.example.org/pages/extra-reading"},
        "result": {"duration": "PT45M"}}
    posted = httpx.post(f"{school_server.url}/xAPI/statements", json=statement,
                        auth=(ADMIN_KEY, ADMIN_SECRET),
                        headers={"X-Experience-API-Version": "1.0.3"})
    assert posted.status_code == 200
    page.locator("body[data-redrawn]").wait_for(state="attached", timeout=20_000)
    after = page.locator("#s-w + .big").inner_text()
    assert int(after) >= int(before) + 45
    assert "live" in page.locator("#live").inner_text()


def test_the_admin_adds_and_revokes_a_credential(page: Page, school_server: SchoolServer,
                                                screenshots: Path) -> None:
    sign_in(page, school_server, ADMIN_KEY, ADMIN_SECRET)
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("Name").fill("Mr Okafor")
    page.get_by_label("teacher", exact=True).check()
    page.get_by_label("Classes (scope teacher; one per line)").fill("team:Class 2")
    page.get_by_role("button", name="Add credential").click()
    notice = page.locator(".notice").inner_text()
    key, secret = re.findall(r"Credential (\S+) added\. Its secret, shown this once: (\S+)", notice)[0]
    shot(page, screenshots, "09-admin")
    page.get_by_role("button", name=f"Revoke {key}").click()
    # The page before held a notice too (the one that gave the secret): wait for the new one.
    page.locator(".notice", has_text="revoked").wait_for()
    refused = httpx.get(f"{school_server.url}/api/classes", auth=(key, secret))
    assert refused.status_code == 401


@pytest.mark.parametrize("path", ["/", "/dashboard", "/dashboard/classes/team%3AClass%201",
                                  f"/dashboard/learners/{quote(LEARNER_3, safe='')}",
                                  "/dashboard/admin"])
def test_pages_pass_an_automated_accessibility_check(browser: Any, school_server: SchoolServer,
                                                     axe_source: str, path: str) -> None:
    # The pages' CSP refuses inline scripts, axe's included: this context alone bypasses it.
    # Closed after: a signed-in page left open polls /dashboard/status for the rest of the
    # session, and the in-process school server's routing showed up in other tests' counts.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        if path != "/":
            sign_in(page, school_server, ADMIN_KEY, ADMIN_SECRET)
        page.goto(school_server.url + path)
        page.add_script_tag(content=axe_source)
        result = page.evaluate("""async () => {
            const tags = ['wcag2a', 'wcag2aa', 'wcag21aa'];
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }""")
    finally:
        context.close()
    assert result == [], result



def test_the_heat_map_sorts_from_the_keyboard(page: Page, school_server: SchoolServer) -> None:
    sign_in(page, school_server, *TEACHER)
    open_class_1(page)
    # From the top of the page: skip link, then on through the controls to the sort links.
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.closest('th.comp') !== null")
        if focused:
            break
    assert focused, "no competency column could be reached with Tab"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=c%3A"))
    values = heat_values(page, 1)
    assert values == sorted(values, reverse=True)


def test_a_class_of_40_by_30_competencies_fits_the_window(page: Page, school_server: SchoolServer,
                                                         screenshots: Path) -> None:
    sign_in(page, school_server, ADMIN_KEY, ADMIN_SECRET)
    page.goto(f"{school_server.url}/dashboard/classes/{quote(WIDE_CLASS, safe='')}")
    assert page.locator("#heatmap tbody tr").count() == 40
    assert page.locator("#heatmap thead th.comp").count() == 30
    overflow = page.evaluate("() => { const s = document.querySelector('.scroll');"
                             " return s.scrollWidth - s.clientWidth; }")
    assert overflow <= 0, f"the heat-map is {overflow} px wider than a 1400 px window"
    shot(page, screenshots, "10-class-40-by-30")
