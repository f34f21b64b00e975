"""The API keys pages, as a person uses them: a key is shown once, its limits and status reach
the API at once, and another account's keys are not there at all."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from typing import Any

import httpx
from playwright.async_api import Dialog, Page, expect

from console_support import (
    HIDDEN,
    ConsoleClient,
    Person,
    chromium,
    make_person,
    screenshot,
)
from harness import Account, Server, wait_for
from imagegate.db.models import ApiKey
from imagegate.keys import service as keys

NEW_KEY = re.compile(r'id="new-key"[^>]*>(sk-[A-Za-z0-9_-]+)<')
KEY_LINK = re.compile(r'href="/console/keys/([0-9a-f-]{36})"')
ALERT = re.compile(r'role="alert">([^<]*)<')
NOTICE = re.compile(r'role="status">([^<]*)<')
EMPTY = "You have no API keys yet."
UNTIL_ENABLED = "Apps using it will get 401 until you enable it again."
IP_MESSAGE = "not an IP address or CIDR: '10.0.0.300'"
WHOLE = "must be a positive whole number or 'none'"
# Form fields with a bad value, the admin CLI's message for it, and what of it the form keeps.
REFUSED: list[tuple[dict[str, str], str, str | None]] = [
    ({"allowed_ips": "10.0.0.300"}, IP_MESSAGE, ">10.0.0.300</textarea>"),
    ({"hourly_limit": "-5"}, f"hourly-limit {WHOLE}", 'value="-5"'),
    ({"rate_limit": "0"}, f"rate-limit {WHOLE}", 'value="0"'),
    ({"rate_limit": "99999999999"}, "rate-limit must be at most 2147483647", "99999999999"),
    ({"expires": "next tuesday"}, "not an ISO 8601 time: 'next tuesday'", "next tuesday"),
    ({"models": "dall-e-3"}, "unknown model(s): dall-e-3 (known: ideogram-v4)", None),
]
NO_LIMITS = {
    "allowed_ips": "",
    "rate_limit": "",
    "hourly_limit": "",
    "daily_limit": "",
    "total_limit": "",
    "expires": "",
}


class Cells(HTMLParser):
    """The text of each table row's cells, as a screen reader would read the table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table(html: str) -> list[dict[str, str]]:
    """The keys table as one dict per row, keyed by the column headers."""
    parser = Cells()
    parser.feed(html)
    if not parser.rows:
        return []
    header, *rows = parser.rows
    return [dict(zip(header, row, strict=True)) for row in rows]


def alert(html: str) -> str:
    found = ALERT.search(html)
    assert found, "the page shows no error"
    return found.group(1)


def notice(html: str) -> str:
    found = NOTICE.search(html)
    assert found, "the page shows no notice"
    return found.group(1)


async def signed_in(server: Server, email: str) -> tuple[ConsoleClient, Person]:
    person = await make_person(server, email)
    browser = ConsoleClient(server)
    assert (await browser.sign_in(email)).url.path == "/console"
    return browser, person


async def create(browser: ConsoleClient, name: str, **fields: Any) -> httpx.Response:
    return await browser.submit(
        "/console/keys/new", "/console/keys", {"name": name, **NO_LIMITS, **fields}
    )


async def create_ok(browser: ConsoleClient, person: Person, name: str, **fields: Any) -> Account:
    """Create a key on the console; the API caller holding the key it shows once."""
    page = await create(browser, name, **fields)
    assert page.status_code == 201, page.text
    plaintext = NEW_KEY.search(page.text)
    key_id = KEY_LINK.search(page.text)
    assert plaintext
    assert key_id
    return Account(id=person.account_id, key=plaintext.group(1), key_id=key_id.group(1))


async def api_status(server: Server, caller: Account) -> int:
    return (await server.http.get("/v1/credits", headers=caller.headers)).status_code


async def stored(server: Server, key_id: str) -> ApiKey:
    async with server.services.db.sessions() as session:
        key = await session.get(ApiKey, key_id)
    assert key is not None
    return key


async def key_count(server: Server, account_id: str) -> int:
    async with server.services.db.sessions() as session:
        return len(await keys.list_keys(session, account_id))


async def test_a_new_key_is_shown_once_and_its_last_use_appears(server: Server) -> None:
    browser, person = await signed_in(server, "ada@example.com")
    async with browser:
        empty = await browser.get("/console/keys")
        assert EMPTY in empty.text
        assert table(empty.text) == []

        page = await create(
            browser, "prod",
            allowed_ips="127.0.0.1\n10.0.0.0/8, 2001:db8::/32", rate_limit="100",
            hourly_limit="56", daily_limit="500", total_limit="1000",
            expires="2099-01-01T00:00", models="ideogram-v4",
        )  # fmt: skip
        assert page.status_code == 201
        assert page.headers["cache-control"] == "no-store"
        caller = await create_ok(browser, person, "second")  # a second key, to see the order
        found = NEW_KEY.search(page.text)
        assert found
        prod = found.group(1)
        assert "it will not be shown again" in page.text
        assert '<button type="button" data-copy="new-key">Copy</button>' in page.text

        listing = await browser.get("/console/keys")
        assert prod not in listing.text
        assert caller.key not in listing.text
        rows = table(listing.text)
        assert [row["Name"] for row in rows] == ["second", "prod"]  # newest first
        assert rows[1]["Key"] == f"{prod[:10]}…{prod[-4:]}"
        assert rows[1]["Last used"] == "never"
        assert rows[1]["Status"] == "active"
        assert rows[1]["Limits"] == (
            "100 requests/min · 56 credits per hour · 500 credits per day · 1,000 credits in "
            "total · IPs: 127.0.0.1/32, 10.0.0.0/8, 2001:db8::/32 · models: ideogram-v4 · "
            "expires 2099-01-01 00:00 UTC"
        )
        assert rows[0]["Limits"] == "No limits"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", rows[1]["Created"])

        limited = await server.http.get("/v1/credits", headers={"Authorization": f"Bearer {prod}"})
        assert limited.status_code == 200  # from 127.0.0.1, which its allowlist names
        assert limited.headers["x-ratelimit-limit"] == "100"
        assert await api_status(server, caller) == 200

        async def last_used() -> str | None:
            row = table((await browser.get("/console/keys")).text)[0]
            return row["Last used"] if row["Last used"] != "never" else None

        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", await wait_for(last_used))
        details = await browser.get(f"/console/keys/{caller.key_id}")
        assert caller.key not in details.text
        assert "Last used</dt><dd>never" not in details.text


async def test_bad_values_are_refused_with_the_clis_message_and_nothing_is_created(
    server: Server,
) -> None:
    browser, person = await signed_in(server, "ada@example.com")
    async with browser:
        for fields, message, kept in REFUSED:
            page = await create(browser, "my app", **fields)
            assert page.status_code == 400
            assert alert(page.text) == message.replace("'", "&#39;")
            assert 'value="my app"' in page.text  # what was typed is kept
            assert kept is None or kept in page.text
            assert 'aria-invalid="true"' in page.text
            assert NEW_KEY.search(page.text) is None
        long_name = await create(browser, "x" * 201)
        assert alert(long_name.text) == "name must be at most 200 characters"
        control = await create(browser, "a\x07b")
        assert alert(control.text) == "name must not contain control characters"
        nul = await create(browser, "a\x00b")  # refused for every console form (test_security)
        assert nul.status_code == 400
        assert "not allowed (NUL)" in nul.text
        assert EMPTY in (await browser.get("/console/keys")).text
    assert await key_count(server, person.account_id) == 0


async def test_edited_limits_reach_the_api_at_once(server: Server) -> None:
    browser, person = await signed_in(server, "ada@example.com")
    async with browser:
        caller = await create_ok(browser, person, "prod", daily_limit="500")
        page = f"/console/keys/{caller.key_id}"
        saved = await browser.submit(
            page, page, {"name": "prod", **NO_LIMITS, "hourly_limit": "56"}
        )
        assert saved.url.path == page
        assert notice(saved.text) == "Key “prod” saved."
        assert re.search(r'name="hourly_limit"[^>]*value="56"', saved.text)  # the form shows it
        key = await stored(server, caller.key_id)
        assert (key.hourly_limit, key.daily_limit) == (56, None)  # a cleared field: no limit
        for _ in range(2):
            assert (await server.create(caller)).status_code == 200
        refused = await server.create(caller)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "spend_limit_exceeded"
        assert "56 credits in the last hour" in (await browser.get(page)).text

        bad = await browser.submit(page, page, {"name": "renamed", **NO_LIMITS, "rate_limit": "-1"})
        assert bad.status_code == 400
        assert alert(bad.text) == "rate-limit must be a positive whole number or &#39;none&#39;"
        assert 'value="renamed"' in bad.text
        assert (await stored(server, caller.key_id)).name == "prod"  # nothing changed

        cleared = await browser.submit(page, page, {"name": "renamed", **NO_LIMITS})
        assert notice(cleared.text) == "Key “renamed” saved."
        assert (await server.create(caller)).status_code == 200


async def test_disable_enable_and_delete_with_confirmation(server: Server) -> None:
    browser, person = await signed_in(server, "ada@example.com")
    async with browser:
        caller = await create_ok(browser, person, "prod")
        page = f"/console/keys/{caller.key_id}"
        off = await browser.submit(page, f"{page}/disable", {})
        assert notice(off.text) == "Key “prod” disabled. Apps using it now get 401."
        assert 'data-confirm="Disable key “prod”?' not in off.text  # now offers Enable instead
        assert await api_status(server, caller) == 401
        assert table((await browser.get("/console/keys")).text)[0]["Status"] == "disabled"

        on = await browser.submit(page, f"{page}/enable", {})
        assert notice(on.text) == "Key “prod” enabled."
        assert await api_status(server, caller) == 200

        confirm = await browser.get(f"{page}/delete")
        assert "Delete key “prod”?" in confirm.text
        assert "Apps using it will get 401 at once. This cannot be undone." in confirm.text
        assert await api_status(server, caller) == 200  # asking deletes nothing
        gone = await browser.submit(f"{page}/delete", f"{page}/delete", {})
        assert gone.url.path == "/console/keys"
        assert notice(gone.text) == "Key “prod” deleted."
        assert EMPTY in gone.text
        assert await api_status(server, caller) == 401
        assert (await browser.get(page)).status_code == 404
        assert (await browser.get(f"{page}/delete")).status_code == 404


async def test_another_accounts_keys_are_not_found_and_stay_as_they_are(server: Server) -> None:
    alice, alice_person = await signed_in(server, "alice@example.com")
    bob, _ = await signed_in(server, "bob@example.com")
    async with alice, bob:
        caller = await create_ok(alice, alice_person, "alice-prod", hourly_limit="100")
        assert EMPTY in (await bob.get("/console/keys")).text
        page = f"/console/keys/{caller.key_id}"
        assert (await bob.get(page)).status_code == 404
        assert (await bob.get(f"{page}/delete")).status_code == 404
        for missing in ("no-such-key", "x" * 300):
            assert (await bob.get(f"/console/keys/{missing}")).status_code == 404
        for action in (page, f"{page}/disable", f"{page}/enable", f"{page}/delete"):
            answer = await bob.submit("/console/keys", action, {"name": "mine", **NO_LIMITS})
            assert answer.status_code == 404, action
            assert "alice-prod" not in answer.text
        key = await stored(server, caller.key_id)
        assert (key.name, key.status, key.hourly_limit) == ("alice-prod", "active", 100)
        assert await api_status(server, caller) == 200


async def test_forms_without_this_browsers_csrf_token_are_refused(server: Server) -> None:
    browser, person = await signed_in(server, "ada@example.com")
    async with browser:
        caller = await create_ok(browser, person, "prod")
        page = f"/console/keys/{caller.key_id}"
        for action in ("/console/keys", page, f"{page}/disable", f"{page}/delete"):
            for token in ({}, {"csrf_token": "0" * 64}):
                answer = await browser.http.post(action, data={"name": "evil", **token})
                assert answer.status_code == 403, action
                assert "This form has expired" in answer.text
        assert await key_count(server, person.account_id) == 1
        key = await stored(server, caller.key_id)
        assert (key.name, key.status) == ("prod", "active")
        assert await api_status(server, caller) == 200


async def test_signed_out_visitors_are_sent_to_sign_in(server: Server) -> None:
    async with ConsoleClient(server) as browser:
        page = await browser.get("/console/keys/new")
        assert page.url.path == "/console/login"
        assert page.url.params["next"] == "/console/keys/new"


async def new_key(page: Page) -> str:
    """The key as the page shows it once (the only code that is a whole key)."""
    shown = page.get_by_role("region", name="Your new API key").get_by_role("code")
    return (await shown.filter(has_text=re.compile(r"^sk-[\w-]{43}$")).inner_text()).strip()


async def browser_sign_in(page: Page, person: Person) -> None:
    await page.goto("/console/keys")
    await page.get_by_label("Email").fill(person.email)
    await page.get_by_label("Password").fill(person.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    await expect(page.get_by_text(EMPTY)).to_be_visible()
    await screenshot(page, "keys-empty")


async def browser_create(page: Page) -> str:
    """Create key "prod": first with a bad IP (refused, values kept), then fixed; its key."""
    await page.get_by_role("link", name="Create key").click()
    await page.get_by_label("Name").fill("prod")
    await page.get_by_label("Allowed IP addresses").fill("127.0.0.1\n10.0.0.300")
    await page.get_by_label("Hourly spend limit").fill("56")
    await page.get_by_label("Expires at (UTC)").fill("2099-01-01T00:00")
    await page.get_by_role("checkbox", name="ideogram-v4").check()
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("alert")).to_have_text(IP_MESSAGE)
    await expect(page.get_by_label("Name")).to_have_value("prod")
    ips = page.get_by_label("Allowed IP addresses")
    await expect(ips).to_have_attribute("aria-invalid", "true")
    await screenshot(page, "keys-create-error")

    await ips.fill("127.0.0.1")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="Key “prod” created")).to_be_visible()
    await expect(page.get_by_text("it will not be shown again")).to_be_visible()
    plaintext = await new_key(page)
    assert plaintext.startswith("sk-")
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == plaintext
    await screenshot(page, "keys-created")
    return plaintext


async def browser_list_until_used(page: Page, server: Server, caller: Account) -> None:
    """The list shows prefix and last 4 (never the key), and its last use once it is used."""
    await page.get_by_role("link", name="Done").click()
    row = page.get_by_role("row", name=re.compile("prod"))
    masked = f"{caller.key[:10]}…{caller.key[-4:]}"
    await expect(row.get_by_role("cell", name=masked)).to_be_visible()
    await expect(row.get_by_role("cell", name="never")).to_be_visible()
    assert caller.key not in await page.content()
    await screenshot(page, "keys-list")
    assert await api_status(server, caller) == 200

    async def used() -> bool:
        await page.reload()
        return await row.get_by_role("cell", name="never").count() == 0

    await wait_for(used)
    await screenshot(page, "keys-list-used")
    await row.get_by_role("link", name="prod").click()


async def browser_edit(page: Page) -> None:
    await expect(page.get_by_label("Hourly spend limit")).to_have_value("56")
    await expect(page.get_by_role("checkbox", name="ideogram-v4")).to_be_checked()
    await page.get_by_label("Hourly spend limit").fill("")
    await page.get_by_label("Rate limit (requests per minute)").fill("30")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status")).to_have_text("Key “prod” saved.")
    await expect(page.get_by_label("Hourly spend limit")).to_have_value("")
    await expect(page.get_by_label("Rate limit (requests per minute)")).to_have_value("30")
    await screenshot(page, "keys-detail")


async def browser_disable_enable(page: Page, server: Server, caller: Account) -> None:
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await page.get_by_role("button", name="Disable key").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Key “prod” disabled. Apps using it now get 401."
    )
    assert asked == [f"Disable key “prod”? {UNTIL_ENABLED}"]
    assert await api_status(server, caller) == 401
    await screenshot(page, "keys-disabled")
    await page.get_by_role("button", name="Enable key").click()
    await expect(page.get_by_role("status")).to_have_text("Key “prod” enabled.")
    assert await api_status(server, caller) == 200


async def browser_delete(page: Page, server: Server, caller: Account) -> None:
    await page.get_by_role("link", name="Delete key…").click()
    await expect(page.get_by_role("heading", name="Delete key “prod”?")).to_be_visible()
    await screenshot(page, "keys-delete")
    await page.get_by_role("button", name="Delete key").click()
    await expect(page.get_by_role("status")).to_have_text("Key “prod” deleted.")
    await expect(page.get_by_text(EMPTY)).to_be_visible()
    assert await api_status(server, caller) == 401
    await screenshot(page, "keys-deleted")


async def test_keys_in_a_real_browser(server: Server) -> None:
    person = await make_person(server, "ada@example.com")
    async with chromium() as chrome:
        context = await chrome.new_context(
            base_url=server.base_url, permissions=["clipboard-read", "clipboard-write"]
        )
        page = await context.new_page()
        await browser_sign_in(page, person)
        plaintext = await browser_create(page)
        caller = Account(id=person.account_id, key=plaintext, key_id="")
        await browser_list_until_used(page, server, caller)
        await browser_edit(page)
        await browser_disable_enable(page, server, caller)
        await browser_delete(page, server, caller)
        await context.close()


async def test_a_reloaded_or_double_sent_create_form_makes_one_key(server: Server) -> None:
    browser, person = await signed_in(server, "ada@example.com")
    async with browser:
        form = await browser.get("/console/keys/new")
        fields = {**dict(HIDDEN.findall(form.text)), "name": "once", **NO_LIMITS}
        # A double click: two posts of one form at the same moment.
        answers = await asyncio.gather(
            *(browser.http.post("/console/keys", data=fields) for _ in range(2))
        )
        assert sorted(a.status_code for a in answers) == [200, 201]
        shown = [a for a in answers if a.status_code == 201][0]
        assert re.search(r"sk-[A-Za-z0-9_-]{43}", shown.text)
        # A reload of the answer posts the form once more.
        again = await browser.http.post("/console/keys", data=fields)
        assert again.url.path == "/console/keys"
        assert "That form was already sent: its key was created and shown once." in again.text
        assert not re.search(r"sk-[A-Za-z0-9_-]{43}", again.text)
        assert await key_count(server, person.account_id) == 1
