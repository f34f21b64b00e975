"""One HTTP attempt: POST to a checked address, never follow redirects, read little, time out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from imagegate.callbacks.ssrf import Unresolvable, UnsafeDestination, ascii_host, resolve

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
    allow_private: bool,
    time_limit: float,
) -> DeliveryResult:
    """POST ``body`` to ``url``; any failure is described in the result, never raised."""
    try:
        async with asyncio.timeout(time_limit):  # the whole attempt, DNS and a slow drip included
            target, extra_headers, extensions = pinned(url, (await resolve(url, allow_private))[0])
            request = client.build_request(
                "POST", target, content=body, headers={**headers, **extra_headers},
                extensions=extensions,
            )  # fmt: skip
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                await _read_some(response)
            finally:
                await response.aclose()
    except Unresolvable as exc:
        return DeliveryResult(None, str(exc))
    except UnsafeDestination as exc:
        return DeliveryResult(None, f"refused: {exc}")
    except TimeoutError:
        return DeliveryResult(None, f"timed out after {time_limit:g}s")
    except Exception as exc:  # httpx errors and anything else: a failed attempt, never a lost one
        return DeliveryResult(None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    return DeliveryResult(response.status_code, _status_error(response))


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` rewritten to connect to ``address``, keeping the Host header and TLS name."""
    parts = urlsplit(url)
    host = ascii_host(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = f"[{address}]" if ":" in address else address
    target = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    name = f"[{host}]" if ":" in host else host
    host_header = name if parts.port is None else f"{name}:{parts.port}"
    return target, {"Host": host_header}, extensions


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
