"""The About resource (Communication 2.8)."""

from __future__ import annotations

from fastapi import APIRouter

from lrs import __version__
from lrs.api.openapi import ABOUT_GET
from lrs.api.responses import JSON
from schemas.version import SUPPORTED

router = APIRouter(tags=["about"])


@router.api_route("/about", methods=["GET"], openapi_extra=ABOUT_GET)
@router.api_route("/about", methods=["HEAD"], openapi_extra=ABOUT_GET)
async def about() -> JSON:
    return JSON({
        "version": list(SUPPORTED),
        "extensions": {"https://github.com/lrs/lrs/about/server": {"name": "lrs",
                                                                   "version": __version__}},
    })
