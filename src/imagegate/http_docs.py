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


def finished(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's ``schema`` made true to what the server sends: no 422 (a request that fails
    validation gets the envelope with 400, see http_errors.py), the Bearer scheme declared."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            for param in operation.get("parameters", []):
                param["schema"] = _never_null(param["schema"])
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return with_security(schema)


def _never_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without FastAPI's ``null`` branch for an optional one: a query
    string or header has no null, only absence."""
    options = schema.get("anyOf")
    if not isinstance(options, list) or {"type": "null"} not in options or len(options) != 2:
        return schema
    (present,) = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**present, **rest}


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
