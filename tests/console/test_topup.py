"""Buying credits on the Billing page: packs with Top up buttons, Stripe Checkout (the loopback
fake, through the real SDK), the signed webhook that credits, the page Stripe sends the buyer
back to, and refunds shown but never debited; as a person does it, in Chromium and in forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import expect
from pydantic import SecretStr
from sqlalchemy import func, select

from console_support import ConsoleClient, chromium, make_person, screenshot
from fake_stripe import FakeStripe, ledgers_add_up, stripe_settings
from harness import Account, Server, free_port, running_server
from imagegate.config import Settings
from imagegate.db.models import CheckoutSession
from imagegate.keys.service import create_key

SMALL = "500:250"  # the form value of the 500 credits for $2.50 pack
CHECKOUT_LINK = re.compile(r'href="([^"]+/pay/cs_test_[^"]+)"')


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


async def credits_by_api(server: Server, account_id: str) -> int:
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, account_id, "top-up test", server.clock.now()
        )
    response = await server.http.get(
        "/v1/credits", headers=Account(account_id, plaintext, key.id).headers
    )
    assert response.status_code == 200, response.text
    credits: int = response.json()["data"]["credits"]
    return credits


async def checkouts(server: Server) -> int:
    async with server.services.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CheckoutSession)) or 0)


async def buy(client: ConsoleClient, pack: str = SMALL) -> httpx.Response:
    """Top up ``pack`` on Billing, then pay on the (fake) Checkout page: the page Stripe sends
    the buyer back to."""
    going = await client.submit("/console/billing", "/console/billing/topup", {"pack": pack})
    assert going.status_code == 200, going.text
    found = CHECKOUT_LINK.search(going.text)
    assert found, "no link to Stripe Checkout"
    checkout = await client.get(found.group(1))
    assert checkout.status_code == 200
    return await client.http.post(found.group(1))


async def test_top_up_in_a_browser(server: Server, stripe_fake: FakeStripe) -> None:
    person = await make_person(server, "buyer@example.com", credits=20)
    stripe_fake.hold = True  # Stripe's event arrives after the buyer is back
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text))
        await page.goto(f"{server.base_url}/console/login")
        await page.get_by_label("Email").fill(person.email)
        await page.get_by_label("Password").fill(person.password)
        await page.get_by_role("button", name="Sign in").click()
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
        )
        await expect(page.get_by_role("heading", name="Top up")).to_be_visible()
        assert await page.get_by_role("button", name="Top up 2,000 credits for $10.00").is_visible()
        await screenshot(page, "topup-billing")

        await page.get_by_role("button", name="Top up 500 credits for $2.50").click()
        await expect(page.get_by_role("heading", name="Pay 2.50 USD")).to_be_visible()
        await expect(page.get_by_text("500 imagegate credits × 1")).to_be_visible()
        await screenshot(page, "topup-checkout")

        await page.get_by_role("button", name="Pay").click()
        await expect(page.get_by_role("heading", name="Payment processing…")).to_be_visible()
        assert "/console/billing/topup/success?session_id=cs_test_" in page.url
        assert await server.ledger(Account(person.account_id, "", "")) == (20, 20)
        await stripe_fake.release()  # the signed webhook lands; the page refreshes itself
        await expect(page.get_by_role("heading", name="500 credits added")).to_be_visible(
            timeout=15_000
        )
        await expect(page.get_by_test_id("balance")).to_have_text("520 credits")
        await screenshot(page, "topup-success")

        await page.get_by_role("link", name="Back to Billing").click()
        row = page.get_by_role("row").filter(has_text="Stripe Checkout: 500 credits ($2.50)")
        await expect(row.get_by_role("cell").nth(1)).to_have_text("Top-up")
        await expect(row.get_by_role("cell").nth(2)).to_have_text("+500")
        await expect(row.get_by_role("cell").nth(3)).to_have_text("520")
    assert stripe_fake.deliveries == [("checkout.session.completed", 200)]
    assert await credits_by_api(server, person.account_id) == 520
    assert not [e for e in errors if "Content Security Policy" in e], errors


async def test_forms_top_up_and_success_page(server: Server, stripe_fake: FakeStripe) -> None:
    person = await make_person(server, "forms@example.com", credits=0)
    async with ConsoleClient(server) as client:
        await client.sign_in(person.email)
        billing = await client.get("/console/billing")
        assert 'aria-label="Top up 500 credits for $2.50"' in billing.text
        success = await buy(client, "2000:1000")
        assert success.status_code == 200
        assert "<h1>2,000 credits added</h1>" in success.text
        assert 'http-equiv="refresh"' not in success.text  # done: no more refreshing
        assert (
            "Stripe Checkout: 2,000 credits ($10.00)" in (await client.get("/console/billing")).text
        )
    assert await credits_by_api(server, person.account_id) == 2000
    [session_id] = stripe_fake.sessions
    assert stripe_fake.sessions[session_id]["client_reference_id"] == person.account_id


async def test_the_success_page_is_the_buyers_own(server: Server, stripe_fake: FakeStripe) -> None:
    buyer = await make_person(server, "own@example.com", credits=0)
    other = await make_person(server, "other@example.com", credits=0)
    stripe_fake.hold = True
    async with ConsoleClient(server) as client:
        await client.sign_in(buyer.email)
        processing = await buy(client)
        assert processing.status_code == 200
        assert "<h1>Payment processing…</h1>" in processing.text
        assert '<meta http-equiv="refresh" content="2">' in processing.text
    session_id = processing.url.params["session_id"]
    async with ConsoleClient(server) as client:
        await client.sign_in(other.email)
        for path in (
            f"/console/billing/topup/success?session_id={session_id}",
            "/console/billing/topup/success?session_id=cs_test_unknown",
        ):
            assert (await client.get(path)).status_code == 404
        assert (await client.get("/console/billing/topup/success")).status_code == 400
    async with ConsoleClient(server) as client:  # signed out: to the sign-in page
        response = await client.get(f"/console/billing/topup/success?session_id={session_id}")
        assert response.url.path == "/console/login"
    await stripe_fake.release()
    assert await credits_by_api(server, buyer.account_id) == 500
    assert await credits_by_api(server, other.account_id) == 0


async def test_cancelling_checkout_returns_to_billing(server: Server, stripe_fake: FakeStripe):
    person = await make_person(server, "cancel@example.com", credits=0)
    async with ConsoleClient(server) as client:
        await client.sign_in(person.email)
        going = await client.submit("/console/billing", "/console/billing/topup", {"pack": SMALL})
        found = CHECKOUT_LINK.search(going.text)
        assert found
        page = await client.get(found.group(1))
        cancel = re.search(r'<a href="([^"]+)">Cancel</a>', page.text)
        assert cancel
        back = await client.get(cancel.group(1).replace("&amp;", "&"))
        assert back.url.path == "/console/billing"
        assert "Checkout cancelled: nothing was charged." in back.text
    assert await credits_by_api(server, person.account_id) == 0


async def test_stripe_errors_are_readable_and_charge_nothing(
    server: Server, stripe_fake: FakeStripe
) -> None:
    person = await make_person(server, "errors@example.com", credits=0)
    async with ConsoleClient(server) as client:
        await client.sign_in(person.email)
        stripe_fake.create_errors = [500, 500, 500]  # the SDK's two retries fail too
        failed = await client.submit("/console/billing", "/console/billing/topup", {"pack": SMALL})
        assert failed.status_code == 502
        assert "The payment could not be started" in failed.text
        assert "Nothing was charged" in failed.text
        stripe_fake.api_key = "sk_test_rotated"  # ours is refused with 401
        refused = await client.submit("/console/billing", "/console/billing/topup", {"pack": SMALL})
        assert refused.status_code == 502
        assert await checkouts(server) == 0

        stripe_fake.api_key = server.services.settings.stripe_api_key.get_secret_value()
        stripe_fake.create_errors = [500]  # one failure: the retry (same Idempotency-Key) works
        assert (await buy(client)).status_code == 200
        assert len(stripe_fake.sessions) == 1

        unknown = await client.submit("/console/billing", "/console/billing/topup", {"pack": "1:1"})
        assert unknown.status_code == 400
        assert "That pack is not on sale" in unknown.text
        token = await client.http.post("/console/billing/topup", data={"pack": SMALL})
        assert token.status_code == 403
    assert await checkouts(server) == 1
    assert await credits_by_api(server, person.account_id) == 500


async def test_unreachable_stripe_is_a_502(settings: Settings) -> None:
    offline = settings.model_copy(update={"stripe_api_base": f"http://127.0.0.1:{free_port()}"})
    async with running_server(offline) as server:
        person = await make_person(server, "offline@example.com", credits=0)
        async with ConsoleClient(server) as client:
            await client.sign_in(person.email)
            page = await client.submit(
                "/console/billing", "/console/billing/topup", {"pack": SMALL}
            )
        assert page.status_code == 502
        assert "The payment could not be started" in page.text
        assert await checkouts(server) == 0
        await ledgers_add_up(server.services)


async def test_without_stripe_there_is_nothing_to_buy(settings: Settings) -> None:
    bare = settings.model_copy(update={"stripe_api_key": SecretStr("")})
    async with running_server(bare) as server:
        member = await make_person(server, "member@example.com", credits=0)
        operator = await make_person(server, "op@example.com", role="operator", credits=0)
        async with ConsoleClient(server) as client:
            await client.sign_in(member.email)
            page = await client.get("/console/billing")
            assert "Buying credits is not enabled on this server." in page.text
            assert "Top up 500" not in page.text
            assert "IMAGEGATE_STRIPE_API_KEY" not in page.text
            post = await client.submit(
                "/console/billing", "/console/billing/topup", {"pack": SMALL}
            )
            assert post.status_code == 409
        async with ConsoleClient(server) as client:
            await client.sign_in(operator.email)
            page = await client.get("/console/billing")
            assert "set IMAGEGATE_STRIPE_API_KEY to sell credits" in page.text
        assert await checkouts(server) == 0
        await ledgers_add_up(server.services)


async def test_refunds_and_disputes_show_on_billing_and_debit_nothing(
    server: Server, stripe_fake: FakeStripe
) -> None:
    person = await make_person(server, "refund@example.com", credits=0)
    async with ConsoleClient(server) as client:
        await client.sign_in(person.email)
        assert "Payment events" not in (await client.get("/console/billing")).text
        await buy(client)
        [session_id] = stripe_fake.sessions
        await stripe_fake.send(stripe_fake.refunded(session_id, amount=100))
        await stripe_fake.send(stripe_fake.disputed(session_id))
        page = (await client.get("/console/billing")).text
    assert "Payment events" in page
    assert "the operator's decision" in page
    rows = re.findall(r"<td>(Refund|Dispute)</td>\s*<td class=\"num\">([^<]+)</td>", page)
    assert sorted(rows) == [("Dispute", "$2.50"), ("Refund", "$1.00")]
    assert await credits_by_api(server, person.account_id) == 500
    # The operator sees them on the account's page, beside Adjust credits.
    operator = await make_person(server, "ops-refund@example.com", role="operator")
    async with ConsoleClient(server) as ops:
        await ops.sign_in(operator.email)
        account = (await ops.get(f"/console/admin/accounts/{person.account_id}")).text
    assert "Payment events" in account
    shown = re.findall(r"<td>(Refund|Dispute)</td>\s*<td class=\"num\">([^<]+)</td>", account)
    assert sorted(shown) == [("Dispute", "$2.50"), ("Refund", "$1.00")]
