"""What /openapi.json says of the API's operations beyond their success: the error responses
each one really sends (the reference's envelope), and the Bearer key they need."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel

from imagegate import errors
from imagegate.errors import ApiError

BEARER = "bearerAuth"


class ErrorBody(BaseModel):
    code: str
    message: str
    type: str


class ErrorEnvelope(BaseModel):
    """Every error: the reference's envelope, {"error": {code, message, type}}."""

    error: ErrorBody


# Every API operation can answer these: the key (401), its IP allowlist (403), its rate limit
# (429), a fault of ours (500).
AUTHENTICATED: tuple[type[ApiError], ...] = (
    errors.InvalidApiKey,
    errors.IpNotAllowed,
    errors.RateLimitExceeded,
    errors.InternalError,
)


def responses(*raised: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an authenticated operation that may also raise ``raised``."""
    codes: dict[int, list[str]] = defaultdict(list)
    for error in (*AUTHENTICATED, *raised):
        if error.code not in codes[error.status]:
            codes[error.status].append(error.code)
    return {
        status: {
            "description": "Error: " + ", ".join(codes[status]),
            "model": ErrorEnvelope,
        }
        for status in sorted(codes)
    }


def parameter(
    name: str, where: Literal["query", "header", "path"], schema: dict[str, Any], about: str = ""
) -> dict[str, Any]:
    """A parameter read by hand from the request (so FastAPI does not solve it per request)."""
    return {"name": name, "in": where, "required": where == "path", "schema": schema,
            "description": about}  # fmt: skip


def with_security(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the Bearer scheme declared and required by every /v1 operation."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer sk-...`",
    }
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                operation["security"] = [{BEARER: []}]
    return schema
