"""Results and scores (xAPI Data 2.4.5)."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.base import Duration, Extensions, XAPIModel


class Score(XAPIModel):
    scaled: float | None = Field(default=None, ge=-1, le=1)
    raw: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _raw_within_min_and_max(self) -> Score:
        # Equal bounds are a real score (a zero-weight problem); only min > max is invalid.
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("score.min must not be greater than score.max")
        if self.raw is not None:
            if self.min is not None and self.raw < self.min:
                raise ValueError("score.raw must not be less than score.min")
            if self.max is not None and self.raw > self.max:
                raise ValueError("score.raw must not be greater than score.max")
        return self


class Result(XAPIModel):
    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    response: str | None = None
    duration: Duration | None = None
    extensions: Extensions | None = None
