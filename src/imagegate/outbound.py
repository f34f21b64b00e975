"""The process's outbound HTTP clients."""

from __future__ import annotations

import httpx

from imagegate.config import Settings


def callback_client(settings: Settings) -> httpx.AsyncClient:
    """Callbacks and account events: requests go to checked IPs."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,  # never route callbacks through an environment proxy
        timeout=settings.callback_timeout,
        # No keep-alive: requests go to checked IPs, and a TLS connection made for one host
        # name must never carry a callback for another that shares its address.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
    )
