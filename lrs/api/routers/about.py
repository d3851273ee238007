"""The About resource (Communication 2.8)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lrs import __version__
from lrs.api.middleware import VERSION_HEADER
from lrs.api.openapi import ABOUT_GET
from lrs.api.responses import JSON
from schemas.version import SUPPORTED

router = APIRouter(tags=["about"])


@router.api_route("/about", methods=["GET"], openapi_extra=ABOUT_GET)
@router.api_route("/about", methods=["HEAD"], openapi_extra=ABOUT_GET)
async def about(request: Request) -> JSON:
    """Every version we speak (one per major version, Communication 2.8.s5.b1); a client that
    speaks 1.0.x is told of 1.0.3 alone, as the 1.0.3 conformance suite requires (XAPI-00316:
    only 0.9, 0.95 and 1.0.x), and it could not use 2.0.0 anyway."""
    asked = (request.headers.get(VERSION_HEADER) or "").strip()
    versions = [v for v in SUPPORTED if v.startswith("1.0")] if asked.startswith("1.") else SUPPORTED
    return JSON({
        "version": list(versions),
        "extensions": {"https://github.com/lrs/lrs/about/server": {"name": "lrs",
                                                                   "version": __version__}},
    })
