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
from projections.vocabulary import COMMENTED, REFLECTED, SET_GOAL

PSEUDONYM_HOME_PAGE = "urn:lrs:pseudonym"
MIN_SECRET_BYTES = 16
# result.response of these verbs is the learner's own free text.
FREE_TEXT_VERBS = frozenset({REFLECTED, SET_GOAL, COMMENTED})
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

    # --- statements ---------------------------------------------------------------------------

    def statement(self, statement: dict[str, Any]) -> dict[str, Any]:
        """A copy with every agent pseudonymised and free text left out (unless disclosed)."""
        out = dict(statement)
        out["actor"] = self._agent(statement["actor"])
        if "authority" in out:
            out["authority"] = self._agent(out["authority"])
        out["object"] = self._object(statement["object"])
        if "context" in out:
            out["context"] = self._context(out["context"])
        if not self.disclosure.free_text and statement["verb"]["id"] in FREE_TEXT_VERBS \
                and "response" in (statement.get("result") or {}):
            out["result"] = {k: v for k, v in statement["result"].items() if k != "response"}
        return out

    def _object(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = obj.get("objectType")
        if kind in ("Agent", "Group"):
            return self._agent(obj)
        if kind == "SubStatement":
            inner = dict(obj)
            inner["actor"] = self._agent(obj["actor"])
            inner["object"] = self._object(obj["object"])
            if "context" in inner:
                inner["context"] = self._context(inner["context"])
            return inner
        return obj

    def _context(self, context: dict[str, Any]) -> dict[str, Any]:
        out = dict(context)
        for key in ("instructor", "team"):
            if key in out:
                out[key] = self._agent(out[key])
        if "contextAgents" in out:
            out["contextAgents"] = [{**c, "agent": self._agent(c["agent"])} for c in out["contextAgents"]]
        if "contextGroups" in out:
            out["contextGroups"] = [{**c, "group": self._agent(c["group"])} for c in out["contextGroups"]]
        return out

    def _agent(self, agent: dict[str, Any]) -> dict[str, Any]:
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
            out["member"] = [self._agent(m) for m in agent["member"]]
        return out


def _identified(agent: dict[str, Any]) -> bool:
    return any(k in agent for k in ("mbox", "mbox_sha1sum", "openid", "account"))
