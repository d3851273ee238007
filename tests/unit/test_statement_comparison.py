"""Statement comparison (Data 2.3.1): when two statements with one id are the same statement."""

from __future__ import annotations

from schemas.compare import same_statement
from tests.statements import statement


def with_duration(duration: str) -> dict[str, object]:
    return statement(result={"duration": duration})


def test_durations_are_compared_to_a_hundredth_of_a_second() -> None:
    assert same_statement(with_duration("PT1.001S"), with_duration("PT1.009S"))
    assert same_statement(with_duration("PT1S"), with_duration("PT1.00S"))
    assert same_statement(with_duration("P1DT2H4.567S"), with_duration("P1DT2H4.5611S"))


def test_durations_that_differ_by_a_hundredth_are_different() -> None:
    assert not same_statement(with_duration("PT1.01S"), with_duration("PT1.02S"))


def test_a_substatements_duration_is_compared_the_same_way() -> None:
    def wrapping(duration: str) -> dict[str, object]:
        return statement(object={"objectType": "SubStatement", **with_duration(duration)})

    assert same_statement(wrapping("PT3.14159S"), wrapping("PT3.14S"))


def test_a_context_activity_sent_alone_is_the_same_as_a_list_of_one() -> None:
    parent = {"id": "https://example.org/course"}
    assert same_statement(statement(context={"contextActivities": {"parent": parent}}),
                          statement(context={"contextActivities": {"parent": [parent]}}))
