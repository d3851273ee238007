"""What a person's browser finds: `/` says where things are, `/docs` is the API viewer.

Both work offline: the page at `/` is self-contained, and Swagger UI's script, stylesheet and
icon are served from the installed `fastapi_offline` package (Swagger UI 5, which renders the
OpenAPI 3.1 document FastAPI writes) instead of a CDN.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from lrs import __version__

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OPENAPI_URL = "/openapi.json"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter(include_in_schema=False)
router.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

_HOME = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lrs {version}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
code {{ background: #f3f3f3; padding: 0 .2rem; }}
</style>
</head>
<body>
<h1>lrs {version}</h1>
<p>An event-sourced xAPI learning-record store. This server has no dashboard yet; what it
answers is:</p>
<ul>
<li><a href="/docs">/docs</a>: the API, every route with its parameters, to read and try
(<a href="/openapi.json">/openapi.json</a> is the same as an OpenAPI document).</li>
<li><a href="/xAPI/">/xAPI/</a>: the xAPI endpoint to give learning tools, with an HTTP Basic
credential (<code>lrs credentials add</code>).</li>
<li><a href="/xAPI/about">/xAPI/about</a>: the xAPI versions spoken; needs no credential.</li>
<li><a href="/api/health">/api/health</a>: whether the server is up and how far behind the
views are.</li>
</ul>
<p>From a terminal, <code>lrs sql --url</code> and <code>lrs simulate --url</code> take this
server's address or its xAPI endpoint.</p>
</body>
</html>
"""


@router.get("/")
async def home() -> HTMLResponse:
    return HTMLResponse(_HOME.format(version=__version__))


@router.get(DOCS_URL)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL, title="lrs: API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None})  # the badge would call validator.swagger.io
