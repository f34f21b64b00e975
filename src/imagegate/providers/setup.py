"""Building the providers and model routes a process uses, from Settings."""

from __future__ import annotations

import logging

import httpx

from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.providers.base import PROVIDER_NAMES, Provider
from imagegate.providers.circuit import CircuitBreakers
from imagegate.providers.ideogram import IdeogramProvider
from imagegate.providers.rehost import Rehoster
from imagegate.providers.replicate import ReplicateProvider
from imagegate.providers.routing import ProviderRouter, RetryPolicy, Route
from imagegate.providers.simulator import SimulatorProvider

log = logging.getLogger(__name__)


def upstream_client(settings: Settings) -> httpx.AsyncClient:
    """The process's client for the upstream APIs (keep-alive pooled); their image URLs are
    fetched through outbound.image_client instead (checked addresses, no proxy).

    The APIs' base URLs are the operator's settings, never a client's or a model's, so they are
    not held to the SSRF guard (an operator may run a model server on their own network) and an
    operator's egress proxy (HTTPS_PROXY) applies to them: often the only way out."""
    return httpx.AsyncClient(
        # Not followed: httpx drops Authorization on a redirect to another host, but not
        # Ideogram's Api-Key header; a redirecting API is misconfigured anyway.
        follow_redirects=False,
        trust_env=True,
        timeout=settings.upstream_timeout,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
    )


def build_router(
    settings: Settings,
    db: Database,
    clock: Clock,
    http: httpx.AsyncClient,
    images: httpx.AsyncClient,
    overrides: dict[str, Provider] | None = None,
) -> ProviderRouter:
    """The providers and routes; ``overrides`` (tests) maps a model to one provider."""
    fixed = {model: [Route(p.name, p)] for model, p in (overrides or {}).items()}
    built = {} if overrides is not None else _built(settings, clock, http, images)
    breakers = CircuitBreakers(
        db, clock, settings.circuit_failure_threshold, settings.circuit_cooldown
    )
    policy = RetryPolicy(
        retries=settings.upstream_retries,
        backoff=settings.upstream_backoff,
        max_retry_after=settings.upstream_max_retry_after,
    )
    return ProviderRouter(
        built, breakers, clock, policy, tuple(default_route(settings)), settings.routes, fixed
    )


def default_route(settings: Settings) -> list[str]:
    """Providers with credentials, Ideogram first; the simulator when there are none."""
    configured = [
        name
        for name, secret in (
            ("ideogram", settings.ideogram_api_key),
            ("replicate", settings.replicate_api_token),
        )
        if secret.get_secret_value()
    ]
    return configured or ["simulator"]


def build_rehoster(settings: Settings, images: httpx.AsyncClient) -> Rehoster:
    """The providers' image downloader; ``images`` is outbound.image_client (guarded)."""
    return Rehoster(
        images,
        settings.upstream_image_max_bytes,
        settings.upstream_image_max_pixels,
        settings.upstream_timeout,
    )


def _built(
    settings: Settings, clock: Clock, http: httpx.AsyncClient, images: httpx.AsyncClient
) -> dict[str, Route]:
    rehoster = build_rehoster(settings, images)
    built = {name: _route(name, settings, clock, http, rehoster) for name in PROVIDER_NAMES}
    for name in default_route(settings):
        if built[name].problem:
            log.warning("provider %s is unusable: %s", name, built[name].problem)
    return built


def _route(
    name: str, settings: Settings, clock: Clock, http: httpx.AsyncClient, rehoster: Rehoster
) -> Route:
    s = settings
    if name == "simulator":
        return Route(name, SimulatorProvider(s.simulator_delay_for))
    if name == "ideogram":
        key = s.ideogram_api_key.get_secret_value()
        if not key:
            return Route(name, None, "IMAGEGATE_IDEOGRAM_API_KEY is not set")
        provider = IdeogramProvider(http, rehoster, key, s.ideogram_base_url, clock=clock)
        return Route(name, provider, cap=s.ideogram_max_in_flight)
    token = s.replicate_api_token.get_secret_value()
    if not token:
        return Route(name, None, "IMAGEGATE_REPLICATE_API_TOKEN is not set")
    replicate = ReplicateProvider(
        http, rehoster, clock,
        api_token=token, base_url=s.replicate_base_url, model=s.replicate_model,
        poll_interval=s.replicate_poll_interval, deadline=s.upstream_deadline,
        wait=int(s.upstream_timeout / 2),
    )  # fmt: skip
    return Route(name, replicate, cap=s.replicate_max_in_flight)
