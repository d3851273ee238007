"""Who sees what through the API: a teacher sees their classes' learners only, a learner only
themself, by any route, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from lrs.errors import BadRequest
from tests.school import CLASS_A, CLASS_B, School, key_of, school_on


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def school(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[School]:
    with school_on(request, tmp_path_factory.mktemp("school")) as opened:
        yield opened


def q(value: str) -> str:
    return quote(value, safe="")


LEARNER_ROUTES = ("profile", "mastery", "engagement")
CLASS_ROUTES = ("engagement", "mastery", "learners")


def test_a_teacher_reads_the_views_of_their_own_class(school: School) -> None:
    for route in CLASS_ROUTES:
        assert school.teacher_a.request("GET", f"/api/classes/{q(CLASS_A)}/{route}").status_code == 200
    learners = school.teacher_a.request("GET", f"/api/classes/{q(CLASS_A)}/learners").json()["learners"]
    assert {row["learner"] for row in learners} == {key_of("ada"), key_of("bob")}


def test_a_teacher_reads_the_learners_of_their_own_class(school: School) -> None:
    for route in LEARNER_ROUTES:
        response = school.teacher_a.request("GET", f"/api/learners/{q(key_of('bob'))}/{route}")
        assert response.status_code == 200, (route, response.text)


def test_a_teacher_cannot_read_another_class(school: School) -> None:
    for route in CLASS_ROUTES:
        response = school.teacher_a.request("GET", f"/api/classes/{q(CLASS_B)}/{route}")
        assert response.status_code == 403, route
        assert "may not see class" in response.json()["error"]["message"]


def test_a_teacher_cannot_read_a_learner_of_another_class(school: School) -> None:
    for route in LEARNER_ROUTES:
        response = school.teacher_a.request("GET", f"/api/learners/{q(key_of('cat'))}/{route}")
        assert response.status_code == 403, route
    as_of = school.teacher_a.request("GET", f"/api/learners/{q(key_of('cat'))}/mastery",
                                     params={"as_of": "2030-01-01T00:00:00Z"})
    assert as_of.status_code == 403


def test_a_refusal_does_not_tell_whether_the_learner_exists(school: School) -> None:
    other = school.teacher_a.request("GET", f"/api/learners/{q(key_of('cat'))}/profile")
    nobody = school.teacher_a.request("GET", f"/api/learners/{q(key_of('nobody'))}/profile")
    assert other.status_code == nobody.status_code == 403
    assert other.json()["error"]["message"].replace("cat", "X") \
        == nobody.json()["error"]["message"].replace("nobody", "X")


def test_class_ids_that_only_look_like_a_teachers_class_are_refused(school: School) -> None:
    for sneaky in ("team:7a", "team:7A ", " team:7A", "team:7A/../team:7B", "team:7A/learners/x",
                   "team:7B%00", "team:7*", "%"):
        response = school.teacher_a.request("GET", f"/api/classes/{q(sneaky)}/engagement")
        assert response.status_code in (400, 403), sneaky


def test_a_teacher_lists_only_their_classes(school: School) -> None:
    listed = school.teacher_a.request("GET", "/api/classes").json()["classes"]
    assert [c["class_id"] for c in listed] == [CLASS_A]
    everything = school.admin.request("GET", "/api/classes").json()["classes"]
    assert [c["class_id"] for c in everything] == [CLASS_A, CLASS_B]


def test_a_teachers_search_finds_only_their_learners(school: School) -> None:
    assert school.teacher_a.request("GET", "/api/learners", params={"q": "cat"}).json()["learners"] == []
    found = school.teacher_a.request("GET", "/api/learners", params={"q": "example.org"}).json()
    assert {row["learner"] for row in found["learners"]} == {key_of("ada"), key_of("bob")}


def test_search_finds_learners_by_name_or_identifier_in_any_case(school: School) -> None:
    by_name = school.admin.request("GET", "/api/learners", params={"q": "CAT"}).json()["learners"]
    assert [(r["learner"], r["name"]) for r in by_name] == [(key_of("cat"), "Cat")]
    by_id = school.admin.request("GET", "/api/learners", params={"q": "dan@exa"}).json()["learners"]
    assert [r["learner"] for r in by_id] == [key_of("dan")]


def test_search_wildcards_are_literal(school: School) -> None:
    for wildcard in ("%", "_", "\\"):
        found = school.admin.request("GET", "/api/learners", params={"q": wildcard}).json()
        assert found["learners"] == [], wildcard


def test_search_needs_text(school: School) -> None:
    response = school.admin.request("GET", "/api/learners", params={"q": "  "})
    assert response.status_code == 400
    assert "q:" in response.json()["error"]["message"]


def test_a_learner_reads_only_their_own_views(school: School) -> None:
    for route in LEARNER_ROUTES:
        assert school.ada.request("GET", f"/api/learners/{q(key_of('ada'))}/{route}").status_code == 200
        assert school.ada.request("GET", f"/api/learners/{q(key_of('bob'))}/{route}").status_code == 403


def test_a_learner_reads_no_class_view_or_class_list(school: School) -> None:
    for route in CLASS_ROUTES:
        assert school.ada.request("GET", f"/api/classes/{q(CLASS_A)}/{route}").status_code == 403
    assert school.ada.request("GET", "/api/classes").status_code == 403


def test_a_learners_search_finds_only_themself(school: School) -> None:
    found = school.ada.request("GET", "/api/learners", params={"q": "example.org"}).json()["learners"]
    assert [r["learner"] for r in found] == [key_of("ada")]


def test_teachers_and_learners_read_no_statements_sql_documents_or_persons(school: School) -> None:
    for who in (school.teacher_a, school.ada):
        assert who.get().status_code == 403
        assert who.request("POST", "/api/sql", json={"sql": "SELECT 1"}).status_code == 403
        assert who.request("GET", "/xAPI/agents",
                           params={"agent": '{"mbox": "mailto:cat@example.org"}'}).status_code == 403
        assert who.request("GET", "/xAPI/activities/state", params={
            "activityId": "https://example.org/a", "agent": '{"mbox": "mailto:cat@example.org"}',
            "stateId": "s"}).status_code == 403
        assert who.post({"actor": {"mbox": "mailto:cat@example.org"},
                         "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                         "object": {"id": "https://example.org/a"}}).status_code == 403


def test_a_revoked_teacher_is_refused(school: School) -> None:
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    key, secret = store.issue_credential("Temp", ["teacher"], classes=[CLASS_A])
    teacher = school.admin.as_credential(key, secret)
    assert teacher.request("GET", "/api/classes").status_code == 200
    store.revoke_credential(key)
    teacher.http.app.state.services.authenticator._verified.clear()  # type: ignore[attr-defined]
    assert teacher.request("GET", "/api/classes").status_code == 401


def test_reissuing_a_teacher_rebinds_their_classes(school: School) -> None:
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    key, secret = store.issue_credential("Moving", ["teacher"], classes=[CLASS_A])
    key, secret = store.issue_credential("Moving", ["teacher"], key=key, classes=[CLASS_B])
    teacher = school.admin.as_credential(key, secret)
    assert teacher.request("GET", f"/api/classes/{q(CLASS_A)}/engagement").status_code == 403
    assert teacher.request("GET", f"/api/classes/{q(CLASS_B)}/engagement").status_code == 200


@pytest.mark.parametrize(("scopes", "classes", "learner", "rule"), [
    (["teacher"], [], None, "needs the classes"),
    (["learner"], [], None, "needs the learner"),
    (["statements/read"], ["team:7A"], None, "only to a credential with scope teacher"),
    (["statements/read"], [], "ada@example.org", "only to a credential with scope learner"),
    (["teacher", "learner"], ["team:7A"], "ada@example.org", "not both"),
    (["teacher"], ["team:\x007A"], None, "printable"),
])
def test_a_binding_that_breaks_a_rule_is_refused(school: School, scopes: list[str], classes: list[str],
                                                 learner: str | None, rule: str) -> None:
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    with pytest.raises(BadRequest, match=rule):
        store.issue_credential("bad", scopes, classes=classes, learner=learner)


def test_a_learner_given_as_an_email_is_bound_to_its_mbox_key(school: School) -> None:
    store = school.admin.http.app.state.services.store  # type: ignore[attr-defined]
    key, _ = store.issue_credential("Bob", ["learner"], learner="bob@Example.org")
    assert store.credential(key).learner == "mbox:mailto:bob@example.org"
