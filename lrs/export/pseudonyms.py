"""Pseudonyms for district exports: HMAC-SHA256 of a learner's IFI key under the district's key.

The same key gives the same pseudonym in every bundle, so exports join across nights; a district
that holds the key can re-identify its own learners (`lrs export roster-map`), and nobody else
can. The key never enters a bundle: a manifest carries only a key check (an HMAC of a constant),
so an incremental export can refuse a bundle made under another key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrs.errors import BadRequest
from projections.facts import actor_key

PSEUDONYM_HOME_PAGE = "urn:lrs:pseudonym"
MIN_SECRET_BYTES = 16
# Class ids that are an agent's IFI (context.team without a name) may name a person.
_IFI_PREFIXES = ("mbox:", "mbox_sha1sum:", "openid:", "account:")


def read_secret(secret_file: Path | None) -> bytes:
    """The district's key: --secret-file, else LRS_EXPORT_SECRET; refused when short or absent."""
    if secret_file is not None:
        try:
            secret = secret_file.read_bytes().strip()
        except OSError as exc:
            raise BadRequest(f"--secret-file {secret_file}: {exc.strerror}") from None
    else:
        secret = os.environ.get("LRS_EXPORT_SECRET", "").encode().strip()
    if not secret:
        raise BadRequest("an export needs the district's secret: set LRS_EXPORT_SECRET or pass"
                         " --secret-file")
    if len(secret) < MIN_SECRET_BYTES:
        raise BadRequest(f"the export secret must be at least {MIN_SECRET_BYTES} bytes long")
    return secret


@dataclass(frozen=True)
class Disclosure:
    """What a bundle may carry beyond pseudonyms: each needs an explicit flag."""

    names: bool = False
    emails: bool = False
    free_text: bool = False


class Pseudonymiser:
    def __init__(self, secret: bytes, disclosure: Disclosure = Disclosure()) -> None:
        self._secret = secret
        self.disclosure = disclosure
        self._cache: dict[str, str] = {}

    @property
    def key_check(self) -> str:
        return hmac.new(self._secret, b"lrs export key check", hashlib.sha256).hexdigest()[:16]

    def learner(self, key: str) -> str:
        pseudonym = self._cache.get(key)
        if pseudonym is None:
            pseudonym = hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()
            self._cache[key] = pseudonym
        return pseudonym

    def class_id(self, class_id: str) -> str:
        if class_id.startswith(_IFI_PREFIXES):
            return "class-" + self.learner(class_id)[:24]
        return class_id

    def agent(self, agent: dict[str, Any]) -> dict[str, Any]:
        """An account under homePage urn:lrs:pseudonym; name and email only when disclosed."""
        out: dict[str, Any] = {"objectType": agent.get("objectType", "Agent")}
        if self.disclosure.names and agent.get("name"):
            out["name"] = agent["name"]
        key = actor_key(agent) if not agent.get("member") or _identified(agent) else None
        if key is not None:
            if self.disclosure.emails and "mbox" in agent:
                out["mbox"] = agent["mbox"]
            else:
                out["account"] = {"homePage": PSEUDONYM_HOME_PAGE, "name": self.learner(key)}
        if agent.get("member"):
            out["member"] = [self.agent(m) for m in agent["member"]]
        return out


def _identified(agent: dict[str, Any]) -> bool:
    return any(k in agent for k in ("mbox", "mbox_sha1sum", "openid", "account"))
