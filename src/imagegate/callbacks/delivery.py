"""One HTTP attempt: POST to a checked address, never follow redirects, read little, time out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from imagegate.outbound import RefusedDestination

MAX_RESPONSE_BYTES = 4096


@dataclass(frozen=True)
class DeliveryResult:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post_callback(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    time_limit: float,
) -> DeliveryResult:
    """POST ``body`` to ``url`` through ``client`` (outbound.callback_client: the address it
    connects to is checked); any failure is described in the result, never raised."""
    try:
        async with asyncio.timeout(time_limit):  # the whole attempt, DNS and a slow drip included
            request = client.build_request("POST", url, content=body, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                await _read_some(response)
            finally:
                await response.aclose()
    except RefusedDestination as exc:
        return DeliveryResult(None, exc.reason if exc.unresolvable else f"refused: {exc.reason}")
    except TimeoutError:
        return DeliveryResult(None, f"timed out after {time_limit:g}s")
    except Exception as exc:  # httpx errors and anything else: a failed attempt, never a lost one
        return DeliveryResult(None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    return DeliveryResult(response.status_code, _status_error(response))


async def _read_some(response: httpx.Response) -> None:
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received >= MAX_RESPONSE_BYTES:
            break


def _status_error(response: httpx.Response) -> str | None:
    if 200 <= response.status_code < 300:
        return None
    if 300 <= response.status_code < 400:
        location = response.headers.get("location", "")
        return f"HTTP {response.status_code}: redirect to '{location[:200]}' not followed"
    return f"HTTP {response.status_code}"
