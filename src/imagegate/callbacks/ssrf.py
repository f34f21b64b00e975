"""Callbacks may only reach the public internet: no loopback, private, link-local (cloud
metadata), multicast or reserved addresses, in IPv4 or IPv6, unless the operator allows it.

Checked when a task is created and again at each delivery against the address actually
connected to, so a DNS answer that changes in between (rebinding) cannot redirect a callback.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit


class UnsafeDestination(Exception):
    """The URL cannot be resolved, or resolves to an address callbacks must not reach."""


class Unresolvable(UnsafeDestination):
    """No address for the host right now: a failed delivery attempt, but no reason to refuse a
    task at creation (DNS may be down, or the receiver not set up yet)."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# DNS answers come from a pool of their own: a receiver's slow DNS must not take the threads
# that render and store images (asyncio's default pool).
_DNS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="imagegate-dns")
RESOLVE_SECONDS = 5.0


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo) must pass the IPv4 rules too.
        embedded = [address.ipv4_mapped, address.sixtofour]
        embedded += [address.teredo[1]] if address.teredo else []
        if any(inner is not None and not is_public(inner) for inner in embedded):
            return False
        if address.ipv4_mapped is not None:
            return True
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


async def resolve(url: str, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them allowed, in resolver order."""
    parts = urlsplit(url)
    host = ascii_host(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = host.rstrip(".").lower()
    if not allow_private and (name == "localhost" or name.endswith(".localhost")):
        raise UnsafeDestination(f"host '{host}' is loopback by definition (RFC 6761)")
    lookup = functools.partial(
        socket.getaddrinfo, host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await asyncio.get_running_loop().run_in_executor(_DNS, lookup)
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise Unresolvable(f"host '{host}' could not be resolved") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise Unresolvable(f"host '{host}' could not be resolved")
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeDestination(f"host '{host}' resolves to a non-public address")
    return addresses


def ascii_host(host: str) -> str:
    """An internationalised host name in its DNS (IDNA) form; others as they are."""
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host  # left for resolve() to report as unresolvable
