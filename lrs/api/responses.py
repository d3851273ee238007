"""JSON responses rendered with orjson."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

import orjson
from starlette.responses import Response

from schemas.base import parse_timestamp


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def http_date(stored: str) -> str:
    """A stored time (ISO 8601) as the HTTP-date of Last-Modified (RFC 9110)."""
    return format_datetime(parse_timestamp(stored), usegmt=True)
