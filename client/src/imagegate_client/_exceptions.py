"""Every error the SDK raises, under one base class. Catch at the level you can handle:

ImagegateError
├── APIConnectionError          no HTTP response: refused, reset, DNS, TLS
│   └── APITimeoutError         no response within the call's timeout
├── APIError                    an error response: .status_code .code .type .message
│   │                           .response, .retry_after (the Retry-After header, seconds)
│   ├── InvalidRequestError         400 invalid_request
│   ├── AuthenticationError         401 invalid_api_key
│   ├── InsufficientCreditsError    402 insufficient_credits
│   ├── IpNotAllowedError           403 ip_not_allowed
│   ├── NotFoundError               404 (any code)
│   │   ├── ModelNotFoundError      404 model_not_found
│   │   └── TaskNotFoundError       404 task_not_found
│   ├── RateLimitError              429 rate_limit_exceeded
│   ├── SpendLimitError             429 spend_limit_exceeded
│   ├── InternalServerError         500 internal_error, and any other 5xx
│   │   └── NotReadyError           503 not_ready (GET /readyz: a dependency is down)
│   └── UpstreamError               503 upstream_error
├── TaskFailedError             generate(): the task ended failed (.task .code .message)
├── WaitTimeoutError            wait(), events(): not final at the deadline (.task_id .task)
└── WebhookVerificationError    verify_callback(): not a genuine, fresh callback

ImagegateError itself is raised for a client without an API key, and for a response body the SDK
cannot read. An error response with a code the SDK does not know becomes the class of its status
(a 404 with an unknown code is a NotFoundError, any 5xx an InternalServerError), else APIError.
"""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING, ClassVar

import httpx

if TYPE_CHECKING:
    from imagegate_client._models import Task


class ImagegateError(Exception):
    """The base of every exception this package raises."""

    #: Whether a retry of the same call may succeed (rate limits, 5xx, network trouble).
    retryable: ClassVar[bool] = False


class APIConnectionError(ImagegateError):
    """The request got no HTTP response."""

    retryable = True


class APITimeoutError(APIConnectionError):
    """The request got no response within its timeout."""


class APIError(ImagegateError):
    """The server answered with an error response (the reference's error envelope)."""

    status: ClassVar[int | None] = None  # the status this class stands for in the error table
    error_code: ClassVar[str | None] = None  # the code it stands for

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        self.status_code = response.status_code
        self.code = code
        self.type = type
        #: The server's Retry-After in seconds (None when absent), honoured by retries.
        self.retry_after = retry_after_seconds(response.headers.get("retry-after"))

    def __str__(self) -> str:
        return f"{self.code or f'HTTP {self.status_code}'}: {self.message}"


class InvalidRequestError(APIError):
    """400 invalid_request: missing or invalid parameters (the message names the field)."""

    status, error_code = 400, "invalid_request"


class AuthenticationError(APIError):
    """401 invalid_api_key: the key is missing, malformed, disabled or deleted."""

    status, error_code = 401, "invalid_api_key"


class InsufficientCreditsError(APIError):
    """402 insufficient_credits: top up the account."""

    status, error_code = 402, "insufficient_credits"


class IpNotAllowedError(APIError):
    """403 ip_not_allowed: this address is not in the key's allowlist."""

    status, error_code = 403, "ip_not_allowed"


class NotFoundError(APIError):
    """404: something named in the request does not exist."""

    status = 404


class ModelNotFoundError(NotFoundError):
    """404 model_not_found: the model does not exist or is inactive."""

    error_code = "model_not_found"


class TaskNotFoundError(NotFoundError):
    """404 task_not_found: no such task for this account."""

    error_code = "task_not_found"


class RateLimitError(APIError):
    """429 rate_limit_exceeded: too many requests; retry after ``retry_after`` seconds."""

    status, error_code = 429, "rate_limit_exceeded"
    retryable = True


class SpendLimitError(APIError):
    """429 spend_limit_exceeded: the key's hourly, daily or total spend limit is reached.
    Not retried: such a window does not reopen within seconds."""

    status, error_code = 429, "spend_limit_exceeded"


class InternalServerError(APIError):
    """500 internal_error (or any 5xx without a known code): the server failed."""

    status, error_code = 500, "internal_error"
    retryable = True


class NotReadyError(InternalServerError):
    """503 not_ready: GET /readyz found the server unable to serve (its database unreachable or
    its schema not this release's, Redis unreachable). Not in the reference's table."""

    status, error_code = 503, "not_ready"


class UpstreamError(APIError):
    """503 upstream_error: the upstream AI provider failed or is unavailable."""

    status, error_code = 503, "upstream_error"
    retryable = True


class TaskFailedError(ImagegateError):
    """The task ended ``failed`` (its credits are refunded). ``code`` and ``message`` are the
    task's error, e.g. ``upstream_error``."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.code = task.error.code if task.error else "unknown"
        self.message = task.error.message if task.error else "the task failed"
        super().__init__(f"task {task.id} failed: {self.code}: {self.message}")


class WaitTimeoutError(ImagegateError):
    """The task was not finished by the deadline. Nothing is lost: it keeps running on the
    server; resume with ``client.wait(error.task_id)``. ``task`` is the last state seen (None
    when no poll succeeded)."""

    def __init__(self, task_id: str, task: Task | None, timeout: float) -> None:
        self.task_id = task_id
        self.task = task
        self.timeout = timeout
        status = task.status if task else "unknown"
        super().__init__(
            f"task {task_id} is still {status} after {timeout:g}s; resume with wait({task_id!r})"
        )


class WebhookVerificationError(ImagegateError):
    """A callback whose signature, headers or timestamp do not check out."""


_BY_CODE: dict[str, type[APIError]] = {
    cls.error_code: cls
    for cls in (
        InvalidRequestError,
        AuthenticationError,
        InsufficientCreditsError,
        IpNotAllowedError,
        ModelNotFoundError,
        TaskNotFoundError,
        RateLimitError,
        SpendLimitError,
        InternalServerError,
        NotReadyError,
        UpstreamError,
    )  # fmt: skip
    if cls.error_code
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: IpNotAllowedError,
    404: NotFoundError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for an error response: by its code, else by its status."""
    code, message, kind = _read_envelope(response)
    cls = _BY_CODE.get(code or "")
    if cls is None or cls.status != response.status_code:
        cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIError
    return cls(message, response=response, code=code, type=kind)


def _read_envelope(response: httpx.Response) -> tuple[str | None, str, str | None]:
    """(code, message, type) of ``{"error": {...}}``; a body in another shape (a proxy's HTML
    page, plain text) gives no code and its first line as the message."""
    try:
        error = response.json()["error"]
        code, message, kind = (error.get(name) for name in ("code", "message", "type"))
    except (ValueError, KeyError, TypeError, AttributeError):
        lines = response.text.strip().splitlines()
        return None, (lines[0][:200] if lines else response.reason_phrase or "error"), None
    return _text(code), _text(message) or "", _text(kind)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
