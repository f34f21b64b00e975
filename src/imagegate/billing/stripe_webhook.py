"""POST /webhooks/stripe: Stripe's signed events about Checkout Sessions, refunds and disputes.

HTTP only: billing.payments verifies and applies them. The answers are Stripe's contract: 2xx
for an event handled or ignored (duplicates included), 400 for a bad signature (nothing
recorded), and 5xx only when the event could not be recorded (the database is down), so that
Stripe delivers it again. Neither the payload nor the signature is logged.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from imagegate.billing import payments
from imagegate.errors import InvalidRequest
from imagegate.keys.auth import ServicesDep
from imagegate.tasks.admission import read_body

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

MAX_EVENT_BYTES = 1024 * 1024  # Stripe's events are a few KiB


@router.post("/webhooks/stripe")
async def stripe_webhook(request: Request, services: ServicesDep) -> JSONResponse:
    payload = await read_body(request, MAX_EVENT_BYTES)
    secret = services.settings.stripe_webhook_secret.get_secret_value()
    try:
        event = payments.verify_event(payload, request.headers.get("stripe-signature"), secret)
    except payments.BadEvent as exc:
        log.warning("Stripe webhook refused: %s", exc)
        raise InvalidRequest(f"Not a valid Stripe event: {exc}") from None
    async with services.db.transaction() as session:
        outcome = await payments.apply_event(session, event, services.clock.now())
    log.info("Stripe event %s (%s): %s", event.id, event.type, outcome)
    return JSONResponse({"received": True, "outcome": outcome})
