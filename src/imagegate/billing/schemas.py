"""The wire shape of GET /v1/credits, for /openapi.json."""

from __future__ import annotations

from pydantic import BaseModel


class Credits(BaseModel):
    credits: int


class CreditsResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: Credits
