"""LRS_BOOTSTRAP_CREDENTIAL: a container can use the LRS without an interactive step."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from tests.conftest import XAPIClient


def test_bootstrap_credential_is_kept_across_restarts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bootstrap_credential="boot:s3cret")
    for _ in range(2):
        with TestClient(create_app(settings)) as client:
            assert XAPIClient(client, "boot", "s3cret").get().status_code == 200
            assert len(client.app.state.services.store.credentials()) == 1  # type: ignore[attr-defined]


def test_changing_the_bootstrap_secret_replaces_the_old_one(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, bootstrap_credential="boot:old"))):
        pass
    with TestClient(create_app(Settings(data_dir=tmp_path, bootstrap_credential="boot:new"))) as c:
        assert XAPIClient(c, "boot", "old").get().status_code == 401
        assert XAPIClient(c, "boot", "new").get().status_code == 200
