"""Activities and their definitions (xAPI Data 2.4.4.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from schemas.base import IRI, Extensions, IdIRI, LanguageMap, XAPIModel

InteractionType = Literal[
    "true-false", "choice", "fill-in", "long-fill-in", "matching", "performance",
    "sequencing", "likert", "numeric", "other",
]

# Which component lists each interaction type may carry (Data 2.4.4.1, table "Interaction Components").
_COMPONENTS_ALLOWED: dict[str, set[str]] = {
    "choice": {"choices"},
    "sequencing": {"choices"},
    "likert": {"scale"},
    "matching": {"source", "target"},
    "performance": {"steps"},
}
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")


class InteractionComponent(XAPIModel):
    id: str
    description: LanguageMap | None = None


class ActivityDefinition(XAPIModel):
    name: LanguageMap | None = None
    description: LanguageMap | None = None
    type: IRI | None = None
    moreInfo: IRI | None = None
    extensions: Extensions | None = None
    interactionType: InteractionType | None = None
    correctResponsesPattern: list[str] | None = None
    choices: list[InteractionComponent] | None = None
    scale: list[InteractionComponent] | None = None
    source: list[InteractionComponent] | None = None
    target: list[InteractionComponent] | None = None
    steps: list[InteractionComponent] | None = None

    @model_validator(mode="after")
    def _components_fit_interaction_type(self) -> ActivityDefinition:
        present = [name for name in _COMPONENT_LISTS if getattr(self, name) is not None]
        if self.interactionType is None:
            if present or self.correctResponsesPattern is not None:
                raise ValueError(
                    "interaction properties (correctResponsesPattern, "
                    f"{', '.join(present) or 'components'}) require interactionType"
                )
            return self
        allowed = _COMPONENTS_ALLOWED.get(self.interactionType, set())
        for name in present:
            if name not in allowed:
                raise ValueError(
                    f"'{name}' is not allowed for interactionType '{self.interactionType}'"
                )
            ids = [component.id for component in getattr(self, name)]
            if len(ids) != len(set(ids)):
                raise ValueError(f"interaction component ids in '{name}' must be unique")
        return self


class Activity(XAPIModel):
    objectType: Literal["Activity"] | None = None
    id: IdIRI
    definition: ActivityDefinition | None = None
