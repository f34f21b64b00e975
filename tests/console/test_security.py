"""The console's defences: CSRF tokens, sessions that end, throttled sign-in, cookie and header
policy, and the wall between API keys and console sessions."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from console_support import PASSWORD, ConsoleClient, csrf_of, make_person
from harness import Server
from imagegate.config import Settings
from imagegate.console.web import SESSION_COOKIE
from imagegate.keys.service import create_key
from imagegate.users.service import issue_link, reset_password


def unique_email() -> str:
    return f"p-{uuid.uuid4().hex[:10]}@example.com"


async def signed_in(server: Server, email: str | None = None) -> tuple[ConsoleClient, str]:
    """A browser signed in as ``email`` (a new person when None)."""
    if email is None:
        email = unique_email()
        await make_person(server, email)
    client = ConsoleClient(server)
    page = await client.sign_in(email)
    assert page.url.path == "/console", page.text
    return client, email


async def test_a_form_without_its_csrf_token_is_refused(server: Server) -> None:
    email = unique_email()
    await make_person(server, email)
    async with ConsoleClient(server) as browser:
        await browser.get("/console/login")  # the anchor cookie is set, but no token is sent
        refused = await browser.http.post(
            "/console/login", data={"email": email, "password": PASSWORD}
        )
        assert refused.status_code == 403
        assert "This form has expired" in refused.text
        assert SESSION_COOKIE not in browser.http.cookies

    client, _ = await signed_in(server)
    async with client:
        # A token from another browser (or forged) is no better than none.
        async with ConsoleClient(server) as other:
            foreign = csrf_of((await other.get("/console/login")).text)
        for data in ({}, {"csrf_token": foreign}, {"csrf_token": "0" * 64}):
            assert (await client.http.post("/console/logout", data=data)).status_code == 403
        assert (await client.get("/console")).url.path == "/console"  # still signed in


async def test_a_session_does_not_survive_logout(server: Server) -> None:
    client, _ = await signed_in(server)
    async with client:
        stolen = client.http.cookies[SESSION_COOKIE]
        await client.submit("/console", "/console/logout", {})
        async with ConsoleClient(server) as thief:
            thief.http.cookies.set(SESSION_COOKIE, stolen, path="/console")
            page = await thief.get("/console")
            assert page.url.path == "/console/login"


async def test_a_password_change_ends_every_other_session(server: Server) -> None:
    client, email = await signed_in(server)
    other, _ = await signed_in(server, email)
    new_password = "a much newer passphrase"
    async with client, other:
        old_cookie = client.http.cookies[SESSION_COOKIE]
        wrong = await client.submit(
            "/console/password",
            "/console/password",
            {"current": "not my password", "password": new_password, "confirm": new_password},
        )
        assert wrong.status_code == 400
        assert "Your current password is wrong." in wrong.text
        assert (await other.get("/console")).url.path == "/console"

        changed = await client.submit(
            "/console/password",
            "/console/password",
            {"current": PASSWORD, "password": new_password, "confirm": new_password},
        )
        assert changed.url.path == "/console"
        assert "Every other session was signed out." in changed.text
        assert (await other.get("/console")).url.path == "/console/login"
        async with ConsoleClient(server) as replay:
            replay.http.cookies.set(SESSION_COOKIE, old_cookie, path="/console")
            assert (await replay.get("/console")).url.path == "/console/login"
    async with ConsoleClient(server) as fresh:
        assert (await fresh.sign_in(email)).status_code == 401
        assert (await fresh.sign_in(email, new_password)).url.path == "/console"


async def test_sign_in_is_throttled_per_email(server: Server) -> None:
    limit = server.services.settings.login_failures_per_email
    email = unique_email()
    await make_person(server, email)
    for attempt in range(limit):  # each guess from another address
        async with ConsoleClient(server, headers=from_address(f"198.51.100.{attempt}")) as browser:
            wrong = await browser.sign_in(email, "wrong password!")
            assert wrong.status_code == 401
            assert "Incorrect email or password." in wrong.text
    # The right password no longer helps while the window lasts, from any address ...
    async with ConsoleClient(server, headers=from_address("198.51.100.99")) as browser:
        blocked = await browser.sign_in(email)
        assert blocked.status_code == 429
        assert "Too many failed sign-ins. Try again in 15 minutes." in blocked.text
        assert SESSION_COOKIE not in browser.http.cookies
        # ... while other people sign in as usual.
        other = unique_email()
        await make_person(server, other)
        assert (await browser.sign_in(other)).url.path == "/console"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Requests come through a trusted proxy on loopback, so a test can speak from any address.
    return settings.model_copy(
        update={"trusted_proxies": ("127.0.0.1",), "login_failures_per_address": 3}
    )


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_sign_in_is_throttled_per_address(server: Server) -> None:
    people = [unique_email() for _ in range(4)]
    for email in people:
        await make_person(server, email)
    async with ConsoleClient(server, headers=from_address("203.0.113.7")) as browser:
        for email in people[:3]:
            assert (await browser.sign_in(email, "wrong password!")).status_code == 401
        blocked = await browser.sign_in(people[3])
        assert blocked.status_code == 429
    async with ConsoleClient(server, headers=from_address("203.0.113.8")) as elsewhere:
        assert (await elsewhere.sign_in(people[3])).url.path == "/console"


async def test_cookies_and_headers(server: Server) -> None:
    email = unique_email()
    await make_person(server, email)
    async with ConsoleClient(server) as browser:
        login = await browser.get("/console/login")
        csp = login.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert login.headers["x-frame-options"] == "DENY"
        signed = await browser.http.post(
            "/console/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(login.text)},
            follow_redirects=False,
        )
        cookie = session_cookie(signed)
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be lost
    # Behind a trusted proxy that terminates TLS, the cookies are Secure (httpx keeps them off
    # plain http, so the test hands the anchor cookie back itself, as the proxy's client would).
    behind_tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=behind_tls) as http:
        login = await http.get("/console/login")
        anchor = login.headers["set-cookie"]
        assert "Secure" in anchor
        signed = await http.post(
            "/console/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(login.text)},
            headers={"Cookie": anchor.split(";", 1)[0]},
        )
        assert "Secure" in session_cookie(signed)


def session_cookie(response: httpx.Response) -> str:
    cookies = response.headers.get_list("set-cookie")
    found = [c for c in cookies if c.startswith(f"{SESSION_COOKIE}=")]
    assert len(found) == 1, cookies
    return found[0]


async def test_only_console_paths_are_followed_after_sign_in(server: Server) -> None:
    email = unique_email()
    await make_person(server, email)
    for target in ("https://evil.example/", "//evil.example/console", "/v1/credits"):
        async with ConsoleClient(server) as browser:
            page = await browser.submit(
                "/console/login",
                "/console/login",
                {"email": email, "password": PASSWORD, "next": target},
            )
            assert page.url.path == "/console"
            assert page.url.host == "127.0.0.1"


async def test_api_keys_and_console_sessions_do_not_mix(server: Server) -> None:
    client, _ = await signed_in(server)
    account = await server.account()
    async with client:
        # A session cookie is no API credential ...
        cookie = client.http.cookies[SESSION_COOKIE]
        async with httpx.AsyncClient(
            base_url=server.base_url, cookies={SESSION_COOKIE: cookie}
        ) as http:
            credits = await http.get("/v1/credits")
        assert credits.status_code == 401
        assert credits.json()["error"]["code"] == "invalid_api_key"
    # ... and an API key opens no page.
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/console", headers=account.headers)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/login")


async def test_a_disabled_user_or_banned_account_cannot_sign_in(server: Server) -> None:
    from imagegate.billing.service import set_banned
    from imagegate.users.service import set_status

    banned = await make_person(server, unique_email())
    disabled = await make_person(server, unique_email())
    async with server.services.db.transaction() as session:
        await set_banned(session, banned.account_id, True)
        await set_status(session, disabled.user_id, "disabled")
        await create_key(session, server.services.hasher, banned.account_id, "k", 0.0)
    async with ConsoleClient(server) as browser:
        page = await browser.sign_in(banned.email)
        assert page.status_code == 403
        assert "This account has been banned." in page.text
        page = await browser.sign_in(disabled.email)
        assert page.status_code == 403
        assert "This user has been disabled." in page.text
        # A wrong password says nothing about either.
        page = await browser.sign_in(banned.email, "wrong password!")
        assert "Incorrect email or password." in page.text


async def test_a_nul_character_anywhere_is_a_readable_refusal(server: Server) -> None:
    operator = await make_person(server, unique_email(), role="operator")
    async with ConsoleClient(server) as browser:
        for data in ({"email": "a\x00@example.com"}, {"password": "x\x00y"}):
            page = await browser.submit(
                "/console/login", "/console/login", {"email": "a@b.c", "password": "p", **data}
            )
            assert page.status_code == 400
            assert "not allowed (NUL)" in page.text
        page = await browser.submit(
            "/console/signup",
            "/console/signup",
            {"email": "a\x00@example.com", "password": PASSWORD, "confirm": PASSWORD},
        )
        assert page.status_code == 400
        assert (await browser.sign_in(operator.email)).url.path == "/console"
        for path in (
            "/console/admin/accounts/%00",
            "/console/admin/accounts?q=%00",
            "/console/keys/%00",
            "/console/tasks/%00",
            "/console/tasks?cursor=%00",
            "/console/billing?before=%00",
        ):
            page = await browser.get(path)
            assert page.status_code == 400, path
            assert "not allowed (NUL)" in page.text
        page = await browser.submit(
            f"/console/admin/accounts/{operator.account_id}",
            f"/console/admin/accounts/{operator.account_id}/adjust",
            {"amount": "5", "reason": "nul\x00"},
        )
        assert page.status_code == 400


async def test_guesses_sent_in_parallel_are_counted_before_they_are_checked(
    server: Server,
) -> None:
    limit = server.services.settings.login_failures_per_email
    email = unique_email()
    await make_person(server, email)

    async def guess(n: int) -> int:
        async with ConsoleClient(server, headers=from_address(f"192.0.2.{n}")) as browser:
            return (await browser.sign_in(email, f"wrong guess {n}")).status_code

    answers = await asyncio.gather(*(guess(n) for n in range(4 * limit)))
    assert answers.count(401) == limit  # only this many passwords were even checked
    assert answers.count(429) == 3 * limit


async def test_only_the_newest_password_link_works(server: Server) -> None:
    person = await make_person(server, unique_email())
    async with server.services.db.transaction() as session:
        first = await reset_password(session, person.user_id, server.clock.now())
        second = await reset_password(session, person.user_id, server.clock.now())
    async with ConsoleClient(server) as browser:
        stale = await browser.get(f"/console/set-password/{first}")
        assert "This link is not valid or was already used." in stale.text
        new = "the newest passphrase"
        path = f"/console/set-password/{second}"
        done = await browser.submit(path, path, {"password": new, "confirm": new})
        assert done.url.path == "/console"
    # A link handed out before a password change stops working with the change.
    async with server.services.db.transaction() as session:
        leaked = await issue_link(session, "password", server.clock.now(), user_id=person.user_id)
    async with ConsoleClient(server) as owner:
        await owner.sign_in(person.email, new)
        changed = await owner.submit(
            "/console/password",
            "/console/password",
            {"current": new, "password": "an even newer one", "confirm": "an even newer one"},
        )
        assert changed.url.path == "/console"
    async with ConsoleClient(server) as attacker:
        page = await attacker.get(f"/console/set-password/{leaked}")
        assert "This link is not valid or was already used." in page.text
