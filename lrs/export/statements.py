"""What of a statement a district bundle carries.

A default bundle keeps what the xAPI spec constrains and a machine reads (ids, IRIs, times,
scores, success, completion, durations, language tags, attachment hashes) and every agent as a
pseudonym. Whatever a person or a tool may write freely is left out: language maps (verb display,
activity name and description, interaction component descriptions, attachment display and
description), result.response, context.platform and revision, moreInfo, fileUrl,
correctResponsesPattern and extension values. It is an allowlist rather than a blocklist because
real LMS plugins put a private message in an activity's description and its recipient's name and
LMS id in an extension (Moodle's logstore_xapi; Canvas through Caliper): a field stays because we
know what it holds, never because it looks harmless.

Extensions keep the agents they name, at any depth and in the same place, pseudonymised exactly
like the actor (a Caliper Person as well), and this LRS's own vocabulary, which the projections
read; any other extension value is free JSON. An activity typed as a person's profile page has
that person's LMS id in its IRI, so the IRI becomes a pseudonym too.

With --include-free-text the text comes back but the people in it do not: agents at any depth of
free JSON (a result.response holding JSON included) are pseudonymised, and email addresses, and
the names and account names of the people the LRS knows (the statement's own agents and every
learner in the projections), are replaced by their pseudonyms wherever the text repeats them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from lrs.export.pseudonyms import PSEUDONYM_HOME_PAGE, Pseudonymiser
from projections.facts import actor_key
from projections.vocabulary import COMPETENCY_EXTENSION, GOAL_DUE_EXTENSION, GOAL_TARGET_EXTENSION
from schemas.limits import MAX_JSON_DEPTH, nesting_depth_exceeds

# Extensions this LRS defines and the projections read: competency IRIs and dates.
OWN_EXTENSIONS = frozenset({COMPETENCY_EXTENSION, GOAL_TARGET_EXTENSION, GOAL_DUE_EXTENSION})
# Activities that are a person's page: LMSs put the person's id in the IRI.
PERSON_ACTIVITY_TYPES = frozenset({"http://id.tincanapi.com/activitytype/user-profile",
                                   "http://activitystrea.ms/schema/1.0/person"})
_IDS = ("id", "objectType", "timestamp", "stored", "version")
_COMPONENTS = ("choices", "scale", "source", "target", "steps")
_IFI_TEXT = ("mbox", "mbox_sha1sum", "openid")
_EMAIL = re.compile(r"(?:mailto:)?([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# Names and identifiers are matched as runs of words, whatever separates them: "O'Brien",
# "priya.r" and the "priya-ramanathan" of a file name are found like "Priya Ramanathan".
_WORD = re.compile(r"\w+")
# Shorter identifiers ("1", "42") would replace ordinary numbers: they are left alone.
MIN_IDENTIFIER = 4
MIN_NAME_WORD = 3
MAX_PHRASE_WORDS = 8


def _pick(source: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: source[k] for k in keys if k in source}


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def _identifier_of(key: str) -> str | None:
    """The part of an IFI key a text could repeat: account name, hash, OpenID (emails: _EMAIL)."""
    kind, _, value = key.partition(":")
    if kind == "account":
        return value.rpartition("|")[2]
    if kind in ("mbox_sha1sum", "openid"):
        return value
    return None


class KnownPeople:
    """Names and identifiers of people, each with the pseudonym that replaces it in free text.
    A statement's own people are a small layer over the export's learners (``parent``)."""

    def __init__(self, pseudonyms: Pseudonymiser, parent: KnownPeople | None = None) -> None:
        self.pseudonyms = pseudonyms
        self.parent = parent
        # identifiers (account names, hashes, OpenIDs) are always replaced; names unless names
        # are disclosed; name_words ("Tomasz" alone) only where the text capitalises them.
        self.tables: dict[str, dict[str, str]] = {"identifiers": {}, "names": {}, "name_words": {}}
        self.longest: int = parent.longest if parent is not None else 1
        self.first_words: set[str] = set()  # a word no entry starts with is passed over at once

    def add(self, key: str | None, names: Iterable[Any], pseudonym: str | None = None) -> None:
        if key is None and pseudonym is None:
            return
        replacement = pseudonym or self.pseudonyms.learner(key or "")
        identifier = _identifier_of(key) if key else None
        if identifier and len(identifier) >= MIN_IDENTIFIER:
            self._phrase("identifiers", identifier, replacement)
        for name in names:
            if isinstance(name, str) and len(name.strip()) >= MIN_NAME_WORD:
                if len(_words(name)) > 1:  # a one-word name ("Will") counts only capitalised
                    self._phrase("names", name, replacement)
                for word in _WORD.findall(name):
                    if len(word) >= MIN_NAME_WORD and word[0].isupper():
                        self.tables["name_words"].setdefault(word.casefold(), replacement)
                        self.first_words.add(word.casefold())

    def _phrase(self, table: str, text: str, replacement: str) -> None:
        words = _words(text)
        if words and len(words) <= MAX_PHRASE_WORDS:
            self.tables[table][" ".join(words)] = replacement
            self.longest = max(self.longest, len(words))
            self.first_words.add(words[0])

    def _starts(self, word: str) -> bool:
        layer: KnownPeople | None = self
        while layer is not None:
            if word in layer.first_words:
                return True
            layer = layer.parent
        return False

    def _find(self, table: str, phrase: str) -> str | None:
        layer: KnownPeople | None = self
        while layer is not None:
            hit = layer.tables[table].get(phrase)
            if hit is not None:
                return hit
            layer = layer.parent
        return None

    def scrub(self, text: str) -> str:
        """The text with every email and every known person's name and identifier replaced."""
        disclosure = self.pseudonyms.disclosure
        if not disclosure.emails:
            text = _EMAIL.sub(lambda m: self.pseudonyms.learner(actor_key(
                {"mbox": f"mailto:{m.group(1)}"}) or ""), text)
        names = not disclosure.names
        words = list(_WORD.finditer(text))
        folded = [w.group().casefold() for w in words]
        out: list[str] = []
        last = i = 0
        while i < len(words):
            if not self._starts(folded[i]):
                i += 1
                continue
            for n in range(min(self.longest, len(words) - i), 0, -1):
                phrase = " ".join(folded[i:i + n])
                hit = self._find("identifiers", phrase)
                if hit is None and names:
                    hit = self._find("names", phrase)
                    if hit is None and n == 1 and words[i].group()[0].isupper():
                        hit = self._find("name_words", phrase)
                if hit is not None:
                    out += [text[last:words[i].start()], hit]
                    last, i = words[i + n - 1].end(), i + n
                    break
            else:
                i += 1
        out.append(text[last:])
        return "".join(out)

    def scrub_number(self, value: int) -> int | str:
        """Moodle writes a user's id as a number (user_id: 42): the same id as their account."""
        return self._find("identifiers", str(value)) or value


def _agent_shape(value: dict[str, Any]) -> dict[str, Any] | None:
    """An agent of free JSON reduced to what an agent holds; None when the object is not one.
    LMS plugins put agents in extensions without objectType, and anything may be malformed."""
    out: dict[str, Any] = {k: value[k] for k in _IFI_TEXT if isinstance(value.get(k), str)}
    if isinstance(value.get("account"), dict):
        out["account"] = value["account"]
    kind = value.get("objectType")
    if not out and kind not in ("Agent", "Group"):
        return None
    if kind in ("Agent", "Group"):
        out["objectType"] = kind
    if isinstance(value.get("name"), str):
        out["name"] = value["name"]
    if isinstance(value.get("member"), list):
        members = [_agent_shape(m) for m in value["member"] if isinstance(m, dict)]
        out["member"] = [m for m in members if m is not None]
        out["objectType"] = "Group"
    return out


def _caliper_person(value: dict[str, Any]) -> bool:
    return value.get("type") == "Person" and isinstance(value.get("id"), str)


Someone = tuple[str | None, Any, str | None]  # IFI key, name, pseudonym (a Caliper Person's)


def _people_in(value: Any, person_pseudonym: Callable[[dict[str, Any]], str],
               depth: int = 0) -> Iterable[Someone]:
    """(IFI key, name, pseudonym) of every agent and Caliper Person at any depth of a statement."""
    if depth > MAX_JSON_DEPTH:
        return
    if isinstance(value, dict):
        if _caliper_person(value):
            yield None, value.get("name"), person_pseudonym(value)
        elif (shape := _agent_shape(value)) is not None:
            yield actor_key(shape), shape.get("name"), None
        for child in value.values():
            yield from _people_in(child, person_pseudonym, depth + 1)
    elif isinstance(value, list):
        for child in value:
            yield from _people_in(child, person_pseudonym, depth + 1)


class PseudonymousStatements:
    """Statements as a bundle carries them: see the module's docstring for what stays."""

    def __init__(self, pseudonyms: Pseudonymiser, known: KnownPeople | None = None) -> None:
        self.pseudonyms = pseudonyms
        self.known = known if known is not None else KnownPeople(pseudonyms)

    def rewrite(self, statement: dict[str, Any]) -> dict[str, Any]:
        people: KnownPeople | None = None
        if self.pseudonyms.disclosure.free_text:
            people = KnownPeople(self.pseudonyms, parent=self.known)
            # The authority is the credential that sent the statement (an app's name), not a person
            # the text could mention.
            parts = {k: v for k, v in statement.items() if k != "authority"}
            for key, name, pseudonym in _people_in(parts, self._person_pseudonym):
                people.add(key, [name], pseudonym)
        return _Rewrite(self, people).statement(statement)

    def _person_pseudonym(self, person: dict[str, Any]) -> str:
        return self.pseudonyms.learner(f"caliper:{person['id']}")


class _Rewrite:
    """One statement's rewrite; ``people`` is set when free text is disclosed."""

    def __init__(self, owner: PseudonymousStatements, people: KnownPeople | None) -> None:
        self.owner = owner
        self.pseudonyms = owner.pseudonyms
        self.people = people

    def statement(self, statement: dict[str, Any]) -> dict[str, Any]:
        out = _pick(statement, _IDS)
        out["actor"] = self.pseudonyms.agent(statement["actor"])
        if "authority" in statement:
            out["authority"] = self.pseudonyms.agent(statement["authority"])
        verb = statement["verb"]
        out["verb"] = {"id": verb["id"]}
        self._free(verb, out["verb"], ("display",))
        out["object"] = self.object(statement["object"])
        if "result" in statement:
            out["result"] = self.result(statement["result"])
        if "context" in statement:
            out["context"] = self.context(statement["context"])
        if "attachments" in statement:
            out["attachments"] = [self.attachment(a) for a in statement["attachments"]]
        return out

    # --- the parts of a statement ----------------------------------------------------------

    def object(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = obj.get("objectType")
        if kind in ("Agent", "Group"):
            return self.pseudonyms.agent(obj)
        if kind == "SubStatement":
            return self.statement(obj)
        if kind == "StatementRef":
            return {"objectType": kind, "id": obj["id"]}
        return self.activity(obj)

    def activity(self, activity: dict[str, Any]) -> dict[str, Any]:
        out = _pick(activity, ("objectType",))
        definition = activity.get("definition") or {}
        iri = activity["id"]
        if definition.get("type") in PERSON_ACTIVITY_TYPES or iri.startswith("mailto:"):
            iri = f"{PSEUDONYM_HOME_PAGE}:activity:{self.pseudonyms.learner('activity:' + iri)}"
        out["id"] = iri
        if definition:
            kept = _pick(definition, ("type", "interactionType"))
            for name in _COMPONENTS:
                if name in definition:
                    kept[name] = [self._component(c) for c in definition[name]]
            self._extensions(definition, kept)
            self._free(definition, kept, ("name", "description", "moreInfo", "correctResponsesPattern"))
            if kept:
                out["definition"] = kept
        return out

    def _component(self, component: dict[str, Any]) -> dict[str, Any]:
        out = {"id": component["id"]}
        self._free(component, out, ("description",))
        return out

    def result(self, result: dict[str, Any]) -> dict[str, Any]:
        out = _pick(result, ("score", "success", "completion", "duration"))
        self._extensions(result, out)
        if self.people is not None and isinstance(result.get("response"), str):
            out["response"] = self._response(result["response"])
        return out

    def context(self, context: dict[str, Any]) -> dict[str, Any]:
        out = _pick(context, ("registration", "language", "statement"))
        for key in ("instructor", "team"):
            if key in context:
                out[key] = self.pseudonyms.agent(context[key])
        if "contextAgents" in context:
            out["contextAgents"] = [{**c, "agent": self.pseudonyms.agent(c["agent"])}
                                    for c in context["contextAgents"]]
        if "contextGroups" in context:
            out["contextGroups"] = [{**c, "group": self.pseudonyms.agent(c["group"])}
                                    for c in context["contextGroups"]]
        if "contextActivities" in context:
            out["contextActivities"] = {
                key: [self.activity(a) for a in found] if isinstance(found, list) else self.activity(found)
                for key, found in context["contextActivities"].items()}
        self._extensions(context, out)
        self._free(context, out, ("platform", "revision"))
        return out

    def attachment(self, attachment: dict[str, Any]) -> dict[str, Any]:
        out = _pick(attachment, ("usageType", "contentType", "length", "sha2"))
        self._free(attachment, out, ("display", "description", "fileUrl"))
        return out

    # --- extensions and free JSON ----------------------------------------------------------

    def _extensions(self, source: dict[str, Any], out: dict[str, Any]) -> None:
        extensions = source.get("extensions")
        if not isinstance(extensions, dict):
            return
        kept: dict[str, Any] = {}
        for key, value in extensions.items():
            if self.people is not None:
                kept[key] = self.free(value)
            elif key in OWN_EXTENSIONS:
                kept[key] = value
            else:
                agents = self._agents_only(value)
                if agents is not None:
                    kept[key] = agents
        if kept:
            out["extensions"] = kept

    def _free_agent(self, value: dict[str, Any]) -> dict[str, Any] | None:
        if _caliper_person(value):
            person = {"type": "Person", "id": f"{PSEUDONYM_HOME_PAGE}:"
                      f"{self.owner._person_pseudonym(value)}"}
            if self.pseudonyms.disclosure.names and isinstance(value.get("name"), str):
                person["name"] = value["name"]
            return person
        shape = _agent_shape(value)
        return self.pseudonyms.agent(shape) if shape is not None else None

    def _agents_only(self, value: Any, depth: int = 0) -> Any:
        """Free JSON in a default bundle: the agents it names, in place; None when there is none."""
        if depth > MAX_JSON_DEPTH:
            return None
        if isinstance(value, dict):
            agent = self._free_agent(value)
            if agent is not None:
                return agent
            inner = {k: v for k, child in value.items()
                     if (v := self._agents_only(child, depth + 1)) is not None}
            return inner or None
        if isinstance(value, list):
            items = [v for child in value if (v := self._agents_only(child, depth + 1)) is not None]
            return items or None
        return None

    def free(self, value: Any, depth: int = 0) -> Any:
        """Free JSON with --include-free-text: all of it, with the people in it pseudonymised."""
        assert self.people is not None
        if depth > MAX_JSON_DEPTH:
            return None
        if isinstance(value, dict):
            agent = self._free_agent(value)
            if agent is not None:
                return agent
            return {self.people.scrub(k): self.free(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.free(v, depth + 1) for v in value]
        if isinstance(value, str):
            return self.people.scrub(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.people.scrub_number(value)
        return value

    def _free(self, source: dict[str, Any], out: dict[str, Any], names: tuple[str, ...]) -> None:
        if self.people is None:
            return
        for name in names:
            if name in source:
                out[name] = self.free(source[name])

    def _response(self, response: str) -> str:
        """A response that is JSON (some tools send an object) is walked like an extension."""
        assert self.people is not None
        if response.lstrip()[:1] in ("{", "["):
            try:
                parsed = orjson.loads(response)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict | list) and not nesting_depth_exceeds(parsed):
                return orjson.dumps(self.free(parsed)).decode()
        return self.people.scrub(response)
