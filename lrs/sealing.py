"""Sealing statements under their learners' keys, so that deleting a key erases a learner.

A statement is sealed whole (AES-GCM) under its actor's key: the learner the views file it under
(an anonymous group's first member). Inside it, every other agent (an Agent or Group object, a
SubStatement's agents, context.instructor, context.team, context agents and groups, a Group's
members) is first replaced by a stub sealed under that agent's own key. Forgetting B then removes
B's statements and turns B into a placeholder inside A's statements, which stay A's.

The event stores ``{SEALED: [key_id, pseudonym, blob, [key ids of the stubs], stored,
timestamp_is_stored]}`` where the statement was: the statement is sealed without ``stored``
(and without the timestamp that defaults to it), so a request can seal it before the writer
stamps it, and they are put back when it is opened. Events sealed before that hold the stamped
statement in four fields; events written before sealing existed hold the statement itself. All
three still read.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lrs.store.learner_keys import LearnerKey
from projections.facts import actor_key
from schemas.actor import Agent, Group, ifi_key
from schemas.statement import Statement, SubStatement

SEALED = "\u0000sealed"  # no xAPI property can have this name: statements refuse unknown ones
SEALED_MARK = orjson.dumps(SEALED)  # how it reads in an event's stored JSON
ERASED_HOME_PAGE = "urn:lrs:erased"
_AGENT_TYPES = ("Agent", "Group")
_NONCE = 12

KeyOf = Callable[[str], LearnerKey]


def pseudonym(secret: bytes, learner: str) -> str:
    """A learner's name in the key table and in an erasure event: never the identity itself."""
    return hmac.new(secret, learner.encode(), hashlib.sha256).hexdigest()[:32]


def is_sealed(statement: Mapping[str, Any]) -> bool:
    return SEALED in statement


def sealed_learner(statement: Mapping[str, Any]) -> str | None:
    """The pseudonym a sealed statement belongs to (None: a plaintext statement)."""
    envelope = statement.get(SEALED)
    return str(envelope[1]) if envelope else None


def key_ids(statement: Mapping[str, Any]) -> list[str]:
    """Every key a sealed statement needs to be read whole."""
    envelope = statement.get(SEALED)
    return [envelope[0], *envelope[3]] if envelope else []


class Ciphers:
    """AESGCM objects by key id: making one costs more than sealing a statement with it."""

    def __init__(self) -> None:
        self._made: dict[bytes, AESGCM] = {}

    def __call__(self, secret: bytes) -> AESGCM:
        cipher = self._made.get(secret)
        if cipher is None:
            if len(self._made) > 100_000:
                self._made.clear()
            cipher = self._made[secret] = AESGCM(secret)
        return cipher


_ciphers = Ciphers()


def _encrypt(key: LearnerKey, plain: bytes) -> str:
    nonce = os.urandom(_NONCE)
    sealed = _ciphers(key.secret).encrypt(nonce, plain, key.key_id.encode())
    return binascii.b2a_base64(nonce + sealed, newline=False).decode()


def _decrypt(key_id: str, secret: bytes, blob: str) -> bytes:
    raw = binascii.a2b_base64(blob)
    return _ciphers(secret).decrypt(raw[:_NONCE], raw[_NONCE:], key_id.encode())


# Statement JSON is compressed before it is sealed: ciphertext does not compress, and base64
# makes it a third larger, so sealed events were the larger by half and PostgreSQL wrote them
# 16% slower. A preset dictionary of what every statement spells lets the compressor shorten
# even the first occurrence of a property name. Never change it, nor what a mark means: blobs
# packed with it are read for as long as the log keeps them; a new packing needs a new mark.
_DEFLATED_V1 = b"\x01"  # deflate (zlib, level 1): the first packing, still read
_ZSTD_V2 = b"\x02"  # zstd, level 1, a frame without checksum (AES-GCM authenticates it)
# No JSON text starts with either byte, so blobs sealed before compression still read.
_DICTIONARY_V1 = (
    b'"extensions":{"http://id.tincanapi.com/extension/"https://w3id.org/xapi/'
    b'"language":"en-US","platform":"","revision":"","instructor":{"statement":{"objectType":'
    b'"StatementRef","id":"SubStatement","attachments":[{"usageType":"contentType":"length":'
    b'"sha2":"fileUrl":"response":"","completion":true,"success":false,"duration":"PT'
    b'"score":{"scaled":0.,"raw":,"min":0,"max":100},"result":{"context":{"registration":"'
    b'"contextActivities":{"parent":[{"id":"grouping":[{"id":"category":[{"id":"other":[{"id":"'
    b'"definition":{"name":{"en-US":"description":{"en-US":"type":'
    b'"http://adlnet.gov/expapi/activities/assessment","moreInfo":"interactionType":'
    b'"object":{"objectType":"Activity","id":"https://verb":{"id":'
    b'"http://adlnet.gov/expapi/verbs/","display":{"en-US":"completed"answered"experienced'
    b'"attempted"passed"failed"launched"initialized"terminated"progressed"'
    b'{"id":"actor":{"objectType":"Agent","name":"mbox":"mailto:","mbox_sha1sum":"openid":'
    b'"account":{"homePage":"https://","name":"},"member":[{"objectType":"Group",'
    b'"timestamp":"2026-01-01T00:00:00.000Z","stored":"2026-01-01T00:00:00.000000+00:00",'
    b'"authority":{"objectType":"Agent","account":{"homePage":"version":"1.0.3"}'
)
_ZSTD_LEVEL = 1
# zstd with a digested dictionary packs a statement in a third of deflate's time (4.6 against
# 11-14 us) and smaller (226 against 235 bytes); deflate set its dictionary up for each one.
_ZSTD_DICTIONARY = zstandard.ZstdCompressionDict(_DICTIONARY_V1,
                                                 dict_type=zstandard.DICT_TYPE_RAWCONTENT)
_ZSTD_DICTIONARY.precompute_compress(level=_ZSTD_LEVEL)


class _Packers(threading.local):
    """A compressor and a decompressor per thread: zstandard's may not be shared by threads
    (requests seal ahead on several), and making one per statement costs more than packing."""

    def __init__(self) -> None:
        self.packer = zstandard.ZstdCompressor(
            level=_ZSTD_LEVEL, dict_data=_ZSTD_DICTIONARY, write_checksum=False,
            write_content_size=True, write_dict_id=False)
        self.unpacker = zstandard.ZstdDecompressor(dict_data=_ZSTD_DICTIONARY)


_packers = _Packers()


def _pack(plain: bytes) -> bytes:
    return _ZSTD_V2 + _packers.packer.compress(plain)


def _unpack(data: bytes) -> bytes:
    """Only ever our own sealed bytes, authenticated by AES-GCM before they get here."""
    mark = data[:1]
    if mark == _ZSTD_V2:
        return _packers.unpacker.decompress(data[1:])
    if mark == _DEFLATED_V1:
        unpacker = zlib.decompressobj(zdict=_DICTIONARY_V1)
        return unpacker.decompress(data[1:]) + unpacker.flush()
    return data  # sealed before compression


def _seal_json(key: LearnerKey, plain: bytes) -> str:
    return _encrypt(key, _pack(plain))


def _open_json(key_id: str, secret: bytes, blob: str) -> bytes:
    return _unpack(_decrypt(key_id, secret, blob))


class _AgentWalk:
    """Every place a statement holds an agent, each given to ``agent``: sealing and opening
    visit the same places (actor, object, a SubStatement's, instructor, team, context agents
    and groups)."""

    def agent(self, agent: Any) -> Any:
        raise NotImplementedError

    def context(self, context: Any) -> Any:
        if not isinstance(context, dict):
            return context
        out = dict(context)
        for field in ("instructor", "team"):
            if field in out:
                out[field] = self.agent(out[field])
        if isinstance(out.get("contextAgents"), list):
            out["contextAgents"] = [dict(a, agent=self.agent(a["agent"]))
                                    if isinstance(a, dict) and "agent" in a else a
                                    for a in out["contextAgents"]]
        if isinstance(out.get("contextGroups"), list):
            out["contextGroups"] = [dict(g, group=self.agent(g["group"]))
                                    if isinstance(g, dict) and "group" in g else g
                                    for g in out["contextGroups"]]
        return out

    def statement(self, statement: dict[str, Any]) -> dict[str, Any]:
        out = dict(statement)
        if isinstance(out.get("actor"), dict):
            out["actor"] = self.agent(out["actor"])
        obj = out.get("object")
        if isinstance(obj, dict):
            if obj.get("objectType") in _AGENT_TYPES:
                out["object"] = self.agent(obj)
            elif obj.get("objectType") == "SubStatement":
                out["object"] = self.statement(obj)
        if "context" in out:
            out["context"] = self.context(out["context"])
        return out


# --- sealing ---------------------------------------------------------------------------------


class _Sealer(_AgentWalk):
    def __init__(self, key_of: KeyOf, owner: str) -> None:
        self.key_of = key_of
        self.owner = owner  # agents with the statement's own key stay inside its blob as they are
        self.nested: list[str] = []

    def agent(self, agent: Any) -> Any:
        if not isinstance(agent, dict):
            return agent
        learner = actor_key(agent)
        if learner is None:
            return agent
        inner = self.members(agent, learner)
        if learner == self.owner:
            return inner
        key = self.key_of(learner)
        self.nested.append(key.key_id)
        return {"objectType": agent.get("objectType", "Agent"),
                SEALED: [key.key_id, key.pseudonym, _seal_json(key, orjson.dumps(inner))]}

    def members(self, agent: dict[str, Any], learner: str) -> dict[str, Any]:
        members = agent.get("member")
        if not members:
            return agent
        sealer = _Sealer(self.key_of, learner)  # members under their own keys, inside the group's
        out = dict(agent, member=[sealer.agent(m) for m in members])
        self.nested.extend(sealer.nested)
        return out


def seal(statement: dict[str, Any], key_of: KeyOf) -> dict[str, Any]:
    """The sealed form of a statement (without stored: with_stored adds it outside the seal);
    ``key_of`` gives (or makes) a learner's key."""
    owner = actor_key(statement.get("actor"))
    if owner is None:  # validation refuses a statement without an identified actor
        raise ValueError("a statement without an actor cannot be sealed")
    sealer = _Sealer(key_of, owner)
    body = sealer.statement(statement)
    key = key_of(owner)
    return {SEALED: [key.key_id, key.pseudonym, _seal_json(key, orjson.dumps(body)),
                     sorted(set(sealer.nested))]}


# --- documents --------------------------------------------------------------------------------

_TEXT_MARK = SEALED + ":"
_BYTES_MARK = _TEXT_MARK.encode()


def seal_text(key: LearnerKey, text: str) -> str:
    """A string (a document's agent) sealed: ``SEALED:key_id|pseudonym|blob``."""
    return f"{_TEXT_MARK}{key.key_id}|{key.pseudonym}|{_encrypt(key, text.encode())}"


def seal_bytes(key: LearnerKey, data: bytes) -> bytes:
    """Bytes (a document's content) sealed: ``SEALED:key_id|`` then the nonce and ciphertext."""
    nonce = os.urandom(_NONCE)
    sealed = _ciphers(key.secret).encrypt(nonce, data, key.key_id.encode())
    return _BYTES_MARK + key.key_id.encode() + b"|" + nonce + sealed


def sealed_key_id(value: str | bytes) -> str | None:
    """The key a sealed document field needs (None: stored in the clear)."""
    if isinstance(value, str):
        return value[len(_TEXT_MARK):].split("|", 1)[0] if value.startswith(_TEXT_MARK) else None
    if value.startswith(_BYTES_MARK):
        return value[len(_BYTES_MARK):].split(b"|", 1)[0].decode()
    return None


def open_text(value: str, keys: Mapping[str, bytes]) -> str | None:
    if not value.startswith(_TEXT_MARK):
        return value
    key_id, _, blob = value[len(_TEXT_MARK):].split("|", 2)
    secret = keys.get(key_id)
    return None if secret is None else _decrypt(key_id, secret, blob).decode()


def open_bytes(value: bytes, keys: Mapping[str, bytes]) -> bytes | None:
    if not value.startswith(_BYTES_MARK):
        return value
    key_id, _, raw = value[len(_BYTES_MARK):].partition(b"|")
    secret = keys.get(key_id.decode())
    if secret is None:
        return None
    return _ciphers(secret).decrypt(raw[:_NONCE], raw[_NONCE:], key_id)


def seal_alone(body: bytes, key: LearnerKey) -> bytes:
    """The sealed form's JSON of a statement that names no agent but its actor (and the LRS's
    authority): its JSON is sealed as it is, without being parsed again. Same form as seal()."""
    return b"".join((b'{"', SEALED_MARK[1:-1], b'":["', key.key_id.encode(), b'","',
                     key.pseudonym.encode(), b'","', _seal_json(key, body).encode(), b'",[]]}'))


def lone_actor(statement: Statement) -> str | None:
    """The actor's IFI key when the statement names no other agent (the LRS's authority aside:
    it stays inside the seal), else None; such a statement is sealed whole as it was sent,
    without a walk through its JSON. Found on the validated model where the statement is
    prepared: a search of its JSON for the places an agent can be took a writer that seals
    (Kafka, the CLI) a fifth of its sealing time."""
    actor = statement.actor
    if isinstance(actor, Group) and actor.member:
        return None
    if isinstance(statement.object, (Agent, Group, SubStatement)):
        return None
    context = statement.context
    if context is not None and (context.instructor is not None or context.team is not None
                                or context.contextAgents or context.contextGroups):
        return None
    return ifi_key(actor)


# --- unsealing -------------------------------------------------------------------------------


def placeholder(object_type: str, who: str) -> dict[str, Any]:
    """What an erased agent reads as inside another learner's statement."""
    return {"objectType": object_type, "name": who,
            "account": {"homePage": ERASED_HOME_PAGE, "name": who}}


class _Opener(_AgentWalk):
    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self.keys = keys

    def agent(self, agent: Any) -> Any:
        if not isinstance(agent, dict):
            return agent
        envelope = agent.get(SEALED)
        if envelope is not None:
            key_id, who, blob = envelope
            secret = self.keys.get(key_id)
            if secret is None:
                return placeholder(str(agent.get("objectType", "Agent")), who)
            agent = orjson.loads(_open_json(key_id, secret, blob))
        members = agent.get("member")
        if members and any(isinstance(m, dict) and SEALED in m for m in members):
            agent = dict(agent, member=[self.agent(m) for m in members])
        return agent


def open_body(statement: dict[str, Any], keys: Mapping[str, bytes]) -> bytes | None:
    """A sealed statement's JSON, with nested stubs still sealed (None: its key is gone)."""
    envelope = statement[SEALED]
    key_id, blob = envelope[0], envelope[2]
    secret = keys.get(key_id)
    if secret is None:
        return None
    body = _open_json(key_id, secret, blob)
    return body if len(envelope) < 6 else stamped(body, not envelope[5], envelope[4])


def stamped(body: bytes, has_timestamp: bool, stored: str) -> bytes:
    """The statement's JSON with stored set, and timestamp defaulted to it (Data 2.4.7, 2.4.8)."""
    quoted = orjson.dumps(stored)
    extra = b',"stored":' + quoted + (b"" if has_timestamp else b',"timestamp":' + quoted)
    return body[:-1] + extra + b"}"


def with_stored(sealed: bytes, stored: str, has_timestamp: bool) -> bytes:
    """A sealed statement's JSON (as seal_statement gives it) with the stored time the writer
    gives it, outside the seal: ``stored`` and whether the timestamp is ``stored`` too."""
    return (sealed[:-2] + b"," + orjson.dumps(stored)
            + (b",false]}" if has_timestamp else b",true]}"))


def seal_statement(body: bytes, lone: str | None, key_of: KeyOf) -> bytes:
    """The sealed form's JSON of a statement's JSON (without stored), ready for with_stored;
    ``lone``: its actor's IFI key when it names no other agent (lone_actor)."""
    if lone is not None:
        return seal_alone(body, key_of(lone))
    return orjson.dumps(seal(orjson.loads(body), key_of))


def unseal(statement: dict[str, Any], keys: Mapping[str, bytes]) -> dict[str, Any] | None:
    """The statement as it was sent (erased agents as placeholders), or None when its learner
    was erased. A plaintext statement (written before sealing) comes back as it is."""
    if SEALED not in statement:
        return statement
    body = open_body(statement, keys)
    if body is None:
        return None
    opened: dict[str, Any] = orjson.loads(body)
    return _Opener(keys).statement(opened) if statement[SEALED][3] else opened


def needed_keys(statements: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({key_id for s in statements for key_id in key_ids(s)})
