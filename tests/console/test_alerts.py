"""The Billing page's "Low-balance alert" section as a person uses it: settings saved with a
notice, refused with a readable message (the SSRF guard included), only by a form of this
browser; and the warning banner on every console page while the balance is below the threshold."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import expect

from console_support import ConsoleClient, Person, make_person, screenshot
from console_support import chromium as open_chromium
from harness import Account, Server, running_server
from imagegate.billing import alerts
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.keys.service import create_key
from receiver import running_receiver

BANNER = "Your balance is below your alert threshold."
FORM = ("/console/billing", "/console/billing/alerts")


async def stored(server: Server, account_id: str) -> alerts.AlertSettings:
    async with server.services.db.sessions() as session:
        return await alerts.settings_of(session, account_id)


async def signed_in(
    server: Server, email: str, credits: int = 1000
) -> tuple[ConsoleClient, Person]:
    person = await make_person(server, email, credits=credits)
    console = ConsoleClient(server)
    page = await console.sign_in(person.email)
    assert page.url.path == "/console", page.text
    return console, person


async def save(console: ConsoleClient, threshold: str, url: str = "") -> str:
    page = await console.submit(*FORM, {"threshold": threshold, "webhook_url": url})
    assert page.status_code == 200, page.text
    assert page.url.path == "/console/billing"
    return page.text


async def test_settings_are_saved_shown_and_turned_off(server: Server) -> None:
    console, person = await signed_in(server, "set@example.com")
    async with console:
        page = await save(console, " 1,500 ", "https://example.com/imagegate-events")
        assert "Low-balance alert saved: below 1,500 credits you will be told." in page
        assert 'value="1500"' in page
        assert 'value="https://example.com/imagegate-events"' in page
        assert "Alert on: below" in page
        assert await stored(server, person.account_id) == alerts.AlertSettings(
            1500, "https://example.com/imagegate-events"
        )
        page = await save(console, "", "")
        assert "Low-balance alert turned off." in page
        assert "No alert is set." in page
        assert await stored(server, person.account_id) == alerts.AlertSettings(None, None)


@pytest.mark.parametrize(
    ("threshold", "url", "message"),
    [
        ("abc", "", "The alert threshold must be a whole number of credits from 1 to"),
        ("0", "", "The alert threshold must be a whole number of credits from 1 to"),
        ("-5", "", "The alert threshold must be a whole number of credits from 1 to"),
        ("10000000000000", "", "The alert threshold must be a whole number"),
        ("²", "", "The alert threshold must be a whole number"),
        ("9" * 5000, "", "The alert threshold must be a whole number"),
        ("100", "ftp://example.com/hook", "The webhook URL must be an absolute http or https URL."),
        ("100", "example.com/hook", "The webhook URL must be an absolute http or https URL."),
        ("100", "https://exa mple.com/", "The webhook URL must be an absolute http or https URL."),
        ("100", "https://example.com:99999/", "must be an absolute http or https URL."),
        ("100", "https://me:pw@example.com/hook", "The webhook URL must not contain a user name"),
        ("100", "https://example.com/" + "a" * 2048, "must be at most 2,048 characters."),
        ("100", "http://127.0.0.1:8080/hook", "The webhook URL is not allowed: host '127.0.0.1'"),
        ("100", "http://10.1.2.3/hook", "resolves to a non-public address."),
        ("100", "http://169.254.169.254/latest", "resolves to a non-public address."),
        ("100", "http://[::1]/hook", "resolves to a non-public address."),
        ("100", "http://hooks.localhost/", "is loopback by definition"),
    ],
)
async def test_invalid_settings_are_refused_readably_and_not_saved(
    server: Server, threshold: str, url: str, message: str
) -> None:
    assert server.services.settings.callback_allow_private is False
    console, person = await signed_in(server, "bad@example.com")
    async with console:
        await save(console, "70", "https://example.com/kept")
        page = await console.submit(*FORM, {"threshold": threshold, "webhook_url": url})
    assert page.status_code == 400
    assert message in html.unescape(page.text)
    assert 'id="alert-error" class="error" role="alert"' in page.text
    assert 'aria-invalid="true"' in page.text
    assert f'value="{threshold}"' in page.text  # what was typed comes back to be fixed
    assert await stored(server, person.account_id) == alerts.AlertSettings(
        70, "https://example.com/kept"
    )


async def test_a_host_with_no_address_yet_is_accepted(server: Server) -> None:
    console, person = await signed_in(server, "later@example.com")
    async with console:
        page = await save(console, "70", "https://not-yet.invalid/hook")
    assert "Low-balance alert saved" in page
    assert (await stored(server, person.account_id)).webhook_url == "https://not-yet.invalid/hook"


async def test_a_form_without_its_csrf_token_is_refused(server: Server) -> None:
    console, person = await signed_in(server, "csrf@example.com")
    async with console:
        for data in ({}, {"csrf_token": "0" * 64}):
            answer = await console.http.post(
                "/console/billing/alerts", data={**data, "threshold": "50", "webhook_url": ""}
            )
            assert answer.status_code == 403
            assert "This form has expired" in answer.text
    assert await stored(server, person.account_id) == alerts.AlertSettings(None, None)


async def test_signed_out_posts_go_to_sign_in(server: Server) -> None:
    async with ConsoleClient(server) as console:
        answer = await console.http.post("/console/billing/alerts", data={"threshold": "5"})
    assert answer.url.path == "/console/login"


async def top_up(server: Server, account_id: str, amount: int) -> None:
    async with server.services.db.transaction() as session:
        await billing.top_up(session, account_id, amount, server.clock.now())


async def test_the_banner_shows_on_console_pages_while_below_and_goes_after_a_top_up(
    server: Server,
) -> None:
    console, person = await signed_in(server, "banner@example.com", credits=100)
    async with console:
        await save(console, "50")
        for path in ("/console", "/console/keys", "/console/billing", "/console/webhooks"):
            assert BANNER not in (await console.get(path)).text
        await top_up(server, person.account_id, -60)  # an operator takes 60: 40 left
        for path in ("/console", "/console/keys", "/console/billing", "/console/webhooks"):
            page = await console.get(path)
            assert BANNER in page.text, path
            assert '<p class="warning" role="status">' in page.text
        await top_up(server, person.account_id, 10)  # 50: at the threshold, not below it
        assert BANNER not in (await console.get("/console")).text
        await top_up(server, person.account_id, -1)
        assert BANNER in (await console.get("/console")).text
        await save(console, "")  # the alert turned off: no banner
        assert BANNER not in (await console.get("/console")).text


async def api_key(server: Server, account_id: str) -> Account:
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, account_id, "alerts", server.clock.now()
        )
    return Account(account_id, plaintext, key.id)


@pytest.fixture
async def open_server(settings: Settings) -> AsyncIterator[Server]:
    """A server whose callbacks may reach loopback, where the test's receiver listens."""
    async with running_server(settings.model_copy(update={"callback_allow_private": True})) as s:
        yield s


async def test_alerts_in_chromium(open_server: Server) -> None:
    server = open_server
    person = await make_person(server, "chrome@example.com", credits=60)
    key = await api_key(server, person.account_id)
    async with running_receiver() as receiver, open_chromium() as chromium:
        context = await chromium.new_context(base_url=server.base_url)
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text))
        await page.goto("/console/billing")
        await page.get_by_label("Email").fill(person.email)
        await page.get_by_label("Password").fill(person.password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()
        section = page.get_by_role("region", name="Low-balance alert")
        await expect(section.get_by_text("No alert is set.")).to_be_visible()

        await section.get_by_label("Alert threshold (credits)").fill("50")
        await section.get_by_label("Webhook URL for account events").fill("not a url")
        await section.get_by_role("button", name="Save alert").click()
        refused = page.get_by_role("region", name="Low-balance alert").get_by_role("alert")
        await expect(refused).to_have_text("The webhook URL must be an absolute http or https URL.")
        url_field = page.get_by_label("Webhook URL for account events")
        await expect(url_field).to_have_attribute("aria-invalid", "true")
        await url_field.fill(receiver.url)
        await page.get_by_role("button", name="Save alert").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Low-balance alert saved: below 50 credits you will be told."
        )
        await expect(page.get_by_label("Alert threshold (credits)")).to_have_value("50")
        await screenshot(page, "alerts-settings")

        assert (await server.create(key, rendering_speed="TURBO")).status_code == 200  # 44
        (received,) = await receiver.count(1)
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
        )
        banner = page.get_by_role("status").filter(has_text=BANNER)
        await expect(banner).to_be_visible()
        await screenshot(page, "alerts-banner")
        await banner.get_by_role("link", name="Top up in Billing").click()
        await expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()

        await top_up(server, person.account_id, 100)
        await page.reload()
        await expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()
        await expect(page.get_by_text(BANNER)).to_have_count(0)
        await context.close()
    assert json.loads(received.body)["balance"] == 44
    assert not [e for e in errors if "Content Security Policy" in e], errors
