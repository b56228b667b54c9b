"""The base of request bodies: unknown fields refused, and no NUL character in any text
(Postgres refuses NUL in text: such a value is the client's mistake, a 422, never a failed
query)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value
