"""Tracing that a deployment sets up in the server's process (opentelemetry-instrument, a
site-wide SDK) never receives a request: a span would carry the query string, and a query names
learners (agent=...), to wherever the traces go."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import trace

from tests.conftest import XAPIClient


class RecordingTracer(trace.NoOpTracer):
    def __init__(self, spans: list[dict[str, Any]]) -> None:
        self.spans = spans

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        self.spans.append({"name": name, **kwargs})
        return super().start_span(name, *args, **kwargs)

    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.spans.append({"name": name, **kwargs})
        return super().start_as_current_span(name, *args, **kwargs)


class RecordingTracerProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return RecordingTracer(self.spans)


@pytest.fixture
def tracing(monkeypatch: pytest.MonkeyPatch) -> RecordingTracerProvider:
    """A tracer provider configured for the whole process, as an SDK's would be."""
    provider = RecordingTracerProvider()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    return provider


def test_a_tracer_set_up_in_the_process_receives_no_request(
        xapi: XAPIClient, tracing: RecordingTracerProvider) -> None:
    agent = json.dumps({"mbox": "mailto:child@school.example.org"})
    assert xapi.get(agent=agent).status_code == 200
    assert xapi.request("GET", "/xAPI/about").status_code == 200
    assert tracing.spans == []
