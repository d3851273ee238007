"""Attachment metadata (xAPI Data 2.4.11)."""

from __future__ import annotations

from pydantic import Field

from schemas.base import IRI, LanguageMap, MediaType, Sha2Sum, XAPIModel

SIGNATURE_USAGE_TYPE = "http://adlnet.gov/expapi/attachments/signature"


class Attachment(XAPIModel):
    usageType: IRI
    display: LanguageMap
    description: LanguageMap | None = None
    contentType: MediaType
    length: int = Field(ge=0)
    sha2: Sha2Sum
    fileUrl: IRI | None = None
