"""URLs that clients and upstreams give us may only reach the public internet: no loopback,
private, link-local (cloud metadata), multicast, reserved or otherwise not globally reachable
addresses (IANA's special-purpose registries), in IPv4 or IPv6, unless the operator allows it.

Checked when a task is created and again by outbound.GuardedTransport at each request against
the address actually connected to, so a DNS answer that changes in between (rebinding) cannot
redirect a callback or an image download.
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


# Ranges IANA's IPv4 and IPv6 special-purpose address registries mark not globally reachable
# (or deprecated), beyond what this Python's ipaddress knows: its is_global has changed between
# releases and misses some (fec0::/10, the deprecated site-local range, passes it).
NOT_GLOBAL = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
        "::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64", "2001::/23",
        "2001:db8::/32", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10",
    )
)  # fmt: skip
# NAT64's well-known prefix: the last 32 bits are the IPv4 address actually reached.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is globally reachable: the one address rule for every URL that
    clients and upstreams give us (callbacks, webhooks, image URLs and their redirects)."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo, NAT64) must pass the IPv4 rules too.
        embedded = [address.ipv4_mapped, address.sixtofour]
        embedded += [address.teredo[1]] if address.teredo else []
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(inner is not None and not is_public(inner) for inner in embedded):
            return False
        if address.ipv4_mapped is not None or address in NAT64:
            return True  # the IPv4 address it stands for is public
    if any(address in network for network in NOT_GLOBAL):
        return False
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
