"""imagegate's errors in OpenAI's shape, ``{"error": {message, type, param, code}}``, with the
status codes OpenAI's SDKs turn into their exception classes (400 BadRequestError, 401
AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 429 RateLimitError, 5xx
InternalServerError). Out of credits is OpenAI's 429 ``insufficient_quota``."""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse

from imagegate.errors import ApiError

# Our code -> (status (None: ours), OpenAI's type, OpenAI's code); the rest keep all three.
_AS_OPENAI: dict[str, tuple[int | None, str, str | None]] = {
    "invalid_request": (None, "invalid_request_error", None),  # 400, 404 unknown path, 405
    "invalid_api_key": (401, "invalid_request_error", "invalid_api_key"),
    "insufficient_credits": (429, "insufficient_quota", "insufficient_quota"),
    "ip_not_allowed": (403, "permission_error", "ip_not_allowed"),
    "model_not_found": (404, "invalid_request_error", "model_not_found"),
    "rate_limit_exceeded": (429, "requests", "rate_limit_exceeded"),
    "spend_limit_exceeded": (429, "insufficient_quota", "spend_limit_exceeded"),
    "internal_error": (500, "server_error", None),
    "upstream_error": (503, "server_error", "upstream_error"),
}
_FIELD = re.compile(r"^'([^']+)'")
# OpenAI's SDKs retry 429 and 5xx unless told not to: no credits, a spent limit and a generation
# that failed are not helped by asking again at once.
NO_RETRY = {"x-should-retry": "false"}
_FINAL = ("insufficient_credits", "spend_limit_exceeded")


def openai_error(error: ApiError) -> JSONResponse:
    status, kind, code = _AS_OPENAI.get(error.code, (error.status, error.type, error.code))
    found = _FIELD.match(error.message)
    param = found.group(1) if found else None
    headers = {**error.headers, **NO_RETRY} if error.code in _FINAL else error.headers
    return error_body(status or error.status, error.message, kind, code, param, headers)


def error_body(
    status: int,
    message: str,
    kind: str,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)
