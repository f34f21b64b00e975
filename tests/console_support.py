"""Test support for the console: a cookie-keeping client that fills forms as a browser does
(CSRF token read from the page), people made as an operator would, and a real Chromium."""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, async_playwright

from harness import Server
from imagegate.billing import service as billing
from imagegate.users import service as users
from imagegate.users.passwords import hash_password

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
PASSWORD = "correct horse battery"
CHROMIUM = os.environ.get("IMAGEGATE_TEST_CHROMIUM") or shutil.which("chromium") or "chromium"
# Each browser test writes a screenshot of every page it visits here (not committed).
SCREENSHOTS = Path(os.environ.get("IMAGEGATE_SCREENSHOTS", "test-artifacts/screenshots"))


@dataclass
class Person:
    email: str
    password: str
    account_id: str
    user_id: str


async def make_person(
    server: Server,
    email: str,
    role: str = "member",
    credits: int = 1000,
    account_id: str | None = None,
) -> Person:
    """A user with a password (and an account of their own unless ``account_id``)."""
    password_hash = await hash_password(PASSWORD)
    now = server.clock.now()
    async with server.services.db.transaction() as session:
        if account_id is None:
            account_id = (await billing.create_account(session, email, credits, now)).id
        user = await users.create_user(session, account_id, email, role, now, password_hash)
    return Person(email, PASSWORD, account_id, user.id)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class ConsoleClient:
    """A browser without JavaScript: keeps cookies, follows redirects, posts forms with the
    CSRF token of the page they are on."""

    def __init__(self, server: Server | str, headers: dict[str, str] | None = None) -> None:
        base_url = server if isinstance(server, str) else server.base_url
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=30, follow_redirects=True, headers=headers
        )

    async def __aenter__(self) -> ConsoleClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.http.aclose()

    async def get(self, path: str, **options: Any) -> httpx.Response:
        return await self.http.get(path, **options)

    async def submit(
        self, form_page: str, action: str, data: dict[str, str], **options: Any
    ) -> httpx.Response:
        """Open ``form_page``, then post ``data`` to ``action`` with that page's hidden fields
        (its CSRF token, a form's one-time token), as a browser sends them."""
        page = await self.http.get(form_page)
        assert page.status_code == 200, page.text
        hidden = {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}
        fields = {**hidden, "csrf_token": csrf_of(page.text), **data}
        return await self.http.post(action, data=fields, **options)

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.submit(
            "/console/login", "/console/login", {"email": email, "password": password}
        )

    async def sign_up(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.submit(
            "/console/signup",
            "/console/signup",
            {"email": email, "password": password, "confirm": password},
        )


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in SCREENSHOTS, for people to look at after the run."""
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)  # makes the folder
    return path
