"""JSON responses rendered with orjson."""

from __future__ import annotations

import json
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.responses import Response

from schemas.base import parse_timestamp


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            # orjson stops at 254 levels; a statement stored before the depth limit existed may
            # nest nearly that deep on its own, and a page wraps it in two more.
            return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def http_date(stored: str) -> str:
    """A stored time (ISO 8601) as the HTTP-date of Last-Modified (RFC 9110)."""
    return format_datetime(parse_timestamp(stored), usegmt=True)
