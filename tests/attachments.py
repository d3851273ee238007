"""Builders for multipart/mixed requests and RSA-signed statements (real keys, real JWS)."""

from __future__ import annotations

import base64
import datetime
import hashlib
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import RSAKey

SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
ESSAY = "https://example.org/attachment-usage/essay"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def declared(content: bytes, content_type: str = "text/plain", usage: str = ESSAY) -> dict[str, Any]:
    return {"usageType": usage, "display": {"en-US": "attachment"}, "contentType": content_type,
            "length": len(content), "sha2": sha256(content)}


def multipart(statements: Any, *parts: tuple[bytes, str] | tuple[bytes, str, dict[str, str]],
              boundary: str = "xapi-boundary") -> tuple[bytes, str]:
    """Statements first, then each (content, content_type[, extra headers]) part."""
    body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
            + orjson.dumps(statements) + b"\r\n")
    for part in parts:
        content, content_type = part[0], part[1]
        headers = {"Content-Type": content_type, "Content-Transfer-Encoding": "binary",
                   "X-Experience-API-Hash": sha256(content)}
        if len(part) == 3:
            headers.update(part[2])  # type: ignore[misc]
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if v is not None)
        body += f"--{boundary}\r\n{head}\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/mixed; boundary="{boundary}"'


class Signer:
    """An RSA key with a self-signed X.509 certificate, as a test signing authority."""

    def __init__(self, common_name: str = "Test Signer") -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.private_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(self.private_key, hashes.SHA256())
        )
        self.key = RSAKey.import_key(self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def x5c(self) -> list[str]:
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return [base64.b64encode(der).decode()]

    def sign(self, statement: dict[str, Any], algorithm: str = "RS256",
             with_certificate: bool = True) -> bytes:
        header: dict[str, Any] = {"alg": algorithm}
        if with_certificate:
            header["x5c"] = self.x5c()
        return jws.serialize_compact(header, orjson.dumps(statement), self.key,
                                     algorithms=[algorithm]).encode()


def signed(statement: dict[str, Any], token: bytes) -> dict[str, Any]:
    """The statement with its signature attachment declared."""
    attachment = declared(token, "application/octet-stream", SIGNATURE)
    return {**statement, "attachments": [*statement.get("attachments", []), attachment]}
