"""The console as people use it, in Chromium: a member signs up, makes a key, uses it from the SDK,
watches tasks, cost and refund, disables the key; an operator adjusts the balance and bans the
account. Every page visited is saved as a screenshot (console_support.SCREENSHOTS)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from console_support import PASSWORD, chromium, make_person, screenshot
from harness import Server
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.users import service as users
from imagegate_client import AsyncClient, AuthenticationError

EMAIL = "grace@example.com"


async def new_page(browser: Browser, server: Server) -> tuple[Page, list[str]]:
    """A page of its own (cookies included), accepting confirmations, noting CSP violations."""
    context = await browser.new_context(base_url=server.base_url)
    page = await context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    return page, violations


async def sign_up(page: Page) -> None:
    await page.goto("/console/signup")
    await screenshot(page, "walk-01-sign-up")
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Repeat the password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("Welcome! Your account is ready.")
    await screenshot(page, "walk-02-overview-new")


async def create_key(page: Page, name: str) -> str:
    """Create a key in the console; returns it as the page shows it, once."""
    await page.get_by_role("link", name="API keys").click()
    await page.get_by_role("link", name="Create key").click()
    await page.get_by_label("Name").fill(name)
    await page.get_by_role("button", name="Create key").click()
    shown = page.get_by_text(re.compile(r"^sk-[A-Za-z0-9_-]{43}$"))
    await expect(shown).to_be_visible()
    await expect(page.get_by_role("button", name="Copy")).to_be_visible()
    await screenshot(page, f"walk-03-key-{name}-created")
    return (await shown.inner_text()).strip()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"signup_credits": 200})  # new accounts start with 200


async def test_a_member_and_an_operator_walk_the_console(server: Server) -> None:
    operator = await make_person(server, "ops@example.com", role="operator")
    async with chromium() as browser:
        page, violations = await new_page(browser, server)
        await sign_up(page)
        await expect(page.get_by_text("200 credits").first).to_be_visible()

        key = await create_key(page, "prod")
        await page.reload()
        assert key not in await page.content()  # shown once, never again
        await page.get_by_role("link", name="API keys").click()
        assert key not in await page.content()
        spare = await create_key(page, "spare")
        await page.get_by_role("link", name="API keys").click()
        await screenshot(page, "walk-04-keys")

        async with AsyncClient(api_key=key, base_url=server.base_url) as sdk:
            done = await sdk.generate('A poster with the text "HELLO"', rendering_speed="BALANCED")
            failed_id = await sdk.create("[simulate:upstream_error] a cat", rendering_speed="TURBO")
            failed = await sdk.wait(failed_id)
        assert done.status == "completed"
        assert failed.status == "failed"

        await page.get_by_role("link", name="Tasks").click()
        thumbnail = page.get_by_role("img", name=f"Thumbnail of task {done.id[-8:]}")
        await expect(thumbnail).to_be_visible()
        assert await thumbnail.evaluate("img => img.naturalWidth") == 160  # made by the server
        row = page.get_by_role("row").filter(has_text=done.id[-8:])
        await expect(row.get_by_role("cell", name="28", exact=True)).to_be_visible()
        failed_row = page.get_by_role("row").filter(has_text=failed.id[-8:])
        await expect(failed_row).to_contain_text("Image generation failed")
        await expect(failed_row).to_contain_text("refunded 16")
        await screenshot(page, "walk-05-tasks")
        await page.get_by_role("link", name=done.id[-8:]).first.click()
        await expect(page.get_by_role("heading", name="Images")).to_be_visible()
        await expect(page.get_by_text('A poster with the text "HELLO"').first).to_be_visible()
        await screenshot(page, "walk-06-task")

        await page.get_by_role("link", name="Billing").click()
        await expect(page.get_by_role("row").filter(has_text="Refund")).to_contain_text("+16")
        await screenshot(page, "walk-07-billing")

        await page.get_by_role("link", name="API keys").click()
        await page.get_by_role("link", name="prod").click()
        await page.get_by_role("button", name="Disable key").click()
        await expect(page.get_by_role("status")).to_contain_text("disabled")
        await screenshot(page, "walk-08-key-disabled")
        async with AsyncClient(api_key=key, base_url=server.base_url) as sdk:
            with pytest.raises(AuthenticationError):
                await sdk.credits()

        ops, ops_violations = await new_page(browser, server)
        await operator_adjusts(ops, operator.email)
        await page.get_by_role("link", name="Billing").click()
        adjustment = page.get_by_role("row").filter(has_text="Adjustment")
        await expect(adjustment).to_contain_text("+500")
        await expect(adjustment).to_contain_text("Goodwill credit for the outage")
        await expect(page.get_by_text(f"{200 - 28 + 500} credits").first).to_be_visible()
        await screenshot(page, "walk-11-member-sees-adjustment")

        await operator_bans(ops)
        await page.get_by_role("link", name="Billing").click()
        await expect(page).to_have_url(re.compile("/console/login"))  # the ban ended the session
        await screenshot(page, "walk-13-signed-out-by-ban")
        await page.get_by_label("Email").fill(EMAIL)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "This account has been banned. Contact the operator."
        )
        await screenshot(page, "walk-14-banned-sign-in")
        async with AsyncClient(api_key=spare, base_url=server.base_url) as sdk:
            with pytest.raises(AuthenticationError):
                await sdk.credits()
        assert violations == []
        assert ops_violations == []
    async with server.services.db.sessions() as session:
        member = await users.find_by_email(session, EMAIL)
        assert member is not None
        assert await billing.balance(session, member.account_id) == 200 - 28 + 500
        assert await billing.ledger_sum(session, member.account_id) == 200 - 28 + 500


async def operator_adjusts(page: Page, email: str) -> None:
    await page.goto("/console/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="Accounts").click()
    await page.get_by_label("Search accounts").fill(EMAIL)
    await page.get_by_role("button", name="Search").click()
    await screenshot(page, "walk-09-operator-search")
    await page.get_by_role("link", name=EMAIL).click()
    await page.get_by_label("Amount (credits)").fill("500")
    await page.get_by_label("Reason").fill("Goodwill credit for the outage")
    await page.get_by_role("button", name="Adjust credits").click()
    await expect(page.get_by_role("status")).to_contain_text("500")
    await screenshot(page, "walk-10-operator-adjusted")


async def operator_bans(page: Page) -> None:
    await page.get_by_role("link", name="Ban this account…").click()
    await page.get_by_role("button", name="Ban account").click()
    await expect(page.get_by_role("button", name="Unban account")).to_be_visible()
    await screenshot(page, "walk-12-operator-banned")
