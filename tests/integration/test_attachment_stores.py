"""One contract for every attachment store: the data-folder files, a directory, PostgreSQL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lrs.api.main import create_app
from lrs.config import Settings
from lrs.store.attachments import (
    AttachmentStore,
    FileAttachmentStore,
    PostgresAttachmentStore,
    attachment_store,
)
from tests.attachments import declared, multipart
from tests.conftest import ADMIN_KEY, ADMIN_SECRET, XAPIClient
from tests.statements import statement, with_id


@pytest.fixture(params=["directory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AttachmentStore]:
    if request.param == "directory":
        yield attachment_store(f"file://{tmp_path / 'objects'}", tmp_path)
    else:
        url = request.getfixturevalue("postgres_database")
        yield attachment_store(url, tmp_path)


def part(tmp: Path, content: bytes) -> tuple[Path, str]:
    path = tmp / f"part-{os.urandom(4).hex()}"
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def test_the_setting_chooses_the_store(tmp_path: Path, postgres_database: str) -> None:
    assert isinstance(attachment_store(None, tmp_path), FileAttachmentStore)
    assert isinstance(attachment_store(f"file://{tmp_path}/x", tmp_path), FileAttachmentStore)
    assert isinstance(attachment_store(postgres_database, tmp_path), PostgresAttachmentStore)
    with pytest.raises(ValueError, match="not supported"):
        attachment_store("s3://bucket", tmp_path)


def test_a_kept_part_reads_back_byte_for_byte(store: Any, tmp_path: Path) -> None:
    content = os.urandom(700_000)  # several read chunks
    path, sha2 = part(tmp_path, content)
    store.keep(path, sha2)
    assert store.has(sha2)
    assert b"".join(store.read(sha2)) == content
    assert not path.exists()  # the store took the part file over


def test_the_same_content_is_kept_once(store: Any, tmp_path: Path) -> None:
    for _ in range(2):
        path, sha2 = part(tmp_path, b"same bytes")
        store.keep(path, sha2)
    assert b"".join(store.read(sha2)) == b"same bytes"


def test_an_unknown_hash_is_not_there(store: Any) -> None:
    assert not store.has("0" * 64)


def test_attachments_round_trip_over_http_with_postgresql_storage(
    tmp_path: Path, postgres_database: str
) -> None:
    settings = Settings(data_dir=tmp_path, bootstrap_credential=f"{ADMIN_KEY}:{ADMIN_SECRET}",
                        attachment_store=postgres_database)
    essay = b"stored in PostgreSQL\n" * 100
    doc = with_id(statement(attachments=[declared(essay)]))
    with TestClient(create_app(settings)) as client:
        xapi = XAPIClient(client)
        body, content_type = multipart(doc, (essay, "text/plain"))
        assert xapi.request("POST", "/xAPI/statements", content=body,
                            headers={"Content-Type": content_type}).status_code == 200
        response = xapi.get(statementId=doc["id"], attachments="true")
        assert essay in response.content
