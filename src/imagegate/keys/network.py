"""Client addresses and IP allowlists."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> list[Network]:
    """IPs and CIDRs (``10.0.0.0/8``, ``2001:db8::1``); ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {value!r}") from None
    return networks


UNKNOWN = "unknown"  # a client address that matches no allowlist


def _hop_address(hop: str) -> str:
    """The address in an X-Forwarded-For hop, without a port or IPv6 brackets."""
    hop = hop.strip()
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:  # IPv4 with a port; bare IPv6 has several colons
        return hop.split(":", 1)[0]
    return hop


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The caller's address: the socket peer, unless the peer is a trusted proxy; then the
    X-Forwarded-For hops are read right to left past trusted ones. A header sent by an untrusted
    peer is ignored, so it cannot be spoofed."""
    client = peer or ""
    if not forwarded_for or not _within(_address(client), trusted):
        return client
    for hop in reversed([_hop_address(h) for h in forwarded_for.split(",") if h.strip()]):
        if _address(hop) is None:
            return UNKNOWN  # garbage where a trusted proxy wrote the client: fail closed
        client = hop
        if not _within(_address(hop), trusted):
            return hop
    return client


def within(address: str, networks: Sequence[Network]) -> bool:
    """Whether ``address`` is in one of ``networks`` (none: never)."""
    return _within(_address(address), networks)


def allowed(address: str, allowlist: Sequence[Network]) -> bool:
    """Whether ``address`` may use a key with ``allowlist`` (empty: any address)."""
    return not allowlist or _within(_address(address), allowlist)
