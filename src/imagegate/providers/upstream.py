"""HTTP plumbing the upstream adapters share: sending, and what an error status means."""

from __future__ import annotations

from typing import Any

import httpx

from imagegate.providers.backoff import retry_after
from imagegate.providers.base import (
    ProviderError,
    misconfigured,
    unavailable,
    unsupported,
)

_EXCERPT = 200


async def send(
    http: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """The upstream's response; timeouts and connection errors become retryable failures.
    Redirects are not followed: they would carry the credential headers to another host."""
    try:
        return await http.request(method, url, follow_redirects=False, **kwargs)
    except httpx.TimeoutException:
        raise unavailable(f"{provider}: {method} timed out") from None
    except httpx.HTTPError as exc:
        raise unavailable(f"{provider}: {method} failed: {type(exc).__name__}") from None


def status_error(provider: str, response: httpx.Response, now: float) -> ProviderError:
    """The failure an error status stands for (the cases every upstream shares); a retryable
    one carries the response's Retry-After, read against ``now`` (the caller's clock)."""
    status = response.status_code
    detail = f"{provider} answered {status}: {excerpt(response)}"
    if status in (401, 403):
        return misconfigured(f"{detail} (check the {provider} credentials)")
    if status == 402:
        return misconfigured(f"{detail} (the {provider} account needs credit)")
    if status == 429 or status >= 500 or status == 408:
        return unavailable(detail, retry_after=retry_after(response, now))
    return unsupported(detail)


def excerpt(response: httpx.Response) -> str:
    """The start of a response body, for the operator's log."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return "(unreadable body)"
    return " ".join(text.split())[:_EXCERPT]


def json_object(provider: str, response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object; a malformed body is a retryable failure."""
    try:
        body = response.json()
    except ValueError:
        raise unavailable(f"{provider}: malformed JSON: {excerpt(response)}") from None
    if not isinstance(body, dict):
        raise unavailable(f"{provider}: expected a JSON object, got {type(body).__name__}")
    return body
