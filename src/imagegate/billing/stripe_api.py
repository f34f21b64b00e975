"""Stripe's API, called through the official SDK on an httpx transport of our own: the Checkout
Session that sells one pack (see payments.py for what is recorded and credited)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import stripe

from imagegate.billing.payments import Checkout, Pack
from imagegate.config import Settings

log = logging.getLogger(__name__)

STRIPE_TIMEOUT = 30.0  # seconds per call to Stripe's API
STRIPE_RETRIES = 2  # network retries of one call (the SDK sends an Idempotency-Key)


class CheckoutFailed(Exception):
    """Stripe did not create a Checkout Session; the message is for the buyer."""


class HttpxTransport(stripe.HTTPClient):
    """The SDK's transport on an httpx.AsyncClient of ours, async only: explicit timeouts, and
    the form body sent as content (the SDK's own httpx client passes it in a deprecated way)."""

    name = "httpx"

    def __init__(self, timeout: float = STRIPE_TIMEOUT) -> None:
        super().__init__()
        self.http = httpx.AsyncClient(timeout=timeout)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = await self.http.request(method, url, headers=headers, content=post_data)
        except httpx.HTTPError as exc:
            message = f"Could not reach Stripe ({type(exc).__name__})."
            error = stripe.APIConnectionError(message, should_retry=True)  # type: ignore[no-untyped-call]
            raise error from exc
        return response.content, response.status_code, response.headers

    async def close_async(self) -> None:
        await self.http.aclose()

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)


@asynccontextmanager
async def stripe_client(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    """The SDK's client (async calls only), at IMAGEGATE_STRIPE_API_BASE when that is set."""
    transport = HttpxTransport()
    api_base = settings.stripe_api_base.rstrip("/")
    try:
        yield stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(),
            base_addresses={"api": api_base} if api_base else None,
            http_client=transport,
            max_network_retries=STRIPE_RETRIES,
        )
    finally:
        await transport.close_async()


async def create_checkout(settings: Settings, account_id: str, pack: Pack) -> Checkout:
    """Ask Stripe for a Checkout Session selling ``pack`` to the account; raises CheckoutFailed
    (logged without secrets) when Stripe cannot be reached or refuses."""
    console = f"{settings.resolved_public_url}/console/billing"
    metadata = {"account_id": account_id, "credits": str(pack.credits)}
    try:
        async with stripe_client(settings) as client:
            created = await client.v1.checkout.sessions.create_async(
                {
                    "mode": "payment",
                    "line_items": [
                        {
                            "price_data": {
                                "currency": pack.currency,
                                "unit_amount": pack.amount,
                                "product_data": {"name": pack.name},
                            },
                            "quantity": 1,
                        }
                    ],
                    "client_reference_id": account_id,
                    "metadata": metadata,
                    "payment_intent_data": {"metadata": metadata},
                    "success_url": f"{console}/topup/success?session_id={{CHECKOUT_SESSION_ID}}",
                    "cancel_url": f"{console}?topup=cancelled",
                }
            )
    except stripe.StripeError as exc:
        _log_stripe_error(exc)
        raise CheckoutFailed(
            "The payment could not be started: Stripe did not answer as expected. Nothing was "
            "charged. Try again in a minute; if it keeps failing, tell the operator."
        ) from None
    if not created.url:
        raise CheckoutFailed("Stripe created no payment page. Nothing was charged.")
    return Checkout(created.id, created.url)


def _log_stripe_error(exc: stripe.StripeError) -> None:
    # Stripe's messages name parameters, never the key in full; request ids help its support.
    log.warning(
        "Stripe Checkout Session not created: %s (HTTP %s, code %s, request %s): %s",
        type(exc).__name__,
        exc.http_status,
        exc.code,
        exc.request_id,
        exc.user_message if isinstance(exc, stripe.InvalidRequestError) else "-",
    )
