"""What a statement can be found by: the pure mapping from a statement to its index row."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from lrs.definitions import definitions_of
from lrs.pickled import by_fields
from schemas.activity import Activity
from schemas.actor import Agent, Group, ifi_key
from schemas.context import Context, StatementRef
from schemas.statement import Statement, SubStatement

# Key prefixes: lower case for the narrow filter, upper case for the related_* filter.
AGENT, AGENT_RELATED = "a", "A"
ACTIVITY, ACTIVITY_RELATED = "c", "C"
_NARROW = {AGENT_RELATED: AGENT, ACTIVITY_RELATED: ACTIVITY}
VERB = "v"
REGISTRATION = "r"
KEY_HASHES_REMEMBERED = 1 << 13  # ~1.7 MB of keys and hashes, per store and process
_ACTORS = (Agent, Group)  # a tuple: `Agent | Group` builds a union object on every call


@by_fields
@dataclass(frozen=True, slots=True)
class IndexRow:
    statement_id: str
    verb_id: str
    object_ref: str | None
    voids: str | None
    registration: str | None
    credential: str
    keys: frozenset[str]  # the filter keys
    key_hashes: tuple[int, ...] | None = None  # the keys as the index holds them, if hashed ahead
    attachments: tuple[str, ...] = ()  # SHA-2 of each attachment whose bytes came with it
    definitions: tuple[tuple[str, dict[str, Any] | None], ...] = ()
    agent_names: tuple[tuple[str, str], ...] = ()

    def hashed(self, key_hashes: tuple[int, ...]) -> IndexRow:
        """This row with its keys as the index holds them, in place of their text; made in one
        construction, as dataclasses.replace (which looks every field up again) is not."""
        return IndexRow(
            statement_id=self.statement_id, verb_id=self.verb_id, object_ref=self.object_ref,
            voids=self.voids, registration=self.registration, credential=self.credential,
            keys=frozenset(), key_hashes=key_hashes, attachments=self.attachments,
            definitions=self.definitions, agent_names=self.agent_names)


def key_hasher(secret: bytes) -> functools._lru_cache_wrapper[int]:
    """How the index holds a filter key: the first 8 bytes of SHA-256(secret + key), a signed
    integer. The text (an IFI or IRI and a prefix, ~45 bytes) made the key table most of the
    index, and each of a statement's ~8 keys was a B-tree entry of it twice. The store's own
    random secret means nobody without its database can make a key whose hash another's has:
    erasure finds and deletes a learner's rows by hash. By chance, a filter shares its hash with
    another of 10^7 distinct keys with odds of 1 in 2 x 10^12. In PostgreSQL's SQL, with the
    secret as a bytea parameter: KEY_HASH_SQL (lrs/store/postgres.py)."""
    keyed = hashlib.sha256(secret)

    # Remembered: a store's statements name the same verbs, activities, learners and
    # registrations again and again, and a hash made afresh (0.65 us) cost a statement of
    # ~7 keys 4.5 us of a worker's CPU, a remembered one 0.05 us a key. Bounded, so a client
    # that sends new keys only makes old ones go; forgotten at each erasure (a learner's IFI is
    # a key: StatementIndexSQL.forget_key_hashes).
    @functools.lru_cache(maxsize=KEY_HASHES_REMEMBERED)
    def key_hash(key: str) -> int:
        h = keyed.copy()
        h.update(key.encode())
        return int.from_bytes(h.digest()[:8], "big", signed=True)

    return key_hash


def _actor_ifis(actor: Agent | Group | None) -> list[str]:
    """An actor's own IFI and, for a group, its members' (Communication 2.1.3, 'agent')."""
    if actor is None:
        return []
    found = [ifi_key(actor)]
    if isinstance(actor, Group) and actor.member:
        found.extend(ifi_key(member) for member in actor.member)
    return [ifi for ifi in found if ifi is not None]


def _context_agents(context: Context | None) -> list[str]:
    if context is None:
        return []
    found = _actor_ifis(context.instructor) + _actor_ifis(context.team)
    for context_agent in context.contextAgents or []:
        found += _actor_ifis(context_agent.agent)
    for context_group in context.contextGroups or []:
        found += _actor_ifis(context_group.group)
    return found


def _context_activities(context: Context | None) -> list[str]:
    if context is None or context.contextActivities is None:
        return []
    lists = context.contextActivities
    return [a.id for group in (lists.parent, lists.grouping, lists.category, lists.other)
            for a in group or []]


def _object_agents(obj: object) -> list[str]:
    return _actor_ifis(obj) if isinstance(obj, _ACTORS) else []


def key_forms(key: str) -> tuple[str, ...]:
    """The stored keys a filter key matches: a related_* key matches its narrow form too, since
    a statement stores the related form only for what is not also its actor or object."""
    prefix, _, rest = key.partition(":")
    narrow = _NARROW.get(prefix)
    return (key,) if narrow is None else (key, f"{narrow}:{rest}")


def statement_keys(statement: Statement, authority: Agent | Group | None) -> frozenset[str]:
    """Index keys for the agent, activity, verb and registration filters; ``authority`` is the
    one the LRS set (Data 2.4.9), not the one the statement may have been sent with.

    An agent or activity that is the actor or object has the narrow key alone: its related
    key would be a second row, in every statement, that the narrow one already answers (two
    of a typical statement's eight rows; at 200k stored a write of 100 dirtied 566 pages of
    the key table with them, 360 without), so a related filter reads both (``key_forms``)."""
    direct_agents = _actor_ifis(statement.actor) + _object_agents(statement.object)
    related_agents = _actor_ifis(authority)
    related_agents += _context_agents(statement.context)
    direct_activities = [statement.object.id] if isinstance(statement.object, Activity) else []
    related_activities = _context_activities(statement.context)
    if isinstance(statement.object, SubStatement):
        sub = statement.object
        related_agents += _actor_ifis(sub.actor) + _object_agents(sub.object)
        related_agents += _context_agents(sub.context)
        if isinstance(sub.object, Activity):
            related_activities.append(sub.object.id)
        related_activities += _context_activities(sub.context)
    keys = {f"{VERB}:{statement.verb.id}"}
    keys.update(f"{AGENT}:{ifi}" for ifi in direct_agents)
    keys.update(f"{AGENT_RELATED}:{ifi}" for ifi in related_agents if ifi not in direct_agents)
    keys.update(f"{ACTIVITY}:{iri}" for iri in direct_activities)
    keys.update(f"{ACTIVITY_RELATED}:{iri}" for iri in related_activities
                if iri not in direct_activities)
    if statement.context is not None and statement.context.registration is not None:
        keys.add(f"{REGISTRATION}:{statement.context.registration}")
    return frozenset(keys)


def _named_agents(statement: Statement) -> list[tuple[str, str]]:
    named = []
    for actor in (statement.actor, statement.object, statement.context and statement.context.instructor):
        if isinstance(actor, Agent) and actor.name is not None:
            ifi = ifi_key(actor)
            if ifi is not None:
                named.append((ifi, actor.name))
    return named


def index_row(statement: Statement, statement_id: str, credential: str,
              authority: Agent | Group | None, can_define: bool = False,
              carried: frozenset[str] = frozenset()) -> IndexRow:
    """Built where the statement is validated, so the one writer only writes (``stored`` is the
    writer's to set, at the write)."""
    ref = statement.object.id if isinstance(statement.object, StatementRef) else None
    registration = statement.context.registration if statement.context else None
    return IndexRow(
        statement_id=statement_id,
        verb_id=statement.verb.id,
        object_ref=ref,
        voids=statement.voids,
        registration=registration,
        credential=credential,
        keys=statement_keys(statement, authority),
        attachments=tuple(sorted(carried)),
        # Without the define scope a statement's activities are known, not (re)defined (Comm. 4.0).
        definitions=tuple((activity_id, definition if can_define else None)
                          for activity_id, definition in definitions_of(statement)),
        agent_names=tuple(_named_agents(statement)),
    )
