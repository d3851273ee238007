"""Data model rules (xAPI Data 2.4), one rule per test, through the single validation entry point."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.statement import Statement
from schemas.validate import StatementInvalid, validate_statement, validate_statements
from tests.statements import activity, agent, statement

V1, V2 = "1.0.3", "2.0.0"


def rejected(doc: Any, version: str = V1) -> str:
    with pytest.raises(StatementInvalid) as caught:
        validate_statement(doc, version)
    return str(caught.value)


def test_a_minimal_statement_is_valid() -> None:
    assert validate_statement(statement(), V1).model.verb.id.endswith("completed")


def test_statement_must_have_an_actor() -> None:
    doc = statement()
    del doc["actor"]
    assert rejected(doc) == "statement.actor: is required"


def test_statement_must_have_a_verb() -> None:
    doc = statement()
    del doc["verb"]
    assert rejected(doc) == "statement.verb: is required"


def test_statement_must_have_an_object() -> None:
    doc = statement()
    del doc["object"]
    assert rejected(doc) == "statement.object: is required"


def test_unknown_statement_property_is_rejected() -> None:
    assert "statement.colour: is not a property" in rejected(statement(colour="red"))


def test_unknown_property_deep_inside_is_rejected_with_its_path() -> None:
    doc = statement(result={"score": {"scaled": 0.5, "percent": 50}})
    assert "statement.result.score.percent: is not a property" in rejected(doc)


def test_property_names_are_case_sensitive() -> None:
    assert "statement.Actor" in rejected({**statement(), "Actor": agent()})


def test_null_values_are_rejected() -> None:
    assert rejected(statement(result={"success": None})) == "statement.result.success: must not be null"


SUBSTATEMENT = {"objectType": "SubStatement", "actor": agent(), "verb": {"id": "http://example.org/v"},
                "object": activity()}


@pytest.mark.parametrize(("doc", "path"), [
    (statement(verb=None), "statement.verb"),
    (statement(id=None), "statement.id"),
    (statement(actor={"mbox": None}), "statement.actor.mbox"),
    (statement(context=None), "statement.context"),
    (statement(context={"contextActivities": {"parent": None}}),
     "statement.context.contextActivities.parent"),
    (statement(context={"contextActivities": {"parent": [None]}}),
     "statement.context.contextActivities.parent[0]"),
    (statement(context={"extensions": None}), "statement.context.extensions"),
    (statement(object={**activity(), "definition": {"name": {"en-US": None}}}),
     "statement.object.definition.name.en-US"),
    (statement(result={"score": {"scaled": None}}), "statement.result.score.scaled"),
    (statement(object={**SUBSTATEMENT, "result": {"response": None}}), "statement.object.result.response"),
])
def test_a_null_is_refused_wherever_a_property_may_be_and_named_by_its_path(doc: Any, path: str) -> None:
    assert rejected(doc) == f"{path}: must not be null"


def _nullable_nodes(schema: Any, path: str = "") -> list[str]:
    if isinstance(schema, dict):
        found = [path] if schema.get("type") == "nullable" else []
        return found + [p for key, value in schema.items() if key not in ("cls", "function")
                        for p in _nullable_nodes(value, f"{path}/{key}")]
    if isinstance(schema, list):
        return [p for i, value in enumerate(schema) for p in _nullable_nodes(value, f"{path}[{i}]")]
    return []


def test_no_property_of_any_object_in_a_statement_accepts_null() -> None:
    assert _nullable_nodes(Statement.__pydantic_core_schema__) == []


def test_an_extension_value_may_be_null() -> None:
    doc = statement(context={"extensions": {"http://example.org/ext": None}})
    context = validate_statement(doc, V1).model.context
    assert context is not None and context.extensions == {"http://example.org/ext": None}


def test_agent_with_two_ifis_is_rejected() -> None:
    doc = statement(actor={"mbox": "mailto:a@example.org", "openid": "https://id.example.org/a"})
    assert "exactly one of mbox, mbox_sha1sum, openid, account (found 2" in rejected(doc)


def test_agent_without_an_ifi_is_rejected() -> None:
    assert "found 0: none" in rejected(statement(actor={"name": "Ada"}))


def test_mbox_must_be_a_mailto_iri() -> None:
    assert "statement.actor.mbox: must be a 'mailto:' IRI" in rejected(
        statement(actor={"mbox": "ada@example.org"}))


def test_mbox_sha1sum_must_be_40_hex_digits() -> None:
    assert "mbox_sha1sum: must be the 40 hex digits" in rejected(
        statement(actor={"mbox_sha1sum": "abc"}))


def test_openid_must_be_an_iri() -> None:
    assert "openid: must be an absolute IRI" in rejected(statement(actor={"openid": "not an iri"}))


def test_account_needs_home_page_and_name() -> None:
    assert "statement.actor.account.name: is required" in rejected(
        statement(actor={"account": {"homePage": "https://lms.example.org"}}))


def test_account_is_a_valid_ifi() -> None:
    doc = statement(actor={"account": {"homePage": "https://lms.example.org", "name": "42"}})
    assert validate_statement(doc, V1).model.actor.account is not None


def test_anonymous_group_must_have_members() -> None:
    assert "anonymous Group (no IFI) must list at least one member" in rejected(
        statement(actor={"objectType": "Group", "name": "Team"}))


def test_identified_group_may_have_no_members() -> None:
    doc = statement(actor={"objectType": "Group", "mbox": "mailto:team@example.org"})
    assert validate_statement(doc, V1).model.actor.objectType == "Group"


def test_group_members_must_be_agents_not_groups() -> None:
    member = {"objectType": "Group", "mbox": "mailto:inner@example.org"}
    doc = statement(actor={"objectType": "Group", "member": [member]})
    assert "statement.actor.member[0].objectType" in rejected(doc)


def test_verb_id_must_be_an_iri() -> None:
    assert "statement.verb.id: must be an absolute IRI" in rejected(statement(verb={"id": "completed"}))


def test_language_map_keys_must_be_language_tags() -> None:
    doc = statement(verb={"id": "http://example.org/v", "display": {"english!": "done"}})
    assert "'english!' is not an RFC 5646 language tag" in rejected(doc)


def test_a_language_tag_may_hold_each_extension_singleton_once() -> None:
    """RFC 5646 2.2.6; the 1.0.3 and 2.0.0 conformance suites send 'ar-a-aaa-b-bbb-a-ccc'."""
    described = {"objectType": "Activity", "id": "https://example.org/a",
                 "definition": {"description": {"ar-a-aaa-b-bbb-a-ccc": "x"}}}
    doc = statement(object=described)
    assert "the extension singleton 'a' appears twice" in rejected(doc)


@pytest.mark.parametrize("tag", ["en-a-bbb-b-ccc", "en-x-a-a", "de-CH-1996", "zh-Hant-TW"])
def test_language_tags_with_distinct_singletons_or_private_use_are_accepted(tag: str) -> None:
    validate_statement(statement(verb={"id": "http://example.org/v", "display": {tag: "done"}}),
                       V1)


def test_activity_id_must_be_an_iri() -> None:
    assert "statement.object.id: must be an absolute IRI" in rejected(statement(object={"id": "x y"}))


def test_unknown_object_type_is_rejected() -> None:
    assert "objectType 'Course' is not allowed here" in rejected(
        statement(object={"objectType": "Course", "id": "https://example.org/c"}))


def test_interaction_components_need_an_interaction_type() -> None:
    definition = {"choices": [{"id": "a"}]}
    assert "require interactionType" in rejected(
        statement(object={"id": "https://example.org/q", "definition": definition}))


def test_interaction_components_must_fit_the_interaction_type() -> None:
    definition = {"interactionType": "true-false", "choices": [{"id": "a"}]}
    assert "'choices' is not allowed for interactionType 'true-false'" in rejected(
        statement(object={"id": "https://example.org/q", "definition": definition}))


def test_interaction_component_ids_are_unique() -> None:
    definition = {"interactionType": "choice", "choices": [{"id": "a"}, {"id": "a"}]}
    assert "must be unique" in rejected(
        statement(object={"id": "https://example.org/q", "definition": definition}))


def test_extension_keys_must_be_iris() -> None:
    definition = {"extensions": {"level": 3}}
    assert "extension key 'level' must be an absolute IRI" in rejected(
        statement(object={"id": "https://example.org/q", "definition": definition}))


def test_statement_ref_needs_a_uuid() -> None:
    assert "statement.object.id: must be a UUID" in rejected(
        statement(object={"objectType": "StatementRef", "id": "42"}))


def test_substatement_must_not_have_an_id() -> None:
    sub = {"objectType": "SubStatement", "id": "0c5f6a2e-4b2a-4d6c-9e4b-3c6a1c8f9d10",
           "actor": agent(), "verb": {"id": "http://example.org/v"}, "object": activity()}
    assert "a SubStatement must not have 'id'" in rejected(statement(object=sub))


@pytest.mark.parametrize("name", ["stored", "version", "authority"])
def test_substatement_must_not_have_lrs_assigned_properties(name: str) -> None:
    sub = {"objectType": "SubStatement", name: "x", "actor": agent(),
           "verb": {"id": "http://example.org/v"}, "object": activity()}
    assert f"a SubStatement must not have '{name}'" in rejected(statement(object=sub))


def test_substatement_must_not_nest_a_substatement() -> None:
    inner = {"objectType": "SubStatement", "actor": agent(), "verb": {"id": "http://e.org/v"},
             "object": activity()}
    sub = {**inner, "object": inner}
    assert "must not contain another SubStatement" in rejected(statement(object=sub))


def test_scaled_score_is_between_minus_one_and_one() -> None:
    assert "statement.result.score.scaled" in rejected(statement(result={"score": {"scaled": 1.5}}))


def test_raw_score_lies_between_min_and_max() -> None:
    doc = statement(result={"score": {"raw": 11, "min": 0, "max": 10}})
    assert "score.raw must not be greater than score.max" in rejected(doc)


def test_score_min_is_not_greater_than_max() -> None:
    assert "score.min must not be greater than score.max" in rejected(
        statement(result={"score": {"min": 6, "max": 5}}))


def test_score_min_may_equal_max() -> None:
    """Real assessments send zero-weight problems as min == max == raw."""
    validate_statement(statement(result={"score": {"raw": 0, "min": 0, "max": 0}}), V1)


def test_duration_is_iso_8601() -> None:
    assert "statement.result.duration: must be an ISO 8601 duration" in rejected(
        statement(result={"duration": "90 minutes"}))


def test_a_duration_or_timestamp_followed_by_a_line_break_is_refused() -> None:
    """Python's '$' matches before a final line break: "PT1S\n" passed as a duration."""
    assert "statement.result.duration: must be an ISO 8601 duration" in rejected(
        statement(result={"duration": "PT1S\n"}))
    assert "statement.timestamp" in rejected(statement(timestamp="2026-10-01T10:00:00Z\n"))


def test_success_is_a_boolean_not_a_string() -> None:
    assert "statement.result.success" in rejected(statement(result={"success": "true"}))


def test_registration_is_a_uuid() -> None:
    assert "statement.context.registration: must be a UUID" in rejected(
        statement(context={"registration": "abc"}))


def test_team_is_a_group() -> None:
    assert "statement.context.team" in rejected(statement(context={"team": agent()}))


def test_context_activities_accept_a_single_activity() -> None:
    doc = statement(context={"contextActivities": {"parent": activity("course")}})
    parents = validate_statement(doc, V1).model.context.contextActivities.parent  # type: ignore[union-attr]
    assert [a.id for a in parents or []] == ["https://example.org/activities/course"]


def test_revision_is_not_allowed_when_the_object_is_an_agent() -> None:
    doc = statement(object=agent("bob"), context={"revision": "2"})
    assert "context.revision may only be used when the object is an Activity" in rejected(doc)


def test_platform_is_not_allowed_when_the_object_is_a_group() -> None:
    group = {"objectType": "Group", "mbox": "mailto:t@example.org"}
    assert "context.platform may only be used" in rejected(
        statement(object=group, context={"platform": "LMS"}))


@pytest.mark.parametrize("name", ["revision", "platform"])
def test_revision_and_platform_are_not_allowed_when_the_object_is_a_statement_ref(name: str) -> None:
    ref = {"objectType": "StatementRef", "id": "6f5e8a3c-4f0d-4b8e-9d7a-1c2b3a4d5e6f"}
    assert f"context.{name} may only be used" in rejected(
        statement(object=ref, context={name: "x"}))


@pytest.mark.parametrize("name", ["revision", "platform"])
def test_revision_and_platform_are_not_allowed_when_the_object_is_a_substatement(name: str) -> None:
    sub = {"objectType": "SubStatement", **statement()}
    assert f"context.{name} may only be used" in rejected(
        statement(object=sub, context={name: "x"}))


def test_revision_and_platform_are_allowed_when_the_object_is_an_activity() -> None:
    validate_statement(statement(context={"revision": "2", "platform": "LMS"}), V1)


def test_context_language_is_a_language_tag() -> None:
    assert "statement.context.language" in rejected(statement(context={"language": "en_US"}))


def test_context_agents_are_not_part_of_version_1() -> None:
    ctx = {"contextAgents": [{"objectType": "contextAgent", "agent": agent("coach")}]}
    assert "'contextAgents' is an xAPI 2.0.0 property" in rejected(statement(context=ctx), V1)


def test_context_agents_are_accepted_in_version_2() -> None:
    ctx = {"contextAgents": [{"objectType": "contextAgent", "agent": agent("coach"),
                              "relevantTypes": ["https://example.org/types/coach"]}]}
    assert validate_statement(statement(context=ctx), V2).model.context is not None


def test_context_group_relevant_types_must_not_be_empty() -> None:
    group = {"objectType": "Group", "mbox": "mailto:t@example.org"}
    ctx = {"contextGroups": [{"objectType": "contextGroup", "group": group, "relevantTypes": []}]}
    assert "statement.context.contextGroups[0].relevantTypes" in rejected(statement(context=ctx), V2)


def test_timestamp_is_iso_8601() -> None:
    assert "statement.timestamp: must be an ISO 8601 timestamp" in rejected(
        statement(timestamp="yesterday"))


def test_timestamp_must_not_use_negative_zero_offset() -> None:
    assert "-00:00" in rejected(statement(timestamp="2024-05-01T10:00:00-00:00"))


def test_timestamp_without_offset_is_accepted_in_version_1() -> None:
    assert validate_statement(statement(timestamp="2024-05-01T10:00:00"), V1)


def test_timestamp_needs_an_offset_in_version_2() -> None:
    assert "must include a time zone offset in xAPI 2.0.0" in rejected(
        statement(timestamp="2024-05-01T10:00:00"), V2)


def test_statement_version_must_be_an_xapi_version() -> None:
    assert "statement.version: '0.95' is not an xAPI version" in rejected(statement(version="0.95"))


def test_a_statement_version_followed_by_a_line_break_is_not_an_xapi_version() -> None:
    assert "statement.version" in rejected(statement(version="1.0.3\n"))


def test_voiding_statement_must_target_a_statement_ref() -> None:
    doc = statement(verb={"id": "http://adlnet.gov/expapi/verbs/voided"})
    assert "a voiding statement's object must be a StatementRef" in rejected(doc)


def test_attachment_needs_display_content_type_length_and_sha2() -> None:
    doc = statement(attachments=[{"usageType": "https://example.org/essay"}])
    message = rejected(doc)
    for name in ("display", "contentType", "length", "sha2"):
        assert f"statement.attachments[0].{name}: is required" in message


def test_authority_group_has_exactly_two_members() -> None:
    group = {"objectType": "Group", "member": [agent("a")]}
    assert "an authority Group must have exactly two member Agents" in rejected(
        statement(authority=group))


def test_authority_group_is_anonymous() -> None:
    group = {"objectType": "Group", "mbox": "mailto:pair@example.org",
             "member": [agent("a"), agent("b")]}
    assert "an authority Group must be anonymous" in rejected(statement(authority=group))


def test_one_bad_statement_rejects_the_batch_and_names_its_index() -> None:
    with pytest.raises(StatementInvalid) as caught:
        validate_statements([statement(), statement(verb={"id": "nope"})], V1)
    assert str(caught.value).startswith("statements[1].verb.id")


def test_an_empty_batch_is_rejected() -> None:
    with pytest.raises(StatementInvalid, match="must not be empty"):
        validate_statements([], V1)


# --- IRIs, mboxes and the lengths the statement index keys on ----------------------------------

def test_iri_with_a_percent_not_before_two_hex_digits_is_rejected() -> None:
    assert rejected(statement(object=activity() | {"id": "https://example.org/a%zz"})) == (
        "statement.object.id: must be an absolute IRI (a scheme such as 'https:', no spaces, and"
        " '%' only before two hex digits)")


def test_iri_ending_in_a_lone_percent_is_rejected() -> None:
    assert "'%' only before two hex digits" in rejected(
        statement(verb={"id": "https://example.org/verbs/done%"}))


def test_iri_with_percent_encoded_octets_is_valid() -> None:
    doc = statement(object=activity() | {"id": "https://example.org/a%2Fb%C3%A9"})
    assert validate_statement(doc, V1).model.object.id.endswith("%C3%A9")  # type: ignore[union-attr]


def test_mbox_with_a_percent_not_before_two_hex_digits_is_rejected() -> None:
    assert "statement.actor.mbox: must be a 'mailto:' IRI" in rejected(
        statement(actor={"mbox": "mailto:ada%zz@example.org"}))


def test_mbox_local_part_is_at_most_64_octets() -> None:
    assert rejected(statement(actor={"mbox": f"mailto:{'a' * 100_000}@example.org"})) == (
        "statement.actor.mbox: the local part of an email address is at most 64 octets"
        " (RFC 5321); this one has 100000")


def test_mbox_local_part_of_64_octets_is_valid() -> None:
    validate_statement(statement(actor={"mbox": f"mailto:{'a' * 64}@example.org"}), V1)


def test_mbox_local_part_is_counted_in_octets_of_utf8() -> None:
    assert "this one has 66" in rejected(statement(actor={"mbox": f"mailto:{'é' * 33}@example.org"}))


def test_mbox_address_is_at_most_254_octets() -> None:
    domain = "d" * 247 + ".org"  # 'ada@' and 251 more: 255 octets
    assert rejected(statement(actor={"mbox": f"mailto:ada@{domain}"})) == (
        "statement.actor.mbox: an email address is at most 254 octets (RFC 5321); this one has 255")


def test_activity_id_is_at_most_1024_octets_of_utf8() -> None:
    long_id = "https://example.org/" + "é" * 510  # 20 + 1,020 octets
    assert rejected(statement(object=activity() | {"id": long_id})) == (
        "statement.object.id: must be at most 1024 octets of UTF-8 (it has 1040)")


def test_activity_id_of_1024_octets_is_valid() -> None:
    exact = "https://example.org/" + "a" * 1004
    validate_statement(statement(object=activity() | {"id": exact}), V1)


def test_verb_id_is_at_most_1024_octets() -> None:
    assert "statement.verb.id: must be at most 1024 octets" in rejected(
        statement(verb={"id": "https://example.org/" + "v" * 1005}))


def test_context_activity_id_is_at_most_1024_octets() -> None:
    parent = {"id": "https://example.org/" + "p" * 1005}
    assert "statement.context.contextActivities.parent[0].id: must be at most 1024 octets" in rejected(
        statement(context={"contextActivities": {"parent": [parent]}}))


def test_openid_is_at_most_1024_octets() -> None:
    assert "statement.actor.openid: must be at most 1024 octets" in rejected(
        statement(actor={"openid": "https://id.example.org/" + "o" * 1002}))


def test_account_home_page_is_at_most_1024_octets() -> None:
    account = {"homePage": "https://sis.example.org/" + "h" * 1001, "name": "s42"}
    assert "statement.actor.account.homePage: must be at most 1024 octets" in rejected(
        statement(actor={"account": account}))


def test_account_name_is_at_most_256_octets() -> None:
    account = {"homePage": "https://sis.example.org", "name": "n" * 257}
    assert rejected(statement(actor={"account": account})) == (
        "statement.actor.account.name: must be at most 256 octets of UTF-8 (it has 257)")


def test_agent_name_is_at_most_512_octets() -> None:
    assert rejected(statement(actor={**agent(), "name": "n" * 513})) == (
        "statement.actor.name: must be at most 512 octets of UTF-8 (it has 513)")


def test_extension_keys_and_other_iris_have_no_length_bound() -> None:
    long_iri = "https://example.org/" + "x" * 5000
    doc = statement(result={"extensions": {long_iri: 1}},
                    object=activity() | {"definition": {"moreInfo": long_iri}})
    validate_statement(doc, V1)


def test_a_duration_in_weeks_stands_alone() -> None:
    assert "weeks" in rejected(statement(result={"duration": "P4W1D"}))
    validate_statement(statement(result={"duration": "P4W"}), V1)
