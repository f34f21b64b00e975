"""The error table of the reference API: one exception per code, rendered as the error envelope.

ApiError (status, code, type)
├── InvalidRequest        400 invalid_request       invalid_request_error
│   ├── UnknownEndpoint   404 (no such path: the status from HTTP, the envelope's code)
│   └── MethodNotAllowed  405 (no such method on the path)
├── InvalidApiKey         401 invalid_api_key       authentication_error
├── InsufficientCredits   402 insufficient_credits  billing_error
├── IpNotAllowed          403 ip_not_allowed        permission_error
├── ModelNotFound         404 model_not_found       invalid_request_error
├── TaskNotFound          404 task_not_found        invalid_request_error
├── RateLimitExceeded     429 rate_limit_exceeded   rate_limit_error
├── SpendLimitExceeded    429 spend_limit_exceeded  billing_error
├── InternalError         500 internal_error        api_error
├── UpstreamUnavailable   503 upstream_error        upstream_error
└── NotReady              503 not_ready             api_error  (ours: /readyz only)
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "api_error"
    default_message: ClassVar[str] = "An unexpected error occurred."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "type": self.type}}


class InvalidRequest(ApiError):
    status, code, type = 400, "invalid_request", "invalid_request_error"
    default_message = "Missing or invalid parameters."


class UnknownEndpoint(InvalidRequest):
    status = 404


class MethodNotAllowed(InvalidRequest):
    status = 405


class InvalidApiKey(ApiError):
    status, code, type = 401, "invalid_api_key", "authentication_error"
    default_message = "API key is invalid, disabled, or deleted."


class InsufficientCredits(ApiError):
    status, code, type = 402, "insufficient_credits", "billing_error"
    default_message = "Your credit balance is too low. Please top up."


class IpNotAllowed(ApiError):
    status, code, type = 403, "ip_not_allowed", "permission_error"
    default_message = "Request IP not in the key's allowlist."


class ModelNotFound(ApiError):
    status, code, type = 404, "model_not_found", "invalid_request_error"
    default_message = "Model does not exist or is inactive."


class TaskNotFound(ApiError):
    status, code, type = 404, "task_not_found", "invalid_request_error"
    default_message = "Task ID does not exist."


class RateLimitExceeded(ApiError):
    status, code, type = 429, "rate_limit_exceeded", "rate_limit_error"
    default_message = "Too many requests, please slow down."


class SpendLimitExceeded(ApiError):
    status, code, type = 429, "spend_limit_exceeded", "billing_error"
    default_message = "Key spend limit reached."


class InternalError(ApiError):
    status, code, type = 500, "internal_error", "api_error"
    default_message = "Unexpected server error."


class UpstreamUnavailable(ApiError):
    status, code, type = 503, "upstream_error", "upstream_error"
    default_message = "Upstream AI provider returned an error."


class NotReady(ApiError):
    """Not in the reference's table, and raised only by /readyz (outside /v1, no key): the
    process cannot serve because its database, its schema or Redis is not usable, which is no
    upstream provider's fault. The message names each cause."""

    status, code, type = 503, "not_ready", "api_error"
    default_message = "Not ready."
