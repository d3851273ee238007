"""POST /api/sql runs under the views' memory limit, which the query cannot raise.

Apart from tests/e2e/test_sql_sandbox.py because its server has a time limit of minutes: the
query fills memory up to the limit, which on a loaded machine took longer than the sandbox's
three seconds and was refused for time instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lrs.config import Settings
from tests.conftest import XAPIClient
from tests.e2e.test_sql_sandbox import refused, run, serve_analyst


@pytest.fixture
def patient_analyst(settings: Settings) -> Iterator[XAPIClient]:
    yield from serve_analyst(settings, timeout=120.0)


def test_sql_runs_under_the_views_memory_limit_it_cannot_raise(
        patient_analyst: XAPIClient) -> None:
    refused(patient_analyst, "SET memory_limit = '100GB'", "not SET")
    refused(patient_analyst, "SELECT range(60000000) AS huge", "LRS_VIEWS_MEMORY_LIMIT")
    assert run(patient_analyst, "SELECT 1 AS one").json()["rows"] == [[1]]
