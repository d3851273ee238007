"""Signed statements (Data 2.6): the JWS is well formed, matches the statement, and verifies."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from cryptography import x509
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from lrs.errors import BadRequest
from schemas.attachment import SIGNATURE_USAGE_TYPE
from schemas.compare import same_statement

ALGORITHMS = ("RS256", "RS384", "RS512")


def _registry(algorithms: list[str] | None = None) -> jws.JWSRegistry:
    # An x5c certificate chain alone outgrows the library's 512-byte header default.
    registry = jws.JWSRegistry(algorithms=algorithms)
    registry.max_header_length = 64 * 1024
    registry.max_payload_length = 1024 * 1024
    return registry


def _without_signatures(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement as it was before its signature was attached (Data 2.6.s4.b3)."""
    unsigned = dict(statement)
    kept = [a for a in statement.get("attachments", []) if a.get("usageType") != SIGNATURE_USAGE_TYPE]
    if kept:
        unsigned["attachments"] = kept
    else:
        unsigned.pop("attachments", None)
    return unsigned


def _certificate_key(chain: Any, where: str) -> RSAKey:
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise BadRequest(f"{where}: the x5c header must be a list of base64 certificates")
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
        return RSAKey.import_key(certificate.public_key())  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: the first x5c certificate cannot be read ({exc})") from None


def verify_signature(statement: dict[str, Any], token: bytes, where: str) -> None:
    """Raise BadRequest naming what is wrong with a statement's signature."""
    try:
        compact = jws.extract_compact(token.strip(), registry=_registry())
    except (JoseError, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{where}: the signature is not a JWS compact serialization ({exc})") from None
    algorithm = compact.headers().get("alg")
    if algorithm not in ALGORITHMS:
        raise BadRequest(f"{where}: the signature uses '{algorithm}'; it must be RS256, RS384 or RS512")
    try:
        payload = orjson.loads(compact.payload)
    except orjson.JSONDecodeError:
        raise BadRequest(f"{where}: the signature's payload is not a JSON statement") from None
    if not isinstance(payload, dict) or not same_statement(payload, _without_signatures(statement)):
        raise BadRequest(f"{where}: the signature's payload does not match the statement")
    chain = compact.headers().get("x5c")
    if chain is not None:
        key = _certificate_key(chain, where)
        try:
            jws.deserialize_compact(token.strip(), key, registry=_registry([algorithm]))
        except JoseError as exc:
            raise BadRequest(f"{where}: the signature does not verify with its x5c certificate"
                             f" ({exc.error})") from None
