"""FastAPI dependencies: the services of this process and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from imagegate.db.sql import Row
from imagegate.errors import IpNotAllowed
from imagegate.keys import store
from imagegate.keys.network import allowed, client_address, parse_networks, within
from imagegate.keys.service import Principal, check_caller, key_hash
from imagegate.services import Services


async def get_services(request: Request) -> Services:
    # async, though it awaits nothing: FastAPI runs a plain def dependency in a worker thread,
    # and that hand-off cost more than the rest of a GET /v1/tasks/{id} together.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The caller, admitted (see admit)."""
    hashed = key_hash(services.hasher, authorization)
    row = await services.db.read(lambda tx: store.find_caller(tx, hashed))
    return await admit(request, services, row)


async def admit(request: Request, services: Services, row: Row | None) -> Principal:
    """The first checks of every API request, in this order: the key (401: unknown, disabled,
    expired, banned; ``row`` is keys/store.py's caller row), its IP allowlist (403), its rate
    limit (429). tasks/admission.py goes on from here for a create."""
    now = services.clock.now()
    principal = check_caller(row, now)
    services.key_usage.seen(principal.key_id, now)
    if principal.allowed_ips:  # (most keys have none: no address to work out)
        address = caller_address(request, services)
        if not allowed(address, parse_networks(principal.allowed_ips)):
            raise IpNotAllowed(f"Request IP {address} is not in this key's allowlist.")
    per_minute = principal.rate_limit or services.settings.rate_limit_per_minute
    state = await services.rate_limiter.hit(principal.key_id, per_minute, now)
    request.state.rate_limit_headers = state.raw_headers()
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


def caller_address(request: Request, services: Services) -> str:
    """The client's address, past the trusted proxies (see keys/network.py)."""
    peer = request.client.host if request.client else None
    # Proxies may add their hop as a header line of its own: read all lines, in order.
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return client_address(peer, forwarded, services.trusted_proxies)


def behind_https(request: Request, services: Services) -> bool:
    """Whether the browser reached us over https: directly, or through a trusted proxy that
    says so in X-Forwarded-Proto."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" and within(peer, services.trusted_proxies)
