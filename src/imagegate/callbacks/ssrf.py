"""Callbacks may only reach the public internet: no loopback, private, link-local (cloud
metadata), multicast or reserved addresses, in IPv4 or IPv6, unless the operator allows it.

Checked when a task is created and again at each delivery against the address actually
connected to, so a DNS answer that changes in between (rebinding) cannot redirect a callback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeDestination(Exception):
    """The URL cannot be resolved, or resolves to an address callbacks must not reach."""


class Unresolvable(UnsafeDestination):
    """No address for the host right now: a failed delivery attempt, but no reason to refuse a
    task at creation (DNS may be down, or the receiver not set up yet)."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = host.rstrip(".").lower()
    if not allow_private and (name == "localhost" or name.endswith(".localhost")):
        raise UnsafeDestination(f"host '{host}' is loopback by definition (RFC 6761)")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"host '{host}' could not be resolved") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise Unresolvable(f"host '{host}' could not be resolved")
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeDestination(f"host '{host}' resolves to a non-public address")
    return addresses
