"""The operator pages: accounts (search, adjust, ban, users, invitations) and the system page,
as an operator uses them and as the affected people and API clients then see it."""

from __future__ import annotations

import json
import re
import uuid
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Dialog, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from console_support import (
    PASSWORD,
    ConsoleClient,
    Person,
    chromium,
    csrf_of,
    make_person,
    screenshot,
)
from harness import BACKEND, Server, running_server, wait_for
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.db.models import Callback, CallbackAttempt, Job, ProviderCircuit, Task
from imagegate.keys.service import create_key
from imagegate.users import service as users
from upstream_fakes import FakeIdeogram, running, server_for, upstream_settings

LINK = re.compile(r'<code id="new-link" class="secret">([^<]+)</code>')


def unique_email(name: str = "p") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


async def signed_in(server: Server, person: Person) -> ConsoleClient:
    client = ConsoleClient(server)
    page = await client.sign_in(person.email)
    assert page.url.path == "/console", page.text
    return client


async def operator_and_member(server: Server, credits: int = 100) -> tuple[Person, Person]:
    operator = await make_person(server, unique_email("op"), role="operator")
    member = await make_person(server, unique_email("member"), credits=credits)
    return operator, member


async def api_key(server: Server, account_id: str) -> dict[str, str]:
    async with server.services.db.transaction() as session:
        _key, plaintext = await create_key(
            session, server.services.hasher, account_id, "ci", server.clock.now()
        )
    return {"Authorization": f"Bearer {plaintext}"}


async def credits_by_api(server: Server, headers: dict[str, str]) -> httpx.Response:
    return await server.http.get("/v1/credits", headers=headers)


def account_url(account_id: str) -> str:
    return f"/console/admin/accounts/{account_id}"


def shown_link(html: str) -> str:
    found = LINK.search(html)
    assert found, "the page shows no one-time link"
    return unescape(found.group(1))


async def test_members_get_404_on_every_operator_page(server: Server) -> None:
    operator, member = await operator_and_member(server)
    pages = [
        "/console/admin",
        "/console/admin/accounts",
        "/console/admin/accounts?q=op",
        account_url(operator.account_id),
        account_url(operator.account_id) + "/ban",
        "/console/admin/system",
    ]
    async with await signed_in(server, member) as browser:
        for path in pages:
            page = await browser.get(path)
            assert page.status_code == 404, path
            assert "Not found" in page.text
        token = csrf_of((await browser.get("/console")).text)
        for action in ("adjust", "ban", "invite"):
            posted = await browser.http.post(
                f"{account_url(member.account_id)}/{action}",
                data={"csrf_token": token, "amount": "1000", "reason": "me", "role": "operator"},
            )
            assert posted.status_code == 404, action
    async with server.services.db.sessions() as session:
        assert await billing.balance(session, member.account_id) == 100
        assert not (await billing.get_account(session, member.account_id)).banned
    async with await signed_in(server, operator) as browser:
        assert (await browser.get(account_url(str(uuid.uuid4())))).status_code == 404
        assert (await browser.get("/console/admin/accounts")).status_code == 200


async def test_search_finds_an_account_by_a_users_email_name_or_id(server: Server) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    async with server.services.db.transaction() as session:
        account = await billing.create_account(session, "Analytical Engines", 42, 0.0)
    grace = await make_person(server, unique_email("grace"), account_id=account.id)
    async with await signed_in(server, operator) as browser:
        for query in (grace.email.upper()[:14], "analytical eng", account.id[:8]):
            page = await browser.get("/console/admin/accounts", params={"q": query})
            assert page.status_code == 200
            assert f'href="{account_url(account.id)}">Analytical Engines</a>' in page.text
            assert account_url(operator.account_id) not in page.text  # no other account matched
        nothing = await browser.get("/console/admin/accounts", params={"q": "%"})
        assert "No account matches" in nothing.text  # a wildcard is just a character
        everyone = await browser.get("/console/admin/accounts")
        assert "Analytical Engines" in everyone.text
        assert account_url(operator.account_id) in everyone.text


async def test_an_adjustment_reaches_the_member_the_api_and_the_ledger(server: Server) -> None:
    operator, member = await operator_and_member(server, credits=100)
    headers = await api_key(server, member.account_id)
    async with await signed_in(server, operator) as op, await signed_in(server, member) as user:
        assert "100 credits" in (await user.get("/console")).text
        url = account_url(member.account_id)
        page = await op.submit(
            url, f"{url}/adjust", {"amount": "+250", "reason": "goodwill for the outage"}
        )
        assert page.status_code == 200
        assert page.url.path == url
        assert "Adjusted by +250 credits. The balance is 350." in page.text
        assert "goodwill for the outage" in page.text

        assert "350 credits" in (await user.get("/console")).text
        assert (await credits_by_api(server, headers)).json()["data"] == {"credits": 350}
        async with server.services.db.sessions() as session:
            assert await billing.ledger_sum(session, member.account_id) == 350
            entry = (await billing.recent_entries(session, member.account_id, 1))[0]
        assert (entry.kind, entry.amount, entry.note) == (
            "adjustment",
            250,
            "goodwill for the outage",
        )


async def test_a_refused_adjustment_says_why_and_changes_nothing(server: Server) -> None:
    operator, member = await operator_and_member(server, credits=100)
    url = account_url(member.account_id)
    async with await signed_in(server, operator) as op:
        for data, message in [
            ({"amount": "-500", "reason": "chargeback"}, "would make it negative"),
            ({"amount": "ten", "reason": "typo"}, "Enter a whole number of credits"),
            ({"amount": "0", "reason": "nothing"}, "other than 0"),
            ({"amount": "25", "reason": "  "}, "Give a reason"),
        ]:
            page = await op.submit(url, f"{url}/adjust", data)
            assert page.status_code == 400, data
            assert message in page.text
            assert f'value="{data["amount"]}"' in page.text  # the form keeps what was typed
    async with server.services.db.sessions() as session:
        assert await billing.balance(session, member.account_id) == 100
        assert await billing.ledger_sum(session, member.account_id) == 100
        entries = await billing.recent_entries(session, member.account_id)
    assert [e.kind for e in entries] == ["top_up"]  # only the opening balance


async def test_a_ban_signs_the_member_out_and_refuses_the_api_until_lifted(
    server: Server,
) -> None:
    operator, member = await operator_and_member(server)
    headers = await api_key(server, member.account_id)
    url = account_url(member.account_id)
    async with await signed_in(server, operator) as op, await signed_in(server, member) as user:
        confirm = await op.get(f"{url}/ban")
        assert "Ban account" in confirm.text
        assert "ends the console sessions of its 1 user" in confirm.text
        banned = await op.submit(f"{url}/ban", f"{url}/ban", {})
        assert "Account banned" in banned.text
        assert "Unban account" in banned.text

        assert (await user.get("/console")).url.path == "/console/login"
        refused = await user.sign_in(member.email)
        assert refused.status_code == 403
        assert "This account has been banned." in refused.text
        answer = await credits_by_api(server, headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_api_key"

        lifted = await op.submit(url, f"{url}/unban", {})
        assert "Account unbanned" in lifted.text
        # The ban ended the session for good; signing in works again.
        assert (await user.get("/console")).url.path == "/console/login"
        assert (await user.sign_in(member.email)).url.path == "/console"
        assert (await credits_by_api(server, headers)).status_code == 200


async def test_an_operator_cannot_ban_their_own_account_or_disable_themselves(
    server: Server,
) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    url = account_url(operator.account_id)
    async with await signed_in(server, operator) as op:
        refused = await op.submit(url, f"{url}/ban", {})
        assert refused.status_code == 400
        assert "You cannot ban the account you are signed in with." in refused.text
        path = f"{url}/users/{operator.user_id}/disable"
        refused = await op.submit(url, path, {})
        assert refused.status_code == 400
        assert "You cannot disable yourself." in refused.text
        assert (await op.get(url)).url.path == url  # still signed in


async def test_disabling_a_user_ends_their_session_and_enabling_lets_them_back(
    server: Server,
) -> None:
    operator, member = await operator_and_member(server)
    url = account_url(member.account_id)
    async with await signed_in(server, operator) as op, await signed_in(server, member) as user:
        page = await op.submit(url, f"{url}/users/{member.user_id}/disable", {})
        assert f"Disabled {member.email}: their sessions have ended." in page.text
        assert (await user.get("/console")).url.path == "/console/login"
        assert "This user has been disabled." in (await user.sign_in(member.email)).text

        page = await op.submit(url, f"{url}/users/{member.user_id}/enable", {})
        assert f"Enabled {member.email}" in page.text
        assert (await user.sign_in(member.email)).url.path == "/console"
        # A user of another account cannot be reached through this account's address.
        elsewhere = f"{account_url(operator.account_id)}/users/{member.user_id}/disable"
        assert (await op.submit(url, elsewhere, {})).status_code == 404


async def test_a_password_reset_from_the_console_ends_the_old_password_and_sessions(
    server: Server,
) -> None:
    operator, member = await operator_and_member(server)
    url = account_url(member.account_id)
    async with await signed_in(server, operator) as op, await signed_in(server, member) as user:
        page = await op.submit(url, f"{url}/users/{member.user_id}/password-link", {})
        assert f"Password link for {member.email}" in page.text
        link = shown_link(page.text)
        assert (await user.get("/console")).url.path == "/console/login"
        assert (await user.sign_in(member.email)).status_code == 401  # the old password is void
    assert link.startswith(f"{server.services.public_url}/console/set-password/")
    new_password = "a brand new passphrase"
    async with ConsoleClient(server) as person:
        path = urlsplit(link).path
        done = await person.submit(path, path, {"password": new_password, "confirm": new_password})
        assert done.url.path == "/console"
        assert "Your password is set." in done.text
    async with ConsoleClient(server) as again:
        assert (await again.sign_in(member.email, new_password)).url.path == "/console"


async def join_by_invitation(server: Server, link: str, email: str) -> httpx.Response:
    path = urlsplit(link).path + "?" + urlsplit(link).query
    async with ConsoleClient(server) as newcomer:
        form = await newcomer.get(path)
        assert form.status_code == 200
        invite = urlsplit(link).query.removeprefix("invite=")
        return await newcomer.submit(
            path,
            "/console/signup",
            {"email": email, "password": PASSWORD, "confirm": PASSWORD, "invite": invite},
        )


async def test_an_invite_link_signs_a_new_person_up_into_the_account(server: Server) -> None:
    operator, member = await operator_and_member(server)
    url = account_url(member.account_id)
    async with await signed_in(server, operator) as op:
        page = await op.submit(url, f"{url}/invite", {"role": "member"})
        assert "Invite link for a new member" in page.text
        link = shown_link(page.text)
    assert link.startswith(f"{server.services.public_url}/console/signup?invite=")
    email = unique_email("newcomer")
    joined = await join_by_invitation(server, link, email)
    assert joined.url.path == "/console"
    assert "100 credits" in joined.text  # the account's balance, not a new empty account
    async with server.services.db.sessions() as session:
        newcomer = await users.find_user(session, email)
    assert (newcomer.account_id, newcomer.role) == (member.account_id, "member")
    async with ConsoleClient(server) as late:
        spent = await late.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert "This link is not valid or was already used." in spent.text


async def test_invite_links_work_when_sign_up_is_by_invitation_only(settings: Settings) -> None:
    async with running_server(settings.model_copy(update={"signup": "invite"})) as server:
        operator, member = await operator_and_member(server)
        url = account_url(member.account_id)
        async with ConsoleClient(server) as stranger:
            closed = await stranger.get("/console/signup")
            assert "Sign-up on this server is by invitation." in closed.text
        async with await signed_in(server, operator) as op:
            link = shown_link((await op.submit(url, f"{url}/invite", {"role": "member"})).text)
        joined = await join_by_invitation(server, link, unique_email("invited"))
        assert joined.url.path == "/console"


async def failed_for_good(
    session: AsyncSession, now: float, kind: str, args: dict[str, Any], error: str
) -> None:
    """A job of the model's queue that failed its 5 attempts, on either engine."""
    if BACKEND == "sqlite":
        session.add(
            Job(queue="model:ideogram-v4", kind=kind, args=args, status="failed",
                run_at=now - 60, attempts=5, created_at=now - 120, last_error=error)
        )  # fmt: skip
        return
    defer = "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[CAST(ROW('model:ideogram-v4',"
    defer += (
        " :kind, 0, NULL, NULL, CAST(:args AS jsonb), NULL) AS procrastinate_job_to_defer_v1)]))"
    )
    job_id = await session.scalar(text(defer), {"kind": kind, "args": json.dumps(args)})
    failed = "UPDATE procrastinate_jobs SET status = 'failed', attempts = 5 WHERE id = :id"
    await session.execute(text(failed), {"id": job_id})
    note = "INSERT INTO job_errors (job_id, error) VALUES (:id, :error)"
    await session.execute(text(note), {"id": job_id, "error": error})


async def add_failures(server: Server) -> str:
    """A job waiting for later, a job that failed for good, a task whose callback keeps
    failing, and an open circuit of a provider no route uses; returns the task's id."""
    services, now = server.services, server.clock.now()
    task_id = str(uuid.uuid4())
    person = await make_person(server, unique_email("hooks"))
    async with services.db.transaction() as session:
        await services.queue.defer(session, "later", {}, queue="model:slow-lane", run_at=now + 3600)
        await failed_for_good(
            session, now, "run_task", {"task_id": task_id}, "RuntimeError('the upstream exploded')"
        )
        session.add(
            Task(id=task_id, account_id=person.account_id, key_id="k", model="ideogram-v4",
                 status="completed", input={}, price=28, created_at=now - 100)
        )  # fmt: skip
        await session.flush()
        session.add(
            Callback(task_id=task_id, url="https://hooks.example.net/secret-path?token=s3cret",
                     event="task.completed", status="pending", next_attempt_at=now + 180,
                     created_at=now - 90)
        )  # fmt: skip
        await session.flush()
        session.add(
            CallbackAttempt(task_id=task_id, number=1, attempted_at=now - 80, status_code=500,
                            error=None, next_attempt_at=now + 180)
        )  # fmt: skip
        session.add(ProviderCircuit(provider="ideogram", failures=5, opened_until=now + 30,
                                    updated_at=now))  # fmt: skip
    return task_id


async def test_the_system_page_shows_queues_failed_jobs_and_failing_callbacks(
    server: Server,
) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    task_id = await add_failures(server)
    async with await signed_in(server, operator) as op:
        page = await op.get("/console/admin/system")
    assert page.status_code == 200
    text = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))
    assert "model:slow-lane 1 0 0" in text  # waiting 1, due now 0, running 0
    assert "RuntimeError('the upstream exploded')" in text
    assert "run_task model:ideogram-v4 5" in text
    assert task_id in text
    assert "hooks.example.net retrying 1 HTTP 500" in text
    assert "s3cret" not in page.text  # only the receiver's host is shown
    assert "simulator closed 0 — 0 / no cap" in text
    assert "ideogram open 5" in text
    assert "on no route" in text


async def test_the_system_page_counts_calls_in_flight_against_the_cap(settings: Settings) -> None:
    async with running(FakeIdeogram(script=["hold"])) as fake:
        tuned = upstream_settings(settings, ideogram=fake, ideogram_max_in_flight=3)
        async with server_for(tuned, fake) as server:
            operator = await make_person(server, unique_email("op"), role="operator")
            customer = await server.account()
            assert (await server.create(customer)).status_code == 200
            await wait_for(lambda: _in_flight(server, 1))
            async with await signed_in(server, operator) as op:
                page = await op.get("/console/admin/system")
            assert re.search(r"ideogram</th>.*?1 / 3</td>", page.text, re.S)
            fake.release()
            await wait_for(lambda: _in_flight(server, 0))


async def _in_flight(server: Server, count: int) -> bool:
    models = await server.services.catalog.fresh()
    statuses = await server.services.providers.statuses(models.values())
    return [s.in_flight for s in statuses if s.name == "ideogram"] == [count]


async def test_an_operator_walks_the_account_and_system_pages_in_chromium(
    server: Server,
) -> None:
    operator, member = await operator_and_member(server)
    async with server.services.db.transaction() as session:
        await billing.top_up(session, member.account_id, 5, server.clock.now(), "welcome")
    async with chromium() as browser:
        page = await browser.new_page(base_url=server.base_url)
        violations = _watch_for_csp_violations(page)
        asked: list[str] = []

        async def accept(dialog: Dialog) -> None:
            asked.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await page.goto("/console/login")
        await page.get_by_label("Email").fill(operator.email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("link", name="Accounts").click()
        await page.get_by_label("Search accounts").fill(member.email)
        await page.get_by_role("button", name="Search").click()
        await screenshot(page, "admin-accounts")
        await page.get_by_role("link", name=member.email).click()
        await expect(page.get_by_role("heading", name=f"Account {member.email}")).to_be_visible()
        await screenshot(page, "admin-account")

        await page.get_by_label("Amount (credits)").fill("250")
        await page.get_by_label("Reason").fill("refund for a bad batch")
        await page.get_by_role("button", name="Adjust credits").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Adjusted by +250 credits. The balance is 355."
        )
        await expect(page.get_by_text("refund for a bad batch")).to_be_visible()

        await page.get_by_role("link", name="Ban this account…").click()
        await screenshot(page, "admin-ban")
        await page.get_by_role("button", name="Ban account").click()
        await expect(page.get_by_role("button", name="Unban account")).to_be_visible()
        await screenshot(page, "admin-account-banned")
        await page.get_by_role("button", name="Unban account").click()

        await page.get_by_label("Role of the new user").select_option("member")
        await page.get_by_role("button", name="Create invite link").click()
        await expect(
            page.get_by_role("heading", name="Invite link for a new member")
        ).to_be_visible()
        await expect(page.get_by_role("button", name="Copy link")).to_be_visible()
        await page.get_by_role("button", name=f"Reset password of {member.email}").click()
        await expect(page.get_by_text("/console/set-password/")).to_be_visible()
        assert asked[-1].startswith(f"Reset the password of {member.email}?")
        await screenshot(page, "admin-account-links")

        await add_failures(server)
        await page.get_by_role("link", name="System").click()
        await expect(page.get_by_role("heading", name="Providers")).to_be_visible()
        await expect(page.get_by_text("RuntimeError('the upstream exploded')")).to_be_visible()
        await screenshot(page, "admin-system")
        assert violations == []
    async with server.services.db.sessions() as session:
        assert await billing.balance(session, member.account_id) == 355
        assert not (await billing.get_account(session, member.account_id)).banned
        kinds = [e.kind for e in await billing.recent_entries(session, member.account_id)]
    assert kinds == ["adjustment", "top_up", "top_up"]


def _watch_for_csp_violations(page: Page) -> list[str]:
    """Console messages of blocked content: an inline style or script would show up here."""
    seen: list[str] = []
    page.on(
        "console",
        lambda message: (
            seen.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return seen
