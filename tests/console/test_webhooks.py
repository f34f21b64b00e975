"""The Webhooks page: the signing secret stays hidden until revealed, equals what the API gives,
and rotates, only by a form of this browser, only for the person's own account."""

from __future__ import annotations

import re

from console_support import ConsoleClient, make_person, screenshot
from console_support import chromium as open_chromium
from harness import Account, Server
from imagegate.keys.service import create_key

SHOWN = re.compile(r'<code id="webhook-secret" class="secret">(whsec_[A-Za-z0-9+/=]+)</code>')


async def api_key(server: Server, account_id: str) -> Account:
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, account_id, "webhooks test", server.clock.now()
        )
    return Account(account_id, plaintext, key.id)


async def api_secret(server: Server, account: Account) -> str:
    response = await server.http.get("/v1/webhooks/secret", headers=account.headers)
    assert response.status_code == 200, response.text
    secret: str = response.json()["data"]["secret"]
    return secret


def shown_secret(html: str) -> str:
    found = SHOWN.search(html)
    assert found, "the page shows no signing secret"
    return found.group(1)


async def reveal(browser: ConsoleClient) -> str:
    page = await browser.submit("/console/webhooks", "/console/webhooks/reveal", {})
    assert page.status_code == 200
    assert 'data-copy="webhook-secret"' in page.text
    return shown_secret(page.text)


async def test_secret_is_hidden_until_revealed_and_matches_the_api(server: Server) -> None:
    person = await make_person(server, "hook@example.com")
    key = await api_key(server, person.account_id)
    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        page = await browser.get("/console/webhooks")
        assert page.status_code == 200
        assert "whsec_••••••" in page.text
        assert "Reveal signing secret" in page.text
        assert "webhook-signature" in page.text
        assert "Standard Webhooks" in page.text
        assert SHOWN.search(page.text) is None
        revealed = await reveal(browser)  # made on first use, by the console here
        assert revealed == await api_secret(server, key)
        again = await browser.get("/console/webhooks")
    assert revealed not in again.text
    assert "whsec_••••••" in again.text


async def test_rotate_replaces_the_secret(server: Server) -> None:
    person = await make_person(server, "rotate@example.com")
    key = await api_key(server, person.account_id)
    old = await api_secret(server, key)  # made on first use, by the API here
    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        assert await reveal(browser) == old
        confirm = await browser.get("/console/webhooks/rotate")
        assert "Rotate the signing secret?" in confirm.text
        assert "will reject them" in confirm.text
        assert await api_secret(server, key) == old  # asking is not rotating
        done = await browser.submit("/console/webhooks/rotate", "/console/webhooks/rotate", {})
        assert done.status_code == 200
        assert done.url.path == "/console/webhooks"
        assert "Signing secret rotated" in done.text
        assert old not in done.text
        assert SHOWN.search(done.text) is None
        new = await api_secret(server, key)
        assert new != old
        assert new.startswith("whsec_")
        assert await reveal(browser) == new


async def test_forms_without_the_csrf_token_are_refused(server: Server) -> None:
    person = await make_person(server, "csrf@example.com")
    key = await api_key(server, person.account_id)
    before = await api_secret(server, key)
    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        for action in ("/console/webhooks/rotate", "/console/webhooks/reveal"):
            for data in ({}, {"csrf_token": "0" * 64}):
                refused = await browser.http.post(action, data=data)
                assert refused.status_code == 403
                assert "Form expired" in refused.text
                assert before not in refused.text
    assert await api_secret(server, key) == before
    async with ConsoleClient(server) as stranger:  # signed out: to the sign-in page, no secret
        for path in ("/console/webhooks", "/console/webhooks/rotate"):
            assert (await stranger.get(path)).url.path == "/console/login"


async def test_each_account_sees_only_its_own_secret(server: Server) -> None:
    ann = await make_person(server, "ann@example.com")
    bob = await make_person(server, "bob@example.com")
    ann_key, bob_key = await api_key(server, ann.account_id), await api_key(server, bob.account_id)
    async with ConsoleClient(server) as ann_browser, ConsoleClient(server) as bob_browser:
        await ann_browser.sign_in(ann.email)
        await bob_browser.sign_in(bob.email)
        ann_secret, bob_secret = await reveal(ann_browser), await reveal(bob_browser)
        assert ann_secret != bob_secret
        assert (ann_secret, bob_secret) == (
            await api_secret(server, ann_key),
            await api_secret(server, bob_key),
        )
        await bob_browser.submit("/console/webhooks/rotate", "/console/webhooks/rotate", {})
        assert await api_secret(server, ann_key) == ann_secret
        assert await api_secret(server, bob_key) != bob_secret
        assert await reveal(ann_browser) == ann_secret


async def test_webhooks_in_a_browser(server: Server) -> None:
    person = await make_person(server, "browse@example.com")
    key = await api_key(server, person.account_id)
    async with open_chromium() as chromium:
        context = await chromium.new_context()
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text))
        await page.goto(f"{server.base_url}/console/login")
        await page.get_by_label("Email").fill(person.email)
        await page.get_by_label("Password").fill(person.password)
        await page.get_by_role("button", name="Sign in").click()
        nav = page.get_by_role("navigation", name="Main")
        await nav.get_by_role("link", name="Webhooks").click()
        await page.get_by_role("heading", name="Webhooks", level=1).wait_for()
        assert await page.get_by_text("whsec_••••••").is_visible()
        await screenshot(page, "webhooks")

        await page.get_by_role("button", name="Reveal signing secret").click()
        copy = page.get_by_role("button", name="Copy the signing secret")
        await copy.wait_for()
        secret = await api_secret(server, key)
        assert await page.get_by_text(secret, exact=True).is_visible()
        await copy.click()
        await (
            page.get_by_role("button", name="Copy the signing secret")
            .filter(has_text=re.compile("Copied|Selected"))
            .wait_for()
        )
        await screenshot(page, "webhooks-revealed")

        await page.get_by_role("link", name="Rotate secret…").click()
        await page.get_by_role("heading", name="Rotate the signing secret?").wait_for()
        await screenshot(page, "webhooks-rotate")
        await page.get_by_role("button", name="Rotate secret").click()
        await page.get_by_role("status").filter(has_text="Signing secret rotated").wait_for()
        assert await page.get_by_text(secret).count() == 0
        new = await api_secret(server, key)
        assert new != secret
        await page.get_by_role("button", name="Reveal signing secret").click()
        await page.get_by_text(new, exact=True).wait_for()
        await context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
