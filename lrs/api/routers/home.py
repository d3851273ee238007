"""`/docs`, the API viewer (the page at `/` is the dashboard's sign-in, lrs/dashboard/pages.py).

It works offline: Swagger UI's script, stylesheet and icon are served from the installed
`fastapi_offline` package (Swagger UI 5, which renders the OpenAPI 3.1 document FastAPI writes)
instead of a CDN.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OPENAPI_URL = "/openapi.json"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter(include_in_schema=False)
router.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")


@router.get(DOCS_URL)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL, title="lrs: API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None})  # the badge would call validator.swagger.io
