"""The Tasks pages as a person sees them: the list with thumbnails, costs and refunds, its
filters and pages, one task with its input and callback log, and nothing of other accounts."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import ConsoleMessage, expect
from playwright.async_api import Response as PlaywrightResponse

from console_support import ConsoleClient, Person, chromium, make_person, screenshot
from harness import Account, Server, wait_for
from imagegate.config import Settings
from imagegate.db.models import Task
from imagegate.keys.service import create_key
from imagegate.tasks import listing as tasks
from receiver import running_receiver

FAIL = "[simulate:upstream_error] x"
TASK_LINK = re.compile(r'href="/console/tasks/([0-9a-f-]{36})"')
OLDER = re.compile(r'<a href="([^"]+)" rel="next">Older</a>')
NEWER = re.compile(r'<a href="([^"]+)" rel="prev">Newer</a>')
UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Callbacks may go to the loopback receiver of these tests."""
    return settings.model_copy(update={"callback_allow_private": True})


async def api_key(server: Server, person: Person, name: str = "") -> Account:
    """A key for the person's account, made as the API keys page would make it."""
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, person.account_id, name, server.clock.now()
        )
    return Account(id=person.account_id, key=plaintext, key_id=key.id)


async def create(
    server: Server,
    account: Account,
    prompt: str = "a cat",
    callback_url: str | None = None,
    **input_fields: str,
) -> str:
    """A task made through the API with the person's key; returns its id."""
    body: dict[str, Any] = {"model": "ideogram-v4", "input": {"prompt": prompt, **input_fields}}
    if callback_url is not None:
        body["callback_url"] = callback_url
    response = await server.http.post("/v1/images/generations", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["taskId"]
    return task_id


async def finished(server: Server, account: Account, prompt: str = "a cat") -> dict[str, Any]:
    return await server.wait_final(account, await create(server, account, prompt))


def task_ids(html: str) -> list[str]:
    """The tasks a list page links to, in page order."""
    return list(dict.fromkeys(TASK_LINK.findall(html)))


def link(pattern: re.Pattern[str], html: str) -> str | None:
    found = pattern.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


async def signed_in(server: Server, person: Person) -> ConsoleClient:
    browser = ConsoleClient(server)
    page = await browser.sign_in(person.email)
    assert page.url.path == "/console", page.text
    return browser


async def test_a_completed_task_shows_its_cost_and_a_cached_thumbnail(server: Server) -> None:
    person = await make_person(server, "ada@example.com")
    account = await api_key(server, person, "laptop")
    task = await finished(server, account, 'a poster that says "Hello"')
    assert task["status"] == "completed"
    async with await signed_in(server, person) as browser:
        page = await browser.get("/console/tasks")
        assert task_ids(page.text) == [task["id"]]
        short = task["id"][-8:]
        assert "Completed" in page.text
        assert "BALANCED" in page.text
        assert "1:1" in page.text
        assert re.search(r'<td class="num">\s*28\s*</td>', page.text)
        assert "refunded" not in page.text
        assert "laptop (sk-" in page.text
        assert len(UTC_TIME.findall(page.text)) == 2  # created and finished
        thumb_url = f"/console/tasks/{task['id']}/thumbnails/0"
        assert f'src="{thumb_url}" alt="Thumbnail of task {short}"' in page.text

        first = await browser.get(thumb_url)
        original = await server.http.get(task["output"]["urls"][0])
        assert first.status_code == 200
        assert first.headers["content-type"] == "image/webp"
        assert first.headers["cache-control"].startswith("private, max-age=")
        assert len(first.content) < len(original.content) / 5
        with Image.open(io.BytesIO(first.content)) as small:
            assert max(small.size) == 160
            assert small.size == (160, 160)  # 1:1 kept

        await _served_from_the_cache(server, browser, task, thumb_url, first)


async def _served_from_the_cache(
    server: Server,
    browser: ConsoleClient,
    task: dict[str, Any],
    thumb_url: str,
    first: httpx.Response,
) -> None:
    data_dir = server.services.settings.data_dir
    image_key = task["output"]["urls"][0].split("/images/", 1)[1]
    cached = data_dir / "thumbnails" / f"{image_key}.webp"
    assert cached.read_bytes() == first.content
    made_at = cached.stat().st_mtime_ns
    (data_dir / "images" / image_key).unlink()  # the original is no longer read
    again = await browser.get(thumb_url)
    assert again.status_code == 200
    assert again.content == first.content
    assert cached.stat().st_mtime_ns == made_at
    assert list(cached.parent.iterdir()) == [cached]  # no temporary file left behind


async def test_a_failed_task_shows_its_error_and_refund(server: Server) -> None:
    person = await make_person(server, "bob@example.com")
    account = await api_key(server, person)
    task = await finished(server, account, FAIL)
    assert task["status"] == "failed"
    async with await signed_in(server, person) as browser:
        page = await browser.get("/console/tasks")
        assert task_ids(page.text) == [task["id"]]
        assert "Failed" in page.text
        assert "Image generation failed" in page.text
        assert "upstream_error" in page.text
        assert "refunded 28" in page.text
        assert "Thumbnail of task" not in page.text
        thumb = await browser.get(f"/console/tasks/{task['id']}/thumbnails/0")
        assert thumb.status_code == 404

        detail = await browser.get(f"/console/tasks/{task['id']}")
        assert "refunded 28 credits" in detail.text
        assert "Image generation failed" in detail.text
        assert "This task has no images." in detail.text
        assert "No callback URL was given for this task." in detail.text


async def test_filters_by_status_key_and_date_narrow_the_list(server: Server) -> None:
    person = await make_person(server, "cy@example.com")
    alpha, beta = await api_key(server, person, "alpha"), await api_key(server, person, "beta")
    done = (await finished(server, alpha))["id"]
    failed = (await finished(server, beta, FAIL))["id"]
    first_day = datetime.fromtimestamp(server.clock.now(), UTC).date()
    server.clock.advance(2 * 86400)
    later = (await finished(server, alpha))["id"]
    last_day = datetime.fromtimestamp(server.clock.now(), UTC).date()

    async with await signed_in(server, person) as browser:

        async def listed(**query: str) -> list[str]:
            page = await browser.get("/console/tasks", params=query)
            assert page.status_code == 200, page.text
            return task_ids(page.text)

        assert await listed() == [later, failed, done]
        assert await listed(status="failed") == [failed]
        assert await listed(status="completed") == [later, done]
        assert await listed(key=alpha.key_id) == [later, done]
        assert await listed(key=beta.key_id, status="completed") == []
        assert await listed(**{"from": last_day.isoformat()}) == [later]
        assert await listed(to=first_day.isoformat()) == [failed, done]
        assert await listed(**{"from": first_day.isoformat(), "to": first_day.isoformat()}) == [
            failed,
            done,
        ]
        none = await browser.get("/console/tasks", params={"status": "pending"})
        assert "No tasks match these filters." in none.text
        assert "selected>Pending</option>" in none.text  # the form keeps the filter


async def test_unreadable_filters_and_cursors_get_a_readable_error(server: Server) -> None:
    person = await make_person(server, "dee@example.com")
    async with await signed_in(server, person) as browser:
        for query, message in [
            ({"from": "yesterday"}, "From date must be a date like 2026-01-31."),
            ({"from": "2026-02-02", "to": "2026-02-01"}, "The From date is after the To date."),
            ({"to": "9999-12-31"}, "To date must be a date like 2026-01-31."),
            ({"status": "lost"}, "Choose a status from the list."),
            ({"cursor": "not-a-cursor"}, "The page cursor is not valid."),
            ({"limit": "500"}, "The page size must be a number from 1 to 100."),
        ]:
            page = await browser.get("/console/tasks", params=query)
            assert page.status_code == 400
            assert message in page.text
            assert 'role="alert"' in page.text
        empty = await browser.get("/console/tasks")
        assert "No tasks yet." in empty.text


async def test_pages_by_cursor_show_each_task_once_while_new_tasks_arrive(
    server: Server,
) -> None:
    person = await make_person(server, "eve@example.com")
    account = await api_key(server, person)
    made = [await create(server, account, f"task {n}") for n in range(25)]
    newest_first = made[::-1]
    async with await signed_in(server, person) as browser:
        pages: list[list[str]] = []
        url: str | None = "/console/tasks?limit=10"
        urls = []
        while url is not None:
            urls.append(url)
            page = await browser.get(url)
            assert page.status_code == 200, page.text
            pages.append(task_ids(page.text))
            for n in range(3):  # new tasks arrive between pages
                await create(server, account, f"newcomer {len(pages)}.{n}")
            url = link(OLDER, page.text)
        assert [len(p) for p in pages] == [10, 10, 5]
        assert [t for p in pages for t in p] == newest_first

        last = await browser.get(urls[2])
        back = link(NEWER, last.text)
        assert back is not None
        assert task_ids((await browser.get(back)).text) == pages[1]
        assert "Newest" in last.text


async def test_tasks_of_the_same_instant_are_paged_by_id_both_ways(server: Server) -> None:
    """Ties on created_at (a batch committed together) are ordered by id, exactly, on both
    databases: the cursor keeps the full float."""
    person = await make_person(server, "eli@example.com")
    account = await api_key(server, person)
    instant = server.clock.now() + 0.123456789
    ids = [str(uuid.uuid4()) for _ in range(7)]
    async with server.services.db.transaction() as session:
        for n, task_id in enumerate(ids):
            session.add(
                Task(
                    id=task_id,
                    account_id=person.account_id,
                    key_id=account.key_id,
                    model="ideogram-v4",
                    status="pending",
                    input={"prompt": f"tie {n}", "size": "1:1"},
                    price=28,
                    created_at=instant + (1 if n == 6 else 0),
                )
            )
    pages: list[tasks.TaskPage] = []
    cursor = None
    async with server.services.db.sessions() as session:
        while not pages or cursor:
            page = await tasks.list_tasks(session, person.account_id, cursor=cursor, limit=3)
            pages.append(page)
            cursor = page.next_cursor
        shown = [task.id for page in pages for task in page.tasks]
        assert shown == [ids[6], *sorted(ids[:6], reverse=True)]  # the tie by id, descending
        assert [len(page.tasks) for page in pages] == [3, 3, 1]
        assert pages[-1].newer_cursor is not None
        back = await tasks.list_tasks(
            session, person.account_id, cursor=pages[-1].newer_cursor, limit=3
        )
        assert [t.id for t in back.tasks] == [t.id for t in pages[1].tasks]


async def test_the_task_page_shows_input_images_and_callback_log(server: Server) -> None:
    person = await make_person(server, "fay@example.com")
    account = await api_key(server, person)
    async with running_receiver(lambda n: 500 if n == 1 else 204) as receiver:
        task_id = await create(
            server,
            account,
            "A red bicycle",
            size="16:9",
            rendering_speed="TURBO",
            output_format="png",
            callback_url=receiver.url,
        )
        async with await signed_in(server, person) as browser:
            url = f"/console/tasks/{task_id}"
            await receiver.count(1)
            await wait_for(lambda: _page_with(browser, url, "HTTP 500"))
            server.clock.advance(180)  # the second attempt is due
            await receiver.count(2)
            page = await wait_for(lambda: _page_with(browser, url, "Delivered"))
    text = page.text
    for shown in ["A red bicycle", "16:9", "TURBO", "png", "ideogram-v4", "16 credits"]:
        assert shown in text
    assert len(UTC_TIME.findall(text)) >= 5  # created, started, finished, two attempts
    assert receiver.url in text
    assert "task.completed" in text
    rows = re.findall(r"<tr>\s*<td class=\"num\">(\d)</td>.*?</tr>", text, re.S)
    assert rows == ["1", "2"]
    assert re.search(r'<td class="num">500</td>\s*<td>HTTP 500</td>', text)
    assert re.search(r'<td class="num">204</td>\s*<td></td>\s*<td class="time">none</td>', text)
    image = re.search(r'<img class="full" src="(/images/[^"]+\.png)" alt="Image 1 of task', text)
    assert image is not None
    assert (await server.http.get(image.group(1))).headers["content-type"] == "image/png"
    public = server.services.public_url
    assert f'href="{public}{image.group(1)}">Open image 1</a>' in text


async def _page_with(browser: ConsoleClient, url: str, wanted: str) -> httpx.Response | None:
    page = await browser.get(url)
    return page if wanted in page.text else None


async def test_another_accounts_task_and_thumbnail_are_not_found(server: Server) -> None:
    owner = await make_person(server, "gus@example.com")
    task = await finished(server, await api_key(server, owner))
    stranger = await make_person(server, "hal@example.com")
    async with await signed_in(server, stranger) as browser:
        for path in [
            f"/console/tasks/{task['id']}",
            f"/console/tasks/{task['id']}/thumbnails/0",
            "/console/tasks/00000000-0000-0000-0000-000000000000",
            "/console/tasks/not-a-task",
        ]:
            page = await browser.get(path)
            assert page.status_code == 404, path
            assert "Not found" in page.text
        assert "No tasks yet." in (await browser.get("/console/tasks")).text
        assert task["id"] not in (await browser.get("/console")).text
    async with await signed_in(server, owner) as browser:
        assert (await browser.get(f"/console/tasks/{task['id']}/thumbnails/1")).status_code == 404
        assert (await browser.get(f"/console/tasks/{task['id']}/thumbnails/x")).status_code == 404


async def test_task_pages_need_a_signed_in_person(server: Server) -> None:
    person = await make_person(server, "ivy@example.com")
    task = await finished(server, await api_key(server, person))
    async with ConsoleClient(server) as anonymous:
        for path in ["/console/tasks", f"/console/tasks/{task['id']}/thumbnails/0"]:
            page = await anonymous.get(path)
            assert page.url.path == "/console/login"


async def test_a_person_browses_tasks_in_chromium(server: Server) -> None:
    person = await make_person(server, "joy@example.com")
    account = await api_key(server, person, "studio")
    done = await finished(server, account, 'a sign that says "Open"')
    failed = await finished(server, account, FAIL)
    refused: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()
        page.on("console", lambda message: _note_refusal(message, refused))
        page.on("response", lambda response: _note_failure(response, refused))
        await page.goto(f"{server.base_url}/console/login")
        await page.get_by_label("Email").fill(person.email)
        await page.get_by_label("Password").fill(person.password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        await screenshot(page, "tasks-overview")

        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
        await expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
        thumb = page.get_by_role("img", name=f"Thumbnail of task {done['id'][-8:]}")
        await expect(thumb).to_be_visible()
        width = await thumb.evaluate("img => img.complete && img.naturalWidth")
        assert width == 160  # the server's thumbnail, not the 1024 px image scaled down
        await expect(page.get_by_text("refunded 28")).to_be_visible()
        await screenshot(page, "tasks-list")

        await page.get_by_label("Status").select_option("failed")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.get_by_role("link", name=failed["id"][-8:], exact=True)).to_be_visible()
        await expect(page.get_by_role("link", name=done["id"][-8:], exact=True)).to_have_count(0)
        await expect(page.get_by_label("Status")).to_have_value("failed")
        await screenshot(page, "tasks-filtered")

        await page.get_by_role("link", name="Clear filters").click()
        await page.get_by_role("link", name=done["id"][-8:], exact=True).click()
        await expect(page.get_by_role("heading", name="Input")).to_be_visible()
        image = page.get_by_role("img", name=re.compile(f"^Image 1 of task {done['id'][-8:]}"))
        await expect(image).to_be_visible()
        assert await image.evaluate("img => img.complete && img.naturalWidth") == 1024
        await expect(page.get_by_role("link", name="Open image 1")).to_be_visible()
        await expect(page.get_by_text("No callback URL was given for this task.")).to_be_visible()
        await screenshot(page, "tasks-detail")
    assert refused == []


def _note_refusal(message: ConsoleMessage, refused: list[str]) -> None:
    if "Content Security Policy" in message.text:
        refused.append(message.text)


def _note_failure(response: PlaywrightResponse, refused: list[str]) -> None:
    """A page's own resources all load (the browser's favicon guess is not one of them)."""
    if response.status >= 400 and not response.url.endswith("/favicon.ico"):
        refused.append(f"{response.status} {response.url}")
