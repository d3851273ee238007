"""Signed statements (Data 2.6): real RSA keys, real X.509 certificates, real JWS."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from joserfc import jws
from joserfc.jwk import OctKey

from tests.attachments import Signer, multipart, signed
from tests.conftest import XAPIClient
from tests.statements import statement, with_id


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def post_signed(xapi: XAPIClient, doc: dict[str, Any], token: bytes) -> Any:
    body, content_type = multipart(signed(doc, token), (token, "application/octet-stream"))
    return xapi.request("POST", "/xAPI/statements", content=body,
                        headers={"Content-Type": content_type})


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
def test_a_correctly_signed_statement_is_accepted(xapi: XAPIClient, signer: Signer,
                                                  algorithm: str) -> None:
    doc = with_id(statement())
    response = post_signed(xapi, doc, signer.sign(doc, algorithm))
    assert response.status_code == 200, response.text


def test_a_signature_without_a_certificate_is_checked_for_form_and_payload(
    xapi: XAPIClient, signer: Signer
) -> None:
    doc = with_id(statement())
    assert post_signed(xapi, doc, signer.sign(doc, with_certificate=False)).status_code == 200


def test_a_payload_that_differs_from_the_statement_is_rejected(xapi: XAPIClient, signer: Signer) -> None:
    doc = with_id(statement())
    token = signer.sign({**doc, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}})
    response = post_signed(xapi, doc, token)
    assert response.status_code == 400
    assert "payload does not match the statement" in response.json()["error"]["message"]
    assert xapi.get(statementId=doc["id"]).status_code == 404


def test_lrs_assigned_properties_do_not_break_the_match(xapi: XAPIClient, signer: Signer) -> None:
    doc = with_id(statement())
    token = signer.sign(doc)
    doc_with_version = {**doc, "version": "1.0.3", "timestamp": "2024-05-01T10:00:00Z"}
    assert post_signed(xapi, doc_with_version, token).status_code == 200


def test_a_signature_that_does_not_verify_with_its_certificate_is_rejected(
    xapi: XAPIClient, signer: Signer
) -> None:
    doc = with_id(statement())
    other = Signer("Impostor")
    token = signer.sign(doc, with_certificate=False)
    _, payload, signature = token.split(b".")
    forged_header = base64.urlsafe_b64encode(orjson.dumps({"alg": "RS256", "x5c": other.x5c()}))
    forged = forged_header.rstrip(b"=") + b"." + payload + b"." + signature
    response = post_signed(xapi, doc, forged)
    assert response.status_code == 400
    assert "does not verify with its x5c certificate" in response.json()["error"]["message"]


def test_a_non_rsa_algorithm_is_rejected(xapi: XAPIClient) -> None:
    doc = with_id(statement())
    token = jws.serialize_compact({"alg": "HS256"}, orjson.dumps(doc),
                                  OctKey.import_key(b"k" * 32)).encode()
    response = post_signed(xapi, doc, token)
    assert response.status_code == 400
    assert "must be RS256, RS384 or RS512" in response.json()["error"]["message"]


def test_a_malformed_jws_is_rejected(xapi: XAPIClient) -> None:
    doc = with_id(statement())
    response = post_signed(xapi, doc, b"this is not a jws")
    assert response.status_code == 400
    assert "not a JWS compact serialization" in response.json()["error"]["message"]


def test_a_signature_must_be_octet_stream(xapi: XAPIClient, signer: Signer) -> None:
    doc = with_id(statement())
    token = signer.sign(doc)
    declared_doc = signed(doc, token)
    declared_doc["attachments"][0]["contentType"] = "text/plain"
    body, content_type = multipart(declared_doc, (token, "text/plain"))
    response = xapi.request("POST", "/xAPI/statements", content=body,
                            headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert "application/octet-stream" in response.json()["error"]["message"]


def test_one_badly_signed_statement_rejects_the_batch(xapi: XAPIClient, signer: Signer) -> None:
    good = with_id(statement())
    bad = with_id(statement())
    good_token, bad_token = signer.sign(good), signer.sign({**bad, "result": {"success": True}})
    body, content_type = multipart([signed(good, good_token), signed(bad, bad_token)],
                                   (good_token, "application/octet-stream"),
                                   (bad_token, "application/octet-stream"))
    response = xapi.request("POST", "/xAPI/statements", content=body,
                            headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("statements[1].attachments[0]")
    assert xapi.get(statementId=good["id"]).status_code == 404
