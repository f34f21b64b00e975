"""Buying credits with Stripe Checkout: packs, Checkout Sessions, and the signed webhook events
that credit them exactly once.

1. ``stripe_api.create_checkout`` asks Stripe (the official SDK) for a Checkout Session
   selling one pack;
   ``record_checkout`` keeps it as a CheckoutSession row (open) with the pack's credits and
   amount. No transaction is open while Stripe is called.
2. Stripe posts events to ``/webhooks/stripe``; ``verify_event`` checks their signature (tolerance
   five minutes) and ``apply_event`` credits a paid session: a compare-and-set of the row from
   open to paid and a ledger entry unique on (stripe, session id), in the caller's transaction,
   so concurrent, repeated or out-of-order deliveries credit once. What is credited is the row's
   pack, never the event's metadata; a session this server did not create credits nothing.
3. ``charge.refunded`` and ``charge.dispute.created`` are recorded as PaymentEvents for people to
   see. Nothing is debited: taking credits back is the operator's decision.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import stripe
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.db.models import Account, CheckoutSession, PaymentEvent

log = logging.getLogger(__name__)

TOLERANCE = 300  # seconds a signed event stays valid (Stripe's default)
# Stripe's currencies without cents, and with thousandths: their amounts are not price * 100.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}
CENT = Decimal("0.01")

CREDITING = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
RECORDED = frozenset({"charge.refunded", "charge.dispute.created"})
Outcome = Literal["credited", "duplicate", "pending", "not_ours", "recorded", "ignored"]


def format_money(amount: int, currency: str) -> str:
    """An amount in the currency's minor unit (cents) for people: "$2.50", "12.00 CHF"."""
    value = (Decimal(amount) / 100).quantize(CENT)
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{value:,}" if symbol else f"{value:,} {currency.upper()}"


@dataclass(frozen=True)
class Pack:
    """Credits sold together for one price, as the operator configured them."""

    credits: int
    amount: int  # the price in the currency's minor unit (cents)
    currency: str

    @property
    def key(self) -> str:
        """What a Top up form posts: the pack's credits and amount, so a pack that changed
        between showing the page and posting it is not sold by mistake."""
        return f"{self.credits}:{self.amount}"

    @property
    def price(self) -> str:
        return format_money(self.amount, self.currency)

    @property
    def name(self) -> str:
        return f"{self.credits:,} imagegate credits"


def packs(settings: Settings) -> list[Pack]:
    """The packs on sale (IMAGEGATE_TOPUP_PACKS), priced in whole cents."""
    return [
        Pack(credits, int((price * 100).to_integral_value(ROUND_HALF_UP)), settings.currency)
        for credits, price in settings.topup_packs
    ]


def find_pack(settings: Settings, key: str) -> Pack | None:
    return next((pack for pack in packs(settings) if pack.key == key), None)


def checkout_problem(settings: Settings) -> str | None:
    """Why Stripe Checkout is off, in words for the operator; None when it is on."""
    missing = [
        name
        for name, value in (
            ("IMAGEGATE_STRIPE_API_KEY", settings.stripe_api_key),
            ("IMAGEGATE_STRIPE_WEBHOOK_SECRET", settings.stripe_webhook_secret),
        )
        if not value.get_secret_value()
    ]
    if missing:
        return f"set {' and '.join(missing)} to sell credits through Stripe Checkout."
    if not settings.topup_packs:
        return "set IMAGEGATE_TOPUP_PACKS (e.g. 500:2.50,2000:10) to offer packs."
    if settings.currency in ZERO_DECIMAL | THREE_DECIMAL:
        return (
            f"{settings.currency.upper()} has no two-decimal minor unit; packs support "
            "currencies with cents only (e.g. usd, eur, gbp)."
        )
    return None


@dataclass(frozen=True)
class Checkout:
    """A Checkout Session Stripe created: where to send the buyer."""

    id: str
    url: str


async def record_checkout(
    session: AsyncSession,
    checkout: Checkout,
    account_id: str,
    user_id: str | None,
    pack: Pack,
    now: float,
) -> None:
    """Keep the session Stripe created, open, with what it sells: the webhook credits this."""
    session.add(
        CheckoutSession(
            id=checkout.id,
            account_id=account_id,
            user_id=user_id,
            credits=pack.credits,
            amount=pack.amount,
            currency=pack.currency,
            status="open",
            created_at=now,
        )
    )
    await session.flush()


@dataclass(frozen=True)
class StripeEvent:
    """A verified event: its id, type and ``data.object``."""

    id: str
    type: str
    object: dict[str, Any]


class BadEvent(ValueError):
    """A delivery without a valid, recent Stripe signature, or not an event."""


def verify_event(payload: bytes, signature: str | None, secret: str) -> StripeEvent:
    """The event in ``payload`` once its Stripe-Signature checks out against ``secret``
    (HMAC-SHA256 of "t.payload", t at most TOLERANCE seconds old); else BadEvent."""
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, TOLERANCE)
        data = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise BadEvent(f"Stripe-Signature refused: {exc.user_message}") from None
    except ValueError:  # not UTF-8, not JSON
        raise BadEvent("the body is not a JSON event") from None
    body = data.get("data") if isinstance(data, dict) else None
    found = body.get("object") if isinstance(body, dict) else None
    if not (isinstance(found, dict) and _ids(data.get("id"), data.get("type"))):
        raise BadEvent("the body is not a Stripe event")
    return StripeEvent(data["id"], data["type"], found)


def _ids(*values: object) -> bool:
    return all(isinstance(value, str) and 0 < len(value) <= 255 for value in values)


async def apply_event(session: AsyncSession, event: StripeEvent, now: float) -> Outcome:
    """Act on a verified event in the caller's transaction: credit a paid Checkout Session
    once, record a refund or dispute once, ignore the rest."""
    if event.type in CREDITING:
        return await _checkout_paid(session, event.object, now)
    if event.type in RECORDED:
        return await _payment_event(session, event, now)
    return "ignored"


async def _checkout_paid(session: AsyncSession, found: dict[str, Any], now: float) -> Outcome:
    session_id, intent = _text(found, "id"), _text(found, "payment_intent")
    if session_id is None:
        return "ignored"
    if intent is not None:  # kept to find the account of a later refund or dispute
        await session.execute(
            update(CheckoutSession)
            .where(CheckoutSession.id == session_id, CheckoutSession.payment_intent.is_(None))
            .values(payment_intent=intent)
        )
    if found.get("payment_status") != "paid":
        return "pending"  # a delayed method: async_payment_succeeded follows
    # The compare-and-set: of concurrent deliveries, one moves the row from open to paid.
    paid = (
        await session.execute(
            update(CheckoutSession)
            .where(CheckoutSession.id == session_id, CheckoutSession.status == "open")
            .values(status="paid", paid_at=now)
            .returning(
                CheckoutSession.account_id,
                CheckoutSession.credits,
                CheckoutSession.amount,
                CheckoutSession.currency,
            )
        )
    ).one_or_none()
    if paid is None:
        known = await session.scalar(
            select(CheckoutSession.id).where(CheckoutSession.id == session_id)
        )
        return "duplicate" if known else "not_ours"
    account_id, credits, amount, currency = paid
    note = f"Stripe Checkout: {credits:,} credits ({format_money(amount, currency)})"
    return await _credit(session, account_id, credits, note, session_id, now)


async def _credit(
    session: AsyncSession, account_id: str, credits: int, note: str, session_id: str, now: float
) -> Outcome:
    try:
        async with session.begin_nested():
            await billing.top_up(
                session, account_id, credits, now, note, source="stripe", reference=session_id
            )
    except IntegrityError:  # credited already: the ledger's unique (source, reference)
        return "duplicate"
    return "credited"


async def _payment_event(session: AsyncSession, event: StripeEvent, now: float) -> Outcome:
    found = event.object
    object_id = _text(found, "id")
    account_id = await _account_of_payment(session, found)
    if object_id is None or account_id is None:
        return "not_ours"
    if await session.get(PaymentEvent, event.id) is not None:
        return "duplicate"
    amount = found.get("amount_refunded" if event.type == "charge.refunded" else "amount")
    currency = _text(found, "currency")
    try:
        async with session.begin_nested():
            session.add(
                PaymentEvent(
                    id=event.id,
                    account_id=account_id,
                    type=event.type,
                    object_id=object_id,
                    amount=amount if isinstance(amount, int) else None,
                    currency=currency.lower()[:3] if currency else None,
                    created_at=now,
                )
            )
            await session.flush()
    except IntegrityError:  # a concurrent delivery of the same event
        return "duplicate"
    return "recorded"


async def _account_of_payment(session: AsyncSession, found: dict[str, Any]) -> str | None:
    """The account that paid: through the payment intent of a session of ours, else the
    metadata we gave the payment intent, when it names an account of ours."""
    intent = _text(found, "payment_intent")
    if intent is not None:
        account_id = await session.scalar(
            select(CheckoutSession.account_id).where(CheckoutSession.payment_intent == intent)
        )
        if account_id is not None:
            return account_id
    metadata = found.get("metadata")
    claimed = _text(metadata, "account_id") if isinstance(metadata, dict) else None
    if claimed is None:
        return None
    return await session.scalar(select(Account.id).where(Account.id == claimed))


def _text(found: dict[str, Any], name: str) -> str | None:
    value = found.get(name)
    if isinstance(value, dict):  # an expanded object: its id
        value = value.get("id")
    return value if isinstance(value, str) and _ids(value) else None


async def checkout_of(
    session: AsyncSession, account_id: str, session_id: str
) -> CheckoutSession | None:
    """The account's Checkout Session ``session_id``; None when it is not the account's."""
    found: CheckoutSession | None = await session.scalar(
        select(CheckoutSession).where(
            CheckoutSession.id == session_id, CheckoutSession.account_id == account_id
        )
    )
    return found


async def payment_events(
    session: AsyncSession, account_id: str, limit: int = 20
) -> list[PaymentEvent]:
    """The account's recorded refunds and disputes, newest first."""
    rows = await session.scalars(
        select(PaymentEvent)
        .where(PaymentEvent.account_id == account_id)
        .order_by(PaymentEvent.created_at.desc(), PaymentEvent.id)
        .limit(limit)
    )
    return list(rows)
