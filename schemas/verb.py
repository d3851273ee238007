"""Verbs (xAPI Data 2.4.3)."""

from __future__ import annotations

from schemas.base import IdIRI, LanguageMap, XAPIModel

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


class Verb(XAPIModel):
    id: IdIRI
    display: LanguageMap | None = None
