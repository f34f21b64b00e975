"""POST /webhooks/stripe: signed Stripe events credit a Checkout Session of ours exactly once,
however often, concurrently or out of order they arrive; bad signatures credit nothing; refunds
and disputes are recorded, never debited. Events are signed with Stripe's real scheme and the
sessions are made through the real SDK, against the loopback fake in fake_stripe.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from pydantic import SecretStr
from sqlalchemy import func, select, text

from fake_stripe import (
    API_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    event,
    ledgers_add_up,
    signature,
    signed,
    stripe_settings,
)
from harness import Server, running_server
from imagegate.billing import payments, stripe_api
from imagegate.config import Settings
from imagegate.db.models import CheckoutSession, LedgerEntry, PaymentEvent

WEBHOOK = "/webhooks/stripe"


@pytest.fixture
async def stripe_fake() -> AsyncIterator[FakeStripe]:
    async with FakeStripe().serving() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, stripe_fake: FakeStripe) -> Settings:
    return stripe_settings(settings, stripe_fake)


@pytest.fixture
async def server(server: Server) -> AsyncIterator[Server]:
    yield server
    await ledgers_add_up(server.services)


async def start_checkout(server: Server, account_id: str, pack: int = 0) -> str:
    """A Checkout Session made through the SDK and recorded, as the console's Top up does."""
    settings = server.services.settings
    chosen = payments.packs(settings)[pack]
    checkout = await stripe_api.create_checkout(settings, account_id, chosen)
    async with server.services.db.transaction() as session:
        await payments.record_checkout(
            session, checkout, account_id, None, chosen, server.clock.now()
        )
    return checkout.id


async def post(
    server: Server, body: dict[str, Any], secret: str = WEBHOOK_SECRET, at: int | None = None
) -> httpx.Response:
    payload, headers = signed(body, secret, at)
    return await server.http.post(WEBHOOK, content=payload, headers=headers)


async def stripe_credits(server: Server, session_id: str) -> list[LedgerEntry]:
    async with server.services.db.sessions() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.source == "stripe", LedgerEntry.reference == session_id
            )
        )
        return list(rows)


async def status_of(server: Server, session_id: str) -> str | None:
    async with server.services.db.sessions() as session:
        return await session.scalar(
            select(CheckoutSession.status).where(CheckoutSession.id == session_id)
        )


async def test_the_sdk_creates_the_session_we_record(server: Server, stripe_fake: FakeStripe):
    account = await server.account(credits=0)
    session_id = await start_checkout(server, account.id, pack=1)

    params = stripe_fake.params[session_id]
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": "1000",
                "product_data": {"name": "2,000 imagegate credits"},
            },
            "quantity": "1",
        }
    ]
    assert params["client_reference_id"] == account.id
    assert params["metadata"] == {"account_id": account.id, "credits": "2000"}
    base = server.services.settings.resolved_public_url
    assert params["success_url"] == (
        f"{base}/console/billing/topup/success?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert params["cancel_url"] == f"{base}/console/billing?topup=cancelled"
    sent = stripe_fake.headers[-1]
    assert sent["authorization"] == f"Bearer {API_KEY}"
    assert sent["idempotency-key"]
    assert sent["stripe-version"]
    async with server.services.db.sessions() as session:
        row = await session.get(CheckoutSession, session_id)
    assert row is not None
    assert (row.account_id, row.credits, row.amount, row.currency, row.status) == (
        account.id, 2000, 1000, "usd", "open",
    )  # fmt: skip

    # The fake answers retrieval as Stripe does, paid once the buyer paid.
    await stripe_fake.send(stripe_fake.complete(session_id))
    async with stripe_api.stripe_client(server.services.settings) as client:
        found = await client.v1.checkout.sessions.retrieve_async(session_id)
        assert (found.status, found.payment_status, found.amount_total) == (
            "complete", "paid", 1000,
        )  # fmt: skip
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.checkout.sessions.retrieve_async("cs_test_nope")
    assert (await status_of(server, session_id)) == "paid"


async def test_twenty_concurrent_deliveries_and_a_restart_credit_once(
    settings: Settings, stripe_fake: FakeStripe
) -> None:
    async with running_server(settings) as first:
        account = await first.account(credits=7)
        session_id = await start_checkout(first, account.id)
        completed = stripe_fake.complete(session_id)
        answers = await asyncio.gather(*(post(first, completed) for _ in range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        outcomes = sorted(a.json()["outcome"] for a in answers)
        assert outcomes == ["credited"] + ["duplicate"] * 19
        assert await first.ledger(account) == (507, 507)
        [entry] = await stripe_credits(first, session_id)
        assert (entry.kind, entry.amount) == ("top_up", 500)
        assert entry.note == "Stripe Checkout: 500 credits ($2.50)"
        await ledgers_add_up(first.services)

    async with running_server(settings) as second:  # the same database, a new process
        again = await post(second, completed)
        assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
        late = await post(second, stripe_fake.async_succeeded(session_id))
        assert (late.status_code, late.json()["outcome"]) == (200, "duplicate")
        assert await second.ledger(account) == (507, 507)
        assert len(await stripe_credits(second, session_id)) == 1
        await ledgers_add_up(second.services)


async def test_bad_signatures_get_400_and_credit_nothing(
    server: Server, stripe_fake: FakeStripe
) -> None:
    account = await server.account(credits=0)
    session_id = await start_checkout(server, account.id)
    completed = stripe_fake.complete(session_id)
    payload, headers = signed(completed)

    tampered = payload.replace(b'"amount_total": 250', b'"amount_total": 1')
    assert tampered != payload
    unsigned = {k: v for k, v in headers.items() if k != "Stripe-Signature"}
    stale = signature(payload, timestamp=int(time.time()) - 301)
    attempts = [
        (tampered, headers),
        (payload, unsigned),
        (payload, {**headers, "Stripe-Signature": signature(payload, "whsec_someone_else")}),
        (payload, {**headers, "Stripe-Signature": stale}),
        (payload, {**headers, "Stripe-Signature": "t=now,v1=abc"}),
        (payload, {**headers, "Stripe-Signature": stale.replace("v1=", "v0=")}),
        (b"\xff\xfe not utf-8", {**headers, "Stripe-Signature": signature(b"\xff\xfe")}),
    ]
    for body, sent in attempts:
        answer = await server.http.post(WEBHOOK, content=body, headers=sent)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
    assert await server.ledger(account) == (0, 0)
    assert await status_of(server, session_id) == "open"

    # A signed body that is not an event is refused too; the genuine delivery credits.
    assert (await post(server, {"id": "evt_1", "type": "x"})).status_code == 400
    recent = await post(server, completed, at=int(time.time()) - 240)  # within five minutes
    assert (recent.status_code, recent.json()["outcome"]) == (200, "credited")
    assert await server.ledger(account) == (500, 500)


async def test_delayed_payments_credit_once_in_any_order(
    server: Server, stripe_fake: FakeStripe
) -> None:
    account = await server.account(credits=0)
    first = await start_checkout(server, account.id)
    pending = await post(server, stripe_fake.complete(first, payment_status="unpaid"))
    assert pending.json()["outcome"] == "pending"
    assert await server.ledger(account) == (0, 0)
    succeeded = stripe_fake.async_succeeded(first)
    assert (await post(server, succeeded)).json()["outcome"] == "credited"
    assert (await post(server, succeeded)).json()["outcome"] == "duplicate"
    assert await server.ledger(account) == (500, 500)

    # Out of order: the success arrives before the completed event that announced it.
    second = await start_checkout(server, account.id, pack=1)
    unpaid = stripe_fake.complete(second, payment_status="unpaid")
    paid = stripe_fake.async_succeeded(second)
    outcomes = [(await post(server, body)).json()["outcome"] for body in (paid, unpaid)]
    assert outcomes == ["credited", "pending"]
    assert await server.ledger(account) == (2500, 2500)
    assert len(await stripe_credits(server, second)) == 1


async def test_sessions_we_did_not_create_credit_nothing(
    server: Server, stripe_fake: FakeStripe
) -> None:
    victim = await server.account(credits=0)
    buyer = await server.account(credits=0)
    foreign = {
        "id": "cs_test_made_by_another_server",
        "object": "checkout.session",
        "client_reference_id": victim.id,
        "metadata": {"account_id": victim.id, "credits": "100000"},
        "payment_status": "paid",
        "payment_intent": "pi_elsewhere",
    }
    answer = await post(server, event("checkout.session.completed", foreign))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "not_ours")

    # The buyer's session says it is the victim's, for more credits: the recorded pack wins.
    session_id = await start_checkout(server, buyer.id)
    completed = stripe_fake.complete(session_id)
    completed["data"]["object"].update(
        client_reference_id=victim.id, metadata={"account_id": victim.id, "credits": "100000"}
    )
    assert (await post(server, completed)).json()["outcome"] == "credited"
    assert await server.ledger(victim) == (0, 0)
    assert await server.ledger(buyer) == (500, 500)


async def test_the_ledger_alone_still_credits_once(server: Server, stripe_fake: FakeStripe):
    """Were the session's row back to open, the ledger's unique (stripe, session id) holds."""
    account = await server.account(credits=0)
    session_id = await start_checkout(server, account.id)
    completed = stripe_fake.complete(session_id)
    assert (await post(server, completed)).json()["outcome"] == "credited"
    async with server.services.db.transaction() as session:
        await session.execute(
            text("UPDATE checkout_sessions SET status = 'open' WHERE id = :id"), {"id": session_id}
        )
    again = await post(server, completed)
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert await server.ledger(account) == (500, 500)
    assert await status_of(server, session_id) == "paid"


async def test_other_events_are_acknowledged_and_ignored(server: Server) -> None:
    account = await server.account(credits=0)
    for kind in ("customer.created", "checkout.session.expired", "payment_intent.succeeded"):
        body = event(kind, {"id": "obj_1", "metadata": {"account_id": account.id}})
        answer = await post(server, body)
        assert (answer.status_code, answer.json()) == (
            200,
            {"received": True, "outcome": "ignored"},
        )
    assert await server.ledger(account) == (0, 0)


async def test_refunds_and_disputes_are_recorded_once_and_debit_nothing(
    server: Server, stripe_fake: FakeStripe
) -> None:
    account = await server.account(credits=0)
    session_id = await start_checkout(server, account.id)
    await stripe_fake.send(stripe_fake.complete(session_id))
    refund = stripe_fake.refunded(session_id)
    dispute = stripe_fake.disputed(session_id)
    answers = await asyncio.gather(*(post(server, refund) for _ in range(5)))
    assert sorted(a.json()["outcome"] for a in answers) == ["duplicate"] * 4 + ["recorded"]
    assert (await post(server, dispute)).json()["outcome"] == "recorded"
    assert await server.ledger(account) == (500, 500)  # the operator decides, not the webhook

    async with server.services.db.sessions() as session:
        recorded = await payments.payment_events(session, account.id)
    assert sorted((e.type, e.amount, e.currency) for e in recorded) == [
        ("charge.dispute.created", 250, "usd"),
        ("charge.refunded", 250, "usd"),
    ]
    assert {e.id for e in recorded} == {refund["id"], dispute["id"]}

    # A charge of nobody here is not recorded; one whose metadata names an account of ours is.
    stray = event("charge.refunded", {"id": "ch_x", "payment_intent": "pi_x", "amount": 5})
    assert (await post(server, stray)).json()["outcome"] == "not_ours"
    named = event(
        "charge.refunded",
        {"id": "ch_y", "amount_refunded": 100, "metadata": {"account_id": account.id}},
    )
    assert (await post(server, named)).json()["outcome"] == "recorded"
    async with server.services.db.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(PaymentEvent))
    assert total == 3


async def test_a_database_failure_is_5xx_and_the_retry_credits(
    server: Server, stripe_fake: FakeStripe
) -> None:
    account = await server.account(credits=0)
    session_id = await start_checkout(server, account.id)
    completed = stripe_fake.complete(session_id)
    async with server.services.db.transaction() as session:
        await session.execute(text("ALTER TABLE checkout_sessions RENAME TO checkout_sessions_x"))
    failed = await post(server, completed)
    assert failed.status_code == 500
    assert await server.ledger(account) == (0, 0)
    async with server.services.db.transaction() as session:
        await session.execute(text("ALTER TABLE checkout_sessions_x RENAME TO checkout_sessions"))
    retried = await post(server, completed)  # Stripe delivers it again
    assert (retried.status_code, retried.json()["outcome"]) == (200, "credited")
    assert await server.ledger(account) == (500, 500)


async def test_without_a_webhook_secret_nothing_is_accepted(
    settings: Settings, stripe_fake: FakeStripe
) -> None:
    bare = settings.model_copy(update={"stripe_webhook_secret": SecretStr("")})
    async with running_server(bare) as server:
        account = await server.account(credits=0)
        session_id = await start_checkout(server, account.id)
        answer = await post(server, stripe_fake.complete(session_id))
        assert answer.status_code == 400
        assert await server.ledger(account) == (0, 0)
