"""What /openapi.json declares for routes that read their query, headers and body raw.

The xAPI routes read the raw query string on purpose (to refuse unknown parameters and keep one
validation path, in ``schemas`` and ``lrs.api.params``), so FastAPI cannot see what they take.
Each route names its parameters and body here, through ``openapi_extra``; the data model's
JSON Schema comes from the same pydantic models that validate it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from schemas.actor import IFI_PROPERTIES, Actor
from schemas.base import IdIRI, UUIDString
from schemas.statement import Statement
from schemas.version import SUPPORTED

_REF = "#/components/schemas/{model}"
Operation = dict[str, Any]

STATEMENT = {"$ref": _REF.format(model="Statement")}
ACTOR = {"$ref": _REF.format(model="Actor")}
ERROR = {"$ref": _REF.format(model="Error")}
IRI_STRING = TypeAdapter(IdIRI).json_schema()
UUID_STRING = {**TypeAdapter(UUIDString).json_schema(), "format": "uuid"}
TIMESTAMP = {"type": "string", "format": "date-time"}
BOOLEAN = {"type": "boolean"}
BINARY = {"type": "string", "format": "binary"}
SECURED: list[dict[str, list[str]]] = [{"basic": []}]


def query(name: str, schema: dict[str, Any], description: str,
          required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def json_query(name: str, schema: dict[str, Any], description: str,
               required: bool = False) -> dict[str, Any]:
    """A query parameter whose value is a JSON document (an Agent, a Group)."""
    return {"name": name, "in": "query", "required": required, "description": description,
            "content": {"application/json": {"schema": schema}}}


def header(name: str, schema: dict[str, Any], description: str,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema,
            "description": description}


VERSION = header("X-Experience-API-Version", {"type": "string", "enum": list(SUPPORTED)},
                 "the xAPI version the client speaks (1.0.x is answered as 1.0.3)",
                 required=True)
IF_MATCH = header("If-Match", {"type": "string"}, "write only if the document's ETag is one of"
                  " these (or '*': only if it exists)")
IF_NONE_MATCH = header("If-None-Match", {"type": "string"}, "'*': write only if there is no"
                       " document yet")


def errors(*statuses: int) -> dict[str, Any]:
    """Error answers: each a JSON object naming the property or parameter and the rule."""
    return {str(status): {"description": _ERROR_MEANINGS[status],
                          "content": {"application/json": {"schema": ERROR}}}
            for status in statuses}


_ERROR_MEANINGS = {
    400: "a parameter, header or body breaks a rule; the message names it and the rule",
    401: "no credential, or an unknown, wrong or revoked one",
    403: "the credential lacks the scope this needs; the message names the scopes that would do",
    404: "nothing here by that id",
    409: "a statement id already stored with different content, or a profile document"
         " overwritten without a precondition",
    412: "If-Match or If-None-Match did not hold; nothing changed",
    413: "the body exceeds a configured limit (named in the message)",
    415: "this Content-Type is not accepted here",
    429: "too many failed authentications or requests; see Retry-After",
    503: "the projections are busy or restarting; see Retry-After",
}
_CREDENTIALED = errors(400, 401, 403, 429)


def operation(*parameters: dict[str, Any], body: dict[str, Any] | None = None,
              answers: dict[str, Any] | None = None, secured: bool = True) -> Operation:
    """The ``openapi_extra`` of one route: its parameters, its body, the answers it may give."""
    extra: Operation = {"parameters": list(parameters),
                        "responses": {**(_CREDENTIALED if secured else {}), **(answers or {})}}
    if body is not None:
        extra["requestBody"] = body
    if secured:
        extra["security"] = SECURED
    return extra


# --- Statements (Communication 2.1) -------------------------------------------------------------

_STATEMENTS = {"oneOf": [STATEMENT, {"type": "array", "items": STATEMENT, "minItems": 1}]}
_STATEMENTS_BODY = {
    "required": True,
    "description": "one statement or an array of them; multipart/mixed carries the statements"
                   " first (application/json), then one part per attachment, each with"
                   " X-Experience-API-Hash and Content-Transfer-Encoding: binary"
                   " (Communication 1.5.2)",
    "content": {
        "application/json": {"schema": _STATEMENTS},
        "multipart/mixed": {
            "schema": {"type": "object", "required": ["statements"],
                       "properties": {"statements": _STATEMENTS}, "additionalProperties": False},
            "encoding": {"statements": {"contentType": "application/json"}},
        },
    },
}
STATEMENT_ID = query("statementId", UUID_STRING, "the id of the statement")
STATEMENTS_PUT = operation(
    {**STATEMENT_ID, "required": True}, VERSION, body=_STATEMENTS_BODY,
    answers=errors(409, 413, 415))
STATEMENTS_POST = operation(
    VERSION, body=_STATEMENTS_BODY, answers={
        "200": {"description": "the ids of the statements, in the order sent",
                "content": {"application/json": {"schema": {
                    "type": "array", "items": UUID_STRING}}}},
        **errors(409, 413, 415)})
STATEMENTS_GET = operation(
    STATEMENT_ID,
    query("voidedStatementId", UUID_STRING, "the id of a voided statement"),
    json_query("agent", ACTOR, "an Agent or identified Group: the actor or object"),
    query("verb", IRI_STRING, "the verb id"),
    query("activity", IRI_STRING, "the object's activity id"),
    query("registration", UUID_STRING, "the context's registration"),
    query("related_activities", BOOLEAN, "activity also matches context and sub-statement"
          " activities"),
    query("related_agents", BOOLEAN, "agent also matches authority, instructor, team and"
          " sub-statement agents"),
    query("since", TIMESTAMP, "stored after this moment"),
    query("until", TIMESTAMP, "stored at or before this moment"),
    query("limit", {"type": "integer", "minimum": 0}, "statements per page (0: the server's"
          " maximum)"),
    query("format", {"type": "string", "enum": ["ids", "exact", "canonical"]},
          "how agents, groups and activities are rendered"),
    query("attachments", BOOLEAN, "answer multipart/mixed with the attachments"),
    query("ascending", BOOLEAN, "oldest first"),
    query("more", {"type": "string"}, "the opaque next-page token of a 'more' link; sent alone"),
    header("Accept-Language", {"type": "string"}, "languages for format=canonical"),
    VERSION,
    answers={"200": {"description": "a StatementResult, or one statement by id",
                     "content": {"application/json": {"schema": {"type": "object"}},
                                 "multipart/mixed": {"schema": BINARY}}},
             **errors(404)})


# --- Documents: State, Activity Profile, Agent Profile (Communication 2.3, 2.5, 2.6) -----------

ACTIVITY_ID = query("activityId", IRI_STRING, "the activity the document belongs to")
AGENT = json_query("agent", ACTOR, "the Agent (or identified Group) the document belongs to")
_DOCUMENT_BODY = {
    "required": True,
    "description": "any content, stored byte for byte with its Content-Type; POST merges the"
                   " top-level properties of two JSON objects",
    "content": {"application/json": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": BINARY}},
}


def document_operations(context: tuple[str, ...], optional: tuple[str, ...], id_param: str,
                        delete_needs_id: bool) -> dict[str, Operation]:
    """The operations of one document resource, by method."""
    named = {"activityId": ACTIVITY_ID, "agent": AGENT,
             "registration": query("registration", UUID_STRING, "the registration")}
    keys = [{**named[name], "required": True} for name in context]
    keys += [named[name] for name in optional]
    document_id = query(id_param, {"type": "string"}, "the document's id")
    required_id = {**document_id, "required": True}
    since = query("since", TIMESTAMP, f"list the ids updated after this moment (without"
                  f" {id_param})")
    write = operation(*keys, required_id, IF_MATCH, IF_NONE_MATCH, VERSION, body=_DOCUMENT_BODY,
                      answers=errors(409, 412, 413))
    read = operation(*keys, document_id, since, VERSION, answers={
        "200": {"description": f"the document, or the ids (without {id_param})",
                "content": {"*/*": {"schema": {}}}}, **errors(404)})
    delete = operation(*keys, required_id if delete_needs_id else document_id, IF_MATCH,
                       IF_NONE_MATCH, VERSION, answers=errors(404, 412))
    return {"PUT": write, "POST": write, "GET": read, "HEAD": read, "DELETE": delete}


# --- Activities, Agents, About (Communication 2.4, 2.5, 2.7) ------------------------------------

ACTIVITY_GET = operation({**ACTIVITY_ID, "required": True}, VERSION, answers=errors(404))
PERSON_GET = operation(
    {**json_query("agent", ACTOR, "the Agent to describe"), "required": True}, VERSION,
    answers={"200": {"description": "the Person object: the names and identifiers known",
                     "content": {"application/json": {"schema": {"type": "object"}}}}})
ABOUT_GET = operation(secured=False, answers={"200": {
    "description": "the xAPI versions spoken, and this server's name and version",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["version"],
        "properties": {"version": {"type": "array", "items": {"type": "string"}},
                       "extensions": {"type": "object"}}}}}}})


# --- Learner analytics and SQL -------------------------------------------------------------------

HEALTH_GET = operation(secured=False, answers={"200": {
    "description": "the status and the projections' lag; no credential needed",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["status", "projections"],
        "properties": {"status": {"type": "string", "enum": ["ok", "degraded"]},
                       "projections": {"type": "object"}}}}}}})
ANALYTICS_GET = operation(answers=errors(404, 503))
MASTERY_GET = operation(query("as_of", TIMESTAMP, "mastery as it stood at this moment"),
                        answers=errors(404, 503))
SQL_POST = operation(body={"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}}}}}},
    answers=errors(404, 503))


# --- The document ---------------------------------------------------------------------------------

class _AbsentNotNull(GenerateJsonSchema):
    """An optional property of the data model is left out, never null (the models refuse null):
    its schema has no null alternative and no null default."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        described = super().default_schema(schema)
        if "default" in described and described["default"] is None:
            del described["default"]
        return described


def _components() -> dict[str, Any]:
    statement = TypeAdapter(Statement).json_schema(ref_template=_REF,
                                                   schema_generator=_AbsentNotNull)
    actor = TypeAdapter(Actor).json_schema(ref_template=_REF, schema_generator=_AbsentNotNull)
    schemas = {**statement.pop("$defs", {}), **actor.pop("$defs", {})}
    # An Agent has exactly one IFI; a Group one, or none and members (Data 2.4.2), which
    # pydantic's schema cannot say.
    one_ifi = [{"required": [ifi]} for ifi in IFI_PROPERTIES]
    schemas["Agent"]["oneOf"] = one_ifi
    schemas["Group"]["oneOf"] = [*one_ifi, {"required": ["member"], "not": {"anyOf": one_ifi},
                                            "properties": {"member": {"minItems": 1}}}]
    schemas["Statement"] = statement
    schemas["Actor"] = actor
    schemas["Error"] = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["status", "message"],
                                 "properties": {"status": {"type": "integer"},
                                                "message": {"type": "string"}}}}}
    return schemas


def install_openapi(app: FastAPI) -> None:
    """Add the data model's schemas and HTTP Basic to the document FastAPI builds."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            for operations in document["paths"].values():
                for described in operations.values():
                    # A parameter FastAPI rejects is answered 400 like every other (lrs.api.errors).
                    described["responses"].pop("422", None)
            components = document.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            schemas.update(_components())
            components["securitySchemes"] = {"basic": {
                "type": "http", "scheme": "basic",
                "description": "an LRS credential, key:secret (lrs credentials add)"}}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
