"""Attachments in multipart/mixed requests (Communication 1.5.2, Data 2.4.11)."""

from __future__ import annotations

import email
import email.policy
from typing import Any

from tests.attachments import declared, multipart, sha256
from tests.conftest import XAPIClient
from tests.statements import statement, with_id

ESSAY = b"My essay on fractions.\n" * 20


def send(xapi: XAPIClient, body: bytes, content_type: str, method: str = "POST",
         **params: str) -> Any:
    return xapi.request(method, "/xAPI/statements", content=body, params=params,
                        headers={"Content-Type": content_type})


def parse_multipart(response: Any) -> list[email.message.Message]:
    raw = (f"Content-Type: {response.headers['content-type']}\r\n\r\n").encode() + response.content
    return list(email.message_from_bytes(raw, policy=email.policy.HTTP).iter_parts())


def test_post_with_an_attachment_part_stores_the_statement(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    response = send(xapi, *multipart(doc, (ESSAY, "text/plain")))
    assert response.status_code == 200, response.text
    assert response.json() == [doc["id"]]


def test_put_with_an_attachment_part_stores_the_statement(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    response = send(xapi, *multipart(doc, (ESSAY, "text/plain")), method="PUT",
                    statementId=doc["id"])
    assert response.status_code == 204, response.text


def test_get_with_attachments_returns_statements_first_then_each_attachment_once(
    xapi: XAPIClient,
) -> None:
    first = with_id(statement(attachments=[declared(ESSAY)]))
    second = with_id(statement(attachments=[declared(ESSAY)]))
    send(xapi, *multipart([first, second], (ESSAY, "text/plain")))
    response = xapi.get(attachments="true")
    parts = parse_multipart(response)
    assert parts[0].get_content_type() == "application/json"
    assert len(parts) == 2
    assert parts[1]["X-Experience-API-Hash"] == sha256(ESSAY)
    assert parts[1].get_payload(decode=True) == ESSAY


def test_get_without_attachments_is_plain_json(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    send(xapi, *multipart(doc, (ESSAY, "text/plain")))
    response = xapi.get()
    assert response.headers["content-type"] == "application/json"
    assert response.json()["statements"][0]["attachments"][0]["sha2"] == sha256(ESSAY)


def test_a_missing_part_is_400_and_stores_nothing(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    response = send(xapi, *multipart(doc))
    assert response.status_code == 400
    assert "attachments[0]: has no fileUrl" in response.json()["error"]["message"]
    assert xapi.get(statementId=doc["id"]).status_code == 404


def test_an_extra_part_is_400_naming_it(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    response = send(xapi, *multipart(doc, (ESSAY, "text/plain"), (b"stray", "text/plain")))
    assert response.status_code == 400
    assert "multipart part 2" in response.json()["error"]["message"]
    assert xapi.get(statementId=doc["id"]).status_code == 404


def test_a_part_whose_content_does_not_match_its_hash_is_400(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    body, content_type = multipart(doc, (b"tampered", "text/plain",
                                         {"X-Experience-API-Hash": sha256(ESSAY)}))
    response = send(xapi, body, content_type)
    assert response.status_code == 400
    assert "hashes to" in response.json()["error"]["message"]


def test_a_part_without_a_hash_header_is_400(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    body, content_type = multipart(doc, (ESSAY, "text/plain", {"X-Experience-API-Hash": None}))
    response = send(xapi, body, content_type)
    assert response.status_code == 400
    assert "has no X-Experience-API-Hash" in response.json()["error"]["message"]


def test_a_part_without_binary_transfer_encoding_is_400(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    body, content_type = multipart(doc, (ESSAY, "text/plain",
                                         {"Content-Transfer-Encoding": "base64"}))
    assert send(xapi, body, content_type).status_code == 400


def test_the_first_part_must_be_json_statements(xapi: XAPIClient) -> None:
    body, content_type = multipart(statement())
    body = body.replace(b"Content-Type: application/json", b"Content-Type: text/plain", 1)
    response = send(xapi, body, content_type)
    assert response.status_code == 400
    assert "first part must be the statements" in response.json()["error"]["message"]


def test_a_truncated_multipart_body_is_400(xapi: XAPIClient) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    body, content_type = multipart(doc, (ESSAY, "text/plain"))
    response = send(xapi, body[: len(body) // 2], content_type)
    assert response.status_code == 400
    assert xapi.get(statementId=doc["id"]).status_code == 404


def test_multipart_without_a_boundary_is_400(xapi: XAPIClient) -> None:
    response = send(xapi, b"--x\r\n", "multipart/mixed")
    assert response.status_code == 400
    assert "boundary" in response.json()["error"]["message"]


BOUNDARY_RULE = ("Content-Type: the multipart boundary must be 1 to 70 characters, each a letter, a"
                 " digit or one of '()+_,-./:=? or a space, and must not end in a space (RFC 2046"
                 " 5.1.1)")


def test_a_multipart_boundary_over_70_characters_is_400_naming_the_rule(xapi: XAPIClient) -> None:
    response = send(xapi, *multipart(statement(), boundary="b" * 300))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == BOUNDARY_RULE


def test_a_multipart_boundary_of_70_characters_is_accepted(xapi: XAPIClient) -> None:
    assert send(xapi, *multipart(statement(), boundary="b" * 70)).status_code == 200


def test_a_multipart_boundary_with_a_character_outside_rfc_2046_is_400(xapi: XAPIClient) -> None:
    response = send(xapi, *multipart(statement(), boundary="part{1}"))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == BOUNDARY_RULE


def test_an_attachment_over_the_limit_is_413_naming_it(xapi: XAPIClient) -> None:
    big = b"x" * 120_000  # the test settings allow 100,000 bytes per attachment
    doc = with_id(statement(attachments=[declared(big)]))
    response = send(xapi, *multipart(doc, (big, "application/octet-stream")))
    assert response.status_code == 413
    assert sha256(big) in response.json()["error"]["message"]
    assert xapi.get(statementId=doc["id"]).status_code == 404


def test_a_request_over_the_total_limit_is_413(xapi: XAPIClient) -> None:
    parts = [(bytes([n]) * 90_000, "application/octet-stream") for n in range(4)]
    doc = with_id(statement(attachments=[declared(p) for p, _ in parts]))
    response = send(xapi, *multipart(doc, *parts))
    assert response.status_code == 413
    assert "LRS_MAX_REQUEST_BYTES" in response.json()["error"]["message"]


def test_the_same_attachment_is_stored_once(xapi: XAPIClient, settings: Any) -> None:
    for _ in range(3):
        doc = with_id(statement(attachments=[declared(ESSAY)]))
        assert send(xapi, *multipart(doc, (ESSAY, "text/plain"))).status_code == 200
    stored = [p for p in (settings.data_dir / "attachments").rglob(sha256(ESSAY))]
    assert len(stored) == 1


def test_no_part_files_are_left_behind_after_a_rejection(xapi: XAPIClient, settings: Any) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    send(xapi, *multipart(doc, (ESSAY, "text/plain"), (b"stray", "text/plain")))
    incoming = settings.data_dir / "attachments" / "incoming"
    assert list(incoming.iterdir()) == []


def test_a_rejected_put_leaves_no_part_files_behind(xapi: XAPIClient, settings: Any) -> None:
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    response = send(xapi, *multipart(doc, (ESSAY, "text/plain")), method="PUT",
                    statementId="6f0b4c0e-1b1a-4d7e-9d2b-3a1f0d9a8c11")
    assert response.status_code == 400
    assert "differs from statementId" in response.json()["error"]["message"]
    assert list((settings.data_dir / "attachments" / "incoming").iterdir()) == []


def _credential(xapi: XAPIClient, scopes: list[str]) -> XAPIClient:
    store = xapi.http.app.state.services.store  # type: ignore[attr-defined]
    key, secret = store.issue_credential("tool", scopes)
    return xapi.as_credential(key, secret)


def test_an_attachment_is_not_served_to_a_statement_that_only_names_its_hash(
        xapi: XAPIClient) -> None:
    """A mine-scoped credential declared the hash of another's attachment with a fileUrl."""
    owner = _credential(xapi, ["statements/write"])
    send(owner, *multipart(with_id(statement(attachments=[declared(ESSAY)])), (ESSAY, "text/plain")))
    thief = _credential(xapi, ["statements/write", "statements/read/mine"])
    claim = {**declared(ESSAY), "fileUrl": "https://example.org/not-mine"}
    assert thief.post(with_id(statement(attachments=[claim]))).status_code == 200
    response = thief.get(attachments="true")
    assert response.status_code == 200
    parts = parse_multipart(response)
    assert len(parts) == 1  # the statement, and no bytes
    assert ESSAY not in response.content


def test_an_attachment_is_served_with_the_statement_that_sent_it_even_with_a_file_url(
        xapi: XAPIClient) -> None:
    tool = _credential(xapi, ["statements/write", "statements/read/mine"])
    sent = {**declared(ESSAY), "fileUrl": "https://example.org/essay.txt"}
    response = send(tool, *multipart(with_id(statement(attachments=[sent])), (ESSAY, "text/plain")))
    assert response.status_code == 200, response.text
    parts = parse_multipart(tool.get(attachments="true"))
    assert len(parts) == 2
    assert parts[1].get_payload(decode=True) == ESSAY


def test_a_mine_credential_is_never_served_another_credentials_attachment(
        xapi: XAPIClient) -> None:
    owner = _credential(xapi, ["statements/write"])
    doc = with_id(statement(attachments=[declared(ESSAY)]))
    send(owner, *multipart(doc, (ESSAY, "text/plain")))
    reader = _credential(xapi, ["statements/read/mine"])
    assert reader.get(statementId=doc["id"], attachments="true").status_code == 404
    page = reader.get(attachments="true")
    assert ESSAY not in page.content


def test_an_attachment_content_type_must_be_a_media_type(xapi: XAPIClient) -> None:
    forged = {**declared(ESSAY), "fileUrl": "https://example.org/essay",
              "contentType": "text/plain\r\nX-Experience-API-Hash: abc\r\n\r\nFORGED"}
    response = xapi.post(with_id(statement(attachments=[forged])))
    assert response.status_code == 400
    assert "statement.attachments[0].contentType" in response.json()["error"]["message"]
