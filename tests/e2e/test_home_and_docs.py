"""What a person's browser finds: `/` signs in to the dashboard and says where things are, and
`/docs` works offline.

Both pages load every asset from the LRS itself (no CDN), so the API viewer works on a
machine or a school network without access to the internet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import ADMIN_KEY, ADMIN_SECRET

LINKED = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
SPEC_URL = re.compile(r"""url: ?["']([^"']+)["']""")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, projections="off",
                        bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}")
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_root_page_is_html_pointing_to_the_docs_and_the_xapi_endpoint(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    links = set(LINKED.findall(response.text))
    assert {"/docs", "/xAPI/", "/xAPI/about", "/api/health"} <= links
    assert 'action="/sign-in"' in response.text  # the dashboard's sign-in form


def test_the_root_page_loads_nothing_from_another_host(client: TestClient) -> None:
    response = client.get("/")
    text, links = response.text, LINKED.findall(response.text)
    assert response.status_code == 200 and links
    assert all(link.startswith(("/", "#")) and not link.startswith("//") for link in links), links
    assert "http://" not in text and "https://" not in text


def test_the_docs_page_references_no_asset_on_another_host(client: TestClient) -> None:
    text = client.get("/docs").text
    assert LINKED.findall(text), "the docs page loads no script or stylesheet"
    assert not re.search(r"https?://", text), text


def test_every_asset_of_the_docs_page_is_served_by_the_app(client: TestClient) -> None:
    text = client.get("/docs").text
    for url in LINKED.findall(text) + SPEC_URL.findall(text):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.content, url


def test_the_docs_viewer_reads_the_openapi_version_the_app_writes(client: TestClient) -> None:
    """Swagger UI before 5 refuses an OpenAPI 3.1 document ("does not specify a valid version")."""
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    script = next(url for url in LINKED.findall(client.get("/docs").text) if url.endswith(".js"))
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', client.get(script).text)
    assert version is not None and int(version.group(1)) >= 5
