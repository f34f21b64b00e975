"""The overview page as a person sees it: balance, credits spent today and this month (UTC),
tasks in flight, the last tasks, and for a new account how to begin."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.async_api import expect

from console_support import ConsoleClient, Person, chromium, make_person, screenshot
from harness import Account, HeldProvider, Server, held_server, wait_for
from imagegate.config import Settings
from imagegate.keys.service import create_key

FAIL = "[simulate:upstream_error] x"
TASK_LINK = re.compile(r'href="/console/tasks/([0-9a-f-]{36})"')


async def api_key(server: Server, person: Person) -> Account:
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, person.account_id, "", server.clock.now()
        )
    return Account(id=person.account_id, key=plaintext, key_id=key.id)


def stat(html: str, label: str) -> str:
    """The value shown under a figure's label, e.g. '972 credits'."""
    found = re.search(
        rf'<div class="label">{re.escape(label)}</div><div class="value"[^>]*>([^<]+)</div>', html
    )
    assert found, f"no figure labelled {label!r}"
    return found.group(1)


async def overview(server: Server, person: Person) -> str:
    """The overview, in a fresh sign-in (a jump of weeks outlives a console session)."""
    async with ConsoleClient(server) as browser:
        page = await browser.sign_in(person.email)
        assert page.url.path == "/console", page.text
        return page.text


def jump_to(server: Server, moment: datetime) -> None:
    server.clock.advance(moment.timestamp() - server.clock.now())


def next_month(now: float, day: int, hour: int = 12) -> datetime:
    current = datetime.fromtimestamp(now, UTC)
    year, month = divmod(current.year * 12 + current.month, 12)  # month is 0-based here
    return datetime(year, month + 1, day, hour, tzinfo=UTC)


async def test_a_new_account_is_shown_how_to_begin(server: Server) -> None:
    async with ConsoleClient(server) as browser:
        page = await browser.sign_up("new@example.com")
        assert page.url.path == "/console"
        assert stat(page.text, "Balance") == "0 credits"
        assert stat(page.text, "Spent today (UTC)") == "0 credits"
        assert stat(page.text, "Spent this month (UTC)") == "0 credits"
        assert stat(page.text, "Tasks in flight") == "0"
        assert "No tasks yet." in page.text
        assert '<a href="/console/keys">Create an API key</a>' in page.text
        assert f"curl -X POST {server.services.public_url}/v1/images/generations" in page.text
        assert not TASK_LINK.search(page.text)


async def test_spending_is_counted_by_utc_day_and_month(server: Server) -> None:
    person = await make_person(server, "kim@example.com", credits=1000)
    jump_to(server, next_month(server.clock.now(), day=10))
    account = await api_key(server, person)
    done = await server.run(account, rendering_speed="BALANCED")
    failed = await server.run(account, prompt=FAIL)
    assert (done["status"], failed["status"]) == ("completed", "failed")

    page = await overview(server, person)
    assert stat(page, "Balance") == "972 credits"  # the failed task was refunded
    assert stat(page, "Spent today (UTC)") == "28 credits"
    assert stat(page, "Spent this month (UTC)") == "28 credits"
    assert stat(page, "Tasks in flight") == "0"
    assert list(dict.fromkeys(TASK_LINK.findall(page))) == [failed["id"], done["id"]]
    assert "refunded 28" in page
    assert f"Thumbnail of task {done['id'][-8:]}" in page

    server.clock.advance(86400)  # the 11th: a new day, the same month
    page = await overview(server, person)
    assert stat(page, "Spent today (UTC)") == "0 credits"
    assert stat(page, "Spent this month (UTC)") == "28 credits"

    jump_to(server, next_month(server.clock.now(), day=1, hour=0))  # midnight of the 1st
    page = await overview(server, person)
    assert stat(page, "Spent this month (UTC)") == "0 credits"
    assert stat(page, "Balance") == "972 credits"


async def test_the_last_five_tasks_are_shown_newest_first(server: Server) -> None:
    person = await make_person(server, "lou@example.com")
    account = await api_key(server, person)
    made = [(await server.run(account, prompt=f"picture {n}"))["id"] for n in range(7)]
    page = await overview(server, person)
    assert list(dict.fromkeys(TASK_LINK.findall(page))) == made[::-1][:5]
    assert '<a href="/console/tasks">All tasks</a>' in page
    assert stat(page, "Spent today (UTC)") == f"{7 * 28} credits"


async def test_tasks_in_flight_are_counted_until_they_end(settings: Settings) -> None:
    held = HeldProvider()
    async with held_server(settings, held) as server:
        person = await make_person(server, "max@example.com")
        account = await api_key(server, person)
        first = (await server.create(account)).json()["data"]["taskId"]
        await server.create(account, rendering_speed="TURBO")

        async def generating() -> bool:
            return held.started >= 1

        await wait_for(generating)
        page = await overview(server, person)
        assert stat(page, "Tasks in flight") == "2"  # one processing, one pending or both
        assert "Processing" in page
        assert stat(page, "Spent today (UTC)") == f"{28 + 16} credits"
        held.release.set()
        await server.wait_final(account, first)

        async def settled() -> str | None:
            text = await overview(server, person)
            return text if stat(text, "Tasks in flight") == "0" else None

        page = await wait_for(settled)
        assert "Processing" not in page


async def test_the_overview_in_chromium(server: Server) -> None:
    person = await make_person(server, "ned@example.com", credits=250)
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{server.base_url}/console/login")
        await page.get_by_label("Email").fill(person.email)
        await page.get_by_label("Password").fill(person.password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        await expect(page.get_by_text("250 credits")).to_be_visible()
        await expect(page.get_by_text("No tasks yet.")).to_be_visible()
        await screenshot(page, "overview-empty")
        await page.get_by_role("link", name="Create an API key").click()
        await expect(page).to_have_url(re.compile(r"/console/keys$"))
