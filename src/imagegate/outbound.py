"""The process's outbound HTTP, and the one guarded path for every URL that others give us.

A client's ``callback_url`` and an upstream's image URL (and each redirect it takes) may only
reach addresses callbacks/ssrf.py allows. ``GuardedTransport`` resolves the host itself, checks
every address, and connects to the checked one: the URL is rewritten to the address, with the
Host header and the TLS server name kept, so a DNS answer that changes between the check and the
connection (rebinding) cannot slip through. Each redirect hop is a request of its own, checked
again. These clients keep no connection alive (one made for one host name must never carry a
request for another that shares its address) and never use an environment proxy (the proxy, not
we, would connect, wherever the URL points).

The upstream APIs themselves (``IMAGEGATE_IDEOGRAM_BASE_URL``, ``IMAGEGATE_REPLICATE_BASE_URL``:
the operator's choice, not a client's) are called with providers/setup.py's pooled client, which
follows ``HTTPS_PROXY`` so an operator's egress proxy applies to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from imagegate.callbacks.ssrf import Unresolvable, UnsafeDestination, ascii_host, resolve
from imagegate.config import Settings

MAX_REDIRECTS = 5  # image hosts redirect to a CDN once or twice
Resolver = Callable[[str, bool], Awaitable[list[str]]]
_NO_KEEP_ALIVE = httpx.Limits(max_connections=None, max_keepalive_connections=0)


class RefusedDestination(httpx.TransportError):
    """No connection was made: the host resolves to an address this client must not reach
    (``unresolvable`` False) or to none at all (True)."""

    def __init__(self, reason: str, *, unresolvable: bool, request: httpx.Request) -> None:
        super().__init__(reason, request=request)
        self.reason, self.unresolvable = reason, unresolvable


class GuardedTransport(httpx.AsyncBaseTransport):
    """Connects only to allowed addresses (all of them, unless ``allow_private``), checked at
    each request against the address actually connected to. ``resolver`` is for tests."""

    def __init__(
        self,
        allow_private: bool,
        inner: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.allow_private, self.resolver = allow_private, resolver
        self.inner = inner or httpx.AsyncHTTPTransport(limits=_NO_KEEP_ALIVE, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        try:
            address = (await self.resolver(url, self.allow_private))[0]
        except Unresolvable as exc:
            raise RefusedDestination(str(exc), unresolvable=True, request=request) from None
        except UnsafeDestination as exc:
            raise RefusedDestination(str(exc), unresolvable=False, request=request) from None
        target, host, extensions = pinned(url, address)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
        to_address = httpx.Request(
            request.method, target, headers=[(b"Host", host.encode()), *headers],
            stream=request.stream, extensions={**request.extensions, **extensions},
        )  # fmt: skip
        return await self.inner.handle_async_request(to_address)

    async def aclose(self) -> None:
        await self.inner.aclose()


def pinned(url: str, address: str) -> tuple[str, str, dict[str, Any]]:
    """``url`` rewritten to connect to ``address``; the Host header and TLS name it keeps."""
    parts = urlsplit(url)
    host = ascii_host(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = f"[{address}]" if ":" in address else address
    target = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    name = f"[{host}]" if ":" in host else host
    return target, name if parts.port is None else f"{name}:{parts.port}", extensions


def callback_client(settings: Settings) -> httpx.AsyncClient:
    """Callbacks and account events: never redirected (a receiver's 3xx is its answer)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(settings.callback_allow_private),
        follow_redirects=False,
        trust_env=False,
        timeout=settings.callback_timeout,
    )


def image_client(settings: Settings, resolver: Resolver = resolve) -> httpx.AsyncClient:
    """Upstream image URLs: redirects followed, each hop checked."""
    return httpx.AsyncClient(
        transport=GuardedTransport(settings.upstream_allow_private, resolver=resolver),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        timeout=settings.upstream_timeout,
    )
