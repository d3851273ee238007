"""The xAPI versions we speak, and how a validation run learns which one applies."""

from __future__ import annotations

import re
from typing import Any

SUPPORTED = ("1.0.3", "2.0.0")
_HEADER = re.compile(r"^(1\.0(?:\.\d+)?|2\.0(?:\.\d+)?)$")
_STATEMENT_VERSION = re.compile(r"^(1\.0(?:\.\d+)?|2\.0(?:\.\d+)?)$")


class UnsupportedVersion(ValueError):
    pass


def negotiate(header: str | None) -> str:
    """Map an X-Experience-API-Version header to the version we answer with: every 1.0.x is
    answered as 1.0.3 (Communication 3.3: patch versions are compatible), every 2.0.x as 2.0.0."""
    if header is None or header.strip() == "":
        raise UnsupportedVersion("the X-Experience-API-Version header is required")
    if not _HEADER.match(header.strip()):
        raise UnsupportedVersion(
            f"X-Experience-API-Version '{header}' is not supported (use 1.0.x or 2.0.0)"
        )
    return "2.0.0" if header.strip().startswith("2") else "1.0.3"


def valid_statement_version(value: str) -> bool:
    return bool(_STATEMENT_VERSION.fullmatch(value))  # match would take "1.0.3\n"


def is_v2(context: Any) -> bool:
    return isinstance(context, dict) and str(context.get("version", "")).startswith("2")
