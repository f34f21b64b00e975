"""Signing up, in and out, as a person does it."""

from __future__ import annotations

from console_support import ConsoleClient
from harness import Server


async def test_sign_up_then_sign_out_and_in_again(server: Server) -> None:
    async with ConsoleClient(server) as browser:
        page = await browser.sign_up("ada@example.com")
        assert page.status_code == 200
        assert str(page.url).endswith("/console")
        assert "Welcome! Your account is ready." in page.text
        assert "0 credits" in page.text

        out = await browser.submit("/console", "/console/logout", {})
        assert str(out.url).endswith("/console/login")
        assert "Signed out." in out.text
        assert (await browser.get("/console")).url.path == "/console/login"

        again = await browser.sign_in("ada@example.com")
        assert again.url.path == "/console"


async def test_the_root_leads_to_the_console_and_unknown_pages_are_html(server: Server) -> None:
    root = await server.http.get("/")
    assert root.status_code == 307
    assert root.headers["location"] == "/console"
    async with ConsoleClient(server) as browser:
        missing = await browser.get("/console/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "There is no such page." in missing.text
    # The API keeps its envelope next door.
    assert (await server.http.get("/v1/nope")).json()["error"]["code"] == "invalid_request"
