"""Buying credits on the Billing page: the packs with their Top up buttons, the way to Stripe
Checkout, the page Stripe sends the buyer back to, and the refunds and disputes Stripe reported.

HTTP only: the rules (which packs, what a session sells, when it is credited) are
billing.payments'; crediting happens in the webhook, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import payments, stripe_api
from imagegate.billing import service as billing
from imagegate.console import billing as billing_page
from imagegate.console.auth import PageNotFound, Who, checked_form, text
from imagegate.console.web import render, services_of
from imagegate.db.models import PaymentEvent
from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console")

EVENT_WORDS = {"charge.refunded": "Refund", "charge.dispute.created": "Dispute"}
NOT_ENABLED = "Buying credits is not enabled on this server."


@dataclass(frozen=True)
class TopUp:
    """The Top up part of the Billing page."""

    packs: list[payments.Pack]  # empty when buying is off
    problem: str | None  # why buying is off, for operators
    cancelled: bool  # back from Stripe Checkout without paying


@dataclass(frozen=True)
class PaymentEventLine:
    """A refund or dispute, as the Billing page shows it."""

    time: str
    kind: str
    amount: str
    object_id: str

    @classmethod
    def of(cls, event: PaymentEvent) -> PaymentEventLine:
        amount = "—"
        if event.amount is not None and event.currency:
            amount = payments.format_money(event.amount, event.currency)
        return cls(
            time=billing_page.utc_time(event.created_at),
            kind=EVENT_WORDS.get(event.type, event.type),
            amount=amount,
            object_id=event.object_id,
        )


async def section(request: Request, who: SignedIn, session: AsyncSession) -> dict[str, Any]:
    """This section's values for billing.html and its include, read in the page's session."""
    settings = services_of(request).settings
    problem = payments.checkout_problem(settings)
    events = await payments.payment_events(session, who.account_id)
    return {
        "topup": TopUp(
            packs=[] if problem else payments.packs(settings),
            problem=problem,
            cancelled=request.query_params.get("topup") == "cancelled",
        ),
        "payment_events": [PaymentEventLine.of(event) for event in events],
    }


@router.post("/billing/topup")
async def start_top_up(request: Request, who: Who) -> Response:
    """Create a Checkout Session for the chosen pack and send the browser to Stripe."""
    form = await checked_form(request, who)
    services = services_of(request)
    settings = services.settings
    if payments.checkout_problem(settings) is not None:
        return await billing_page.billing_view(request, who, status_code=409, error=NOT_ENABLED)
    pack = payments.find_pack(settings, text(form, "pack"))
    if pack is None:
        message = "That pack is not on sale (any more). Choose one of the packs below."
        return await billing_page.billing_view(request, who, status_code=400, error=message)
    try:
        checkout = await stripe_api.create_checkout(settings, who.account_id, pack)
    except stripe_api.CheckoutFailed as exc:
        return await billing_page.billing_view(request, who, status_code=502, error=str(exc))
    async with services.db.transaction() as session:
        await payments.record_checkout(
            session, checkout, who.account_id, who.user_id, pack, services.clock.now()
        )
    return render(request, "topup_redirect.html", who, title="Top up", checkout=checkout, pack=pack)


SessionId = Annotated[str, Query(min_length=1, max_length=255)]


@router.get("/billing/topup/success", response_class=HTMLResponse)
async def success_page(request: Request, who: Who, session_id: SessionId) -> Response:
    """Where Stripe sends the buyer back: processing until the webhook credited the session."""
    services = services_of(request)
    async with services.db.sessions() as session:
        checkout = await payments.checkout_of(session, who.account_id, session_id)
        if checkout is None:
            raise PageNotFound()
        balance = await billing.balance(session, who.account_id)
    paid = checkout.status == "paid"
    return render(
        request,
        "topup_success.html",
        who,
        title=f"{checkout.credits:,} credits added" if paid else "Payment processing",
        paid=paid,
        credits=f"{checkout.credits:,}",
        price=payments.format_money(checkout.amount, checkout.currency),
        balance=balance,
    )
