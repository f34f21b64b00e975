"""Redemption codes in the console: operators make batches on the Codes page (shown once, as a
page or a CSV file), people redeem them on Billing, once, however many try at the same moment;
bad codes get a clear answer and guessing is throttled per account and per address."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from html import unescape

import httpx
import pytest
from playwright.async_api import Page, expect

from console_support import ConsoleClient, Person, chromium, csrf_of, make_person, screenshot
from harness import Server, wait_for
from imagegate.billing import codes
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.console.web import SESSION_COOKIE
from imagegate.users import service as users
from processes import imagegate_process, responds

CODES = "/console/admin/codes"
BILLING = "/console/billing"
REDEEM = "/console/billing/redeem"
TEXTAREA = re.compile(r'<textarea id="new-codes"[^>]*>([^<]*)</textarea>')
USED = "This code was already used."
UNKNOWN = "No such code. Check it and try again."
TOO_MANY = "Too many redemption attempts. Try again in 15 minutes."
LINK = re.compile(r"(http://\S+/console/set-password/[A-Za-z0-9_\-]+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Small limits, and a trusted proxy on loopback so a test can speak from any address.
    return settings.model_copy(
        update={
            "trusted_proxies": ("127.0.0.1",),
            "redeem_attempts_per_account": 3,
            "redeem_attempts_per_address": 5,
        }
    )


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def unique_email(name: str = "p") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


async def browsers(
    server: Server, account_ids: list[str], addresses: list[str] | None = None
) -> list[ConsoleClient]:
    """A signed-in browser per account id (a user each; sessions made as sign-in makes them)."""
    now = server.clock.now()
    tokens = []
    async with server.services.db.transaction() as session:
        for account_id in account_ids:
            user = await users.create_user(session, account_id, unique_email(), "member", now)
            tokens.append(await users.start_session(session, user.id, now))
    clients = []
    for i, token in enumerate(tokens):
        headers = from_address(addresses[i]) if addresses else None
        client = ConsoleClient(server, headers=headers)
        client.http.cookies.set(SESSION_COOKIE, token, path="/console")
        clients.append(client)
    return clients


async def new_accounts(server: Server, count: int, credits: int = 10) -> list[str]:
    async with server.services.db.transaction() as session:
        return [
            (await billing.create_account(session, "redeemer", credits, server.clock.now())).id
            for _ in range(count)
        ]


async def batch(server: Server, credits: int = 500, count: int = 3, **options: str) -> list[str]:
    now = server.clock.now()
    spec = codes.parse_batch(credits, count, options.get("expires", ""), "", now)
    async with server.services.db.transaction() as session:
        return (await codes.create_batch(session, spec, now)).codes


async def ledger(server: Server, account_id: str) -> tuple[int, int]:
    async with server.services.db.sessions() as session:
        return (
            await billing.balance(session, account_id),
            await billing.ledger_sum(session, account_id),
        )


async def redeem(browser: ConsoleClient, code: str) -> httpx.Response:
    return await browser.submit(BILLING, REDEEM, {"code": code})


def redeemed(page: httpx.Response, credits: int = 500) -> bool:
    return page.url.path == BILLING and f"Code redeemed: {credits} credits added." in page.text


def refused(page: httpx.Response, status: int, message: str) -> bool:
    return (
        page.status_code == status
        and f'<p id="redeem-error" class="error" role="alert">{message}</p>' in page.text
    )


async def signed_in(server: Server, person: Person, address: str | None = None) -> ConsoleClient:
    client = ConsoleClient(server, headers=from_address(address) if address else None)
    page = await client.sign_in(person.email)
    assert page.url.path == "/console", page.text
    return client


# Redeeming


async def test_fifty_accounts_redeem_one_code_at_once_and_one_is_credited(server: Server) -> None:
    accounts = await new_accounts(server, 50)
    addresses = [f"198.51.100.{i}" for i in range(50)]
    clients = await browsers(server, accounts, addresses)
    code = (await batch(server, count=1))[0]
    try:
        pages = await asyncio.gather(*(redeem(client, code) for client in clients))
    finally:
        await asyncio.gather(*(client.http.aclose() for client in clients))
    winners = [i for i, page in enumerate(pages) if redeemed(page)]
    assert len(winners) == 1
    assert all(refused(page, 400, USED) for i, page in enumerate(pages) if i != winners[0])
    for i, account_id in enumerate(accounts):
        expected = 510 if i == winners[0] else 10
        assert await ledger(server, account_id) == (expected, expected)


async def test_fifty_browsers_of_one_account_redeem_one_code_once(server: Server) -> None:
    (account_id,) = await new_accounts(server, 1, credits=0)
    clients = await browsers(server, [account_id] * 50, [f"203.0.113.{i}" for i in range(50)])
    code = (await batch(server, credits=250, count=1))[0]
    try:
        pages = await asyncio.gather(*(redeem(client, code) for client in clients))
    finally:
        await asyncio.gather(*(client.http.aclose() for client in clients))
    assert sum(redeemed(page, 250) for page in pages) == 1
    # The others were told the code is used, until the account's failures hit the limit.
    others = [page for page in pages if not redeemed(page, 250)]
    assert all(refused(page, 400, USED) or refused(page, 429, TOO_MANY) for page in others)
    assert await ledger(server, account_id) == (250, 250)
    async with server.services.db.sessions() as session:
        entries = await billing.recent_entries(session, account_id)
    assert [(e.kind, e.amount, e.source) for e in entries] == [("top_up", 250, "code")]


async def test_a_redeemed_code_shows_in_the_ledger_and_its_csv(server: Server) -> None:
    person = await make_person(server, unique_email(), credits=40)
    code = (await batch(server))[0]
    async with await signed_in(server, person) as browser:
        done = await redeem(browser, f"  {code.lower().replace('-', ' ')} ")
        assert redeemed(done)
        assert '<div class="value" data-testid="balance">540 credits</div>' in done.text
        note = f"Redemption code …{code[-4:]} (batch "
        assert note in done.text
        exported = await browser.get("/console/billing/ledger.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    last = rows[-1]
    body = codes.normalise(code) or ""
    assert (last["kind"], last["amount"], last["balance_after"]) == ("top_up", "500", "540")
    assert (last["source"], last["reference"]) == ("code", codes.code_id(body))
    assert last["note"].startswith(note)
    assert code not in exported.text
    assert body not in exported.text


async def test_used_and_unknown_codes_say_so_and_credit_nothing(server: Server) -> None:
    person = await make_person(server, unique_email(), credits=40)
    other = await make_person(server, unique_email(), credits=0)
    used, _, _ = await batch(server)
    async with await signed_in(server, other, "192.0.2.1") as browser:
        assert redeemed(await redeem(browser, used))
    async with await signed_in(server, person, "192.0.2.2") as browser:
        page = await redeem(browser, used)
        assert refused(page, 400, USED)
        assert f'value="{used}"' in page.text  # the field keeps what was typed
        assert 'aria-invalid="true"' in page.text
        unknown = codes.display(codes.new_code())
        assert refused(await redeem(browser, unknown), 400, UNKNOWN)
        assert refused(await redeem(browser, "hello"), 400, UNKNOWN)
    assert await ledger(server, person.account_id) == (40, 40)


async def test_an_expired_code_says_when_it_expired(server: Server) -> None:
    person = await make_person(server, unique_email(), credits=0)
    code = (await batch(server, expires="2099-06-01T00:00:00Z"))[0]
    expires_at = codes.parse_batch(1, 1, "2099-06-01T00:00:00Z", "", 0).expires_at
    assert expires_at is not None
    server.clock.advance(expires_at - server.clock.now())
    async with await signed_in(server, person) as browser:
        page = await redeem(browser, code)
        assert refused(page, 400, "This code expired on 2099-06-01.")
        assert refused(await redeem(browser, "   "), 400, "Enter a redemption code.")
    assert await ledger(server, person.account_id) == (0, 0)


# Throttling


async def test_redemption_attempts_are_throttled_per_account(server: Server) -> None:
    person = await make_person(server, unique_email(), credits=0)
    code = (await batch(server))[0]
    for i in range(3):  # each guess from another address
        async with await signed_in(server, person, f"198.51.100.{i}") as browser:
            assert refused(await redeem(browser, f"IG-NOPE-{i}"), 400, UNKNOWN)
    async with await signed_in(server, person, "198.51.100.99") as browser:
        blocked = await redeem(browser, code)  # a good code does not help while it lasts
        assert refused(blocked, 429, TOO_MANY)
        assert f'value="{code}"' in blocked.text
    assert await ledger(server, person.account_id) == (0, 0)
    someone = await make_person(server, unique_email(), credits=0)
    async with await signed_in(server, someone, "198.51.100.99") as browser:
        assert redeemed(await redeem(browser, code))  # nor does it stop other accounts


async def test_guesses_sent_in_parallel_are_counted_before_they_are_looked_up(
    server: Server,
) -> None:
    person = await make_person(server, unique_email(), credits=0)
    async with await signed_in(server, person, "198.51.100.77") as browser:
        answers = await asyncio.gather(*(redeem(browser, f"IG-NOPE-{i}") for i in range(12)))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(400) == 3  # the account's limit in this module: no more were tried
    assert statuses.count(429) == 9


async def test_redemption_attempts_are_throttled_per_address(server: Server) -> None:
    code = (await batch(server))[0]
    people = [await make_person(server, unique_email(), credits=0) for _ in range(6)]
    for person in people[:5]:  # one failure per account, all from one address
        async with await signed_in(server, person, "203.0.113.50") as browser:
            assert refused(await redeem(browser, "IG-WRONG"), 400, UNKNOWN)
    async with await signed_in(server, people[5], "203.0.113.50") as browser:
        assert refused(await redeem(browser, code), 429, TOO_MANY)
    async with await signed_in(server, people[5], "203.0.113.51") as browser:
        assert redeemed(await redeem(browser, code))


# The operators' page


def shown_codes(html: str) -> list[str]:
    found = TEXTAREA.search(html)
    assert found, "the page shows no codes"
    return unescape(found.group(1)).split()


async def create(browser: ConsoleClient, **fields: str) -> httpx.Response:
    data = {"credits": "500", "count": "4", "expires": "", "note": "", "deliver": "page", **fields}
    return await browser.submit(CODES, CODES, data)


async def test_an_operator_makes_a_batch_and_its_codes_work(server: Server) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    member = await make_person(server, unique_email("member"), credits=5)
    async with await signed_in(server, operator) as admin:
        page = await admin.get(CODES)
        assert page.status_code == 200
        assert '<a href="/console/admin/codes" aria-current="page">Codes</a>' in page.text
        assert "No batches yet." in page.text
        made = await create(admin, note="launch party", expires="2099-01-01T00:00")
        assert made.status_code == 201
        assert made.headers["cache-control"] == "no-store"
        shown = shown_codes(made.text)
        assert len(shown) == 4
        assert len(set(shown)) == 4
        assert "they are not shown again" in made.text
        batch_id = re.search(r"<dt>Batch</dt><dd><code>([0-9a-f-]+)</code>", made.text)
        assert batch_id
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', made.text)
        assert csrf
        download = await admin.http.post(
            f"{CODES}/{batch_id[1]}/codes.csv",
            data={"csrf_token": csrf[1], "codes": "\r\n".join(shown)},
        )
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        assert "attachment" in download.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert [r["code"] for r in rows] == shown
        assert {(r["credits"], r["expires_at"], r["batch_id"]) for r in rows} == {
            ("500", "2099-01-01T00:00:00Z", batch_id[1])
        }
        forged = await admin.http.post(
            f"{CODES}/{batch_id[1]}/codes.csv",
            data={"csrf_token": csrf[1], "codes": codes.display(codes.new_code())},
        )
        assert forged.status_code == 400
        assert "These are not the codes of this batch." in forged.text

    async with await signed_in(server, member) as browser:
        assert redeemed(await redeem(browser, shown[2]))
        assert refused(await redeem(browser, shown[2]), 400, USED)
    assert await ledger(server, member.account_id) == (505, 505)

    async with await signed_in(server, operator) as admin:
        listed = await admin.get(CODES)
        row = re.search(rf"<code>{batch_id[1]}</code>.*?</tr>", listed.text, re.S)
        assert row
        cells = re.findall(r'<td class="num">(\d+)</td>', row[0])
        assert cells == ["500", "4", "1"]  # credits each, codes, redeemed
        status = await admin.get(f"{CODES}/{batch_id[1]}/status.csv")
    assert status.status_code == 200
    assert "attachment" in status.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(status.text)))
    assert sorted(r["hint"] for r in lines) == sorted(c[-4:] for c in shown)
    used = [r for r in lines if r["redeemed_at"]]
    assert [(r["hint"], r["account_id"]) for r in used] == [(shown[2][-4:], member.account_id)]
    assert not any(c in status.text or c.replace("-", "")[2:] in status.text for c in shown)


async def test_create_and_download_csv_and_a_form_sent_twice(server: Server) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    async with await signed_in(server, operator) as admin:
        page = await admin.get(CODES)
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        data = {**hidden, "credits": "7", "count": "3", "note": "csv", "deliver": "csv"}
        first = await admin.http.post(CODES, data=data)
        assert first.status_code == 200
        assert first.headers["content-disposition"].startswith('attachment; filename="imagegate')
        rows = list(csv.DictReader(io.StringIO(first.text)))
        assert len(rows) == 3
        assert {r["credits"] for r in rows} == {"7"}
        again = await admin.http.post(CODES, data=data)  # a reload or a double click
        assert again.url.path == CODES
        assert "That form was already sent" in again.text
    async with server.services.db.sessions() as session:
        assert [b.count for b in await codes.list_batches(session)] == [3]
    member = await make_person(server, unique_email(), credits=0)
    async with await signed_in(server, member) as browser:
        assert redeemed(await redeem(browser, rows[0]["code"]), 7)


async def test_the_create_form_says_what_is_wrong(server: Server) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    async with await signed_in(server, operator) as admin:
        for fields, message in [
            ({"credits": "0"}, "Credits per code must be a whole number from 1 to 1000000000."),
            ({"count": "10001"}, "The number of codes must be a whole number from 1 to 10000."),
            ({"expires": "2001-01-01T00:00"}, "The expiry must be in the future."),
        ]:
            page = await create(admin, note="kept", **fields)
            assert page.status_code == 400
            assert f'<p class="error" role="alert">{message}</p>' in page.text
            assert 'value="kept"' in page.text
    async with server.services.db.sessions() as session:
        assert await codes.list_batches(session) == []


async def test_members_get_404_and_posts_need_the_form_token(server: Server) -> None:
    member = await make_person(server, unique_email(), credits=0)
    operator = await make_person(server, unique_email("op"), role="operator")
    code = (await batch(server))[0]
    async with server.services.db.sessions() as session:
        (listed,) = await codes.list_batches(session)
    async with await signed_in(server, member) as browser:
        assert "/console/admin/codes" not in (await browser.get(BILLING)).text  # no nav entry
        for path in (CODES, f"{CODES}/{listed.id}/status.csv"):
            assert (await browser.get(path)).status_code == 404
        token = re.search(
            r'name="csrf_token" value="([0-9a-f]+)"', (await browser.get(BILLING)).text
        )
        assert token
        for path in (CODES, f"{CODES}/{listed.id}/codes.csv"):
            data = {"csrf_token": token[1], "credits": "5", "count": "1", "codes": code}
            assert (await browser.http.post(path, data=data)).status_code == 404
        assert (await browser.http.post(REDEEM, data={"code": code})).status_code == 403
    async with await signed_in(server, operator) as admin:
        assert (await admin.get(f"{CODES}/no-such-batch/status.csv")).status_code == 404
        for path in (CODES, f"{CODES}/{listed.id}/codes.csv"):
            data = {"credits": "5", "count": "1", "codes": code}
            assert (await admin.http.post(path, data=data)).status_code == 403
    async with server.services.db.sessions() as session:
        assert len(await codes.list_batches(session)) == 1
    assert await ledger(server, member.account_id) == (0, 0)


async def test_no_code_reaches_the_log(settings: Settings) -> None:
    """A real `imagegate serve` with its access log on: codes made, downloaded and redeemed
    (and mistyped) through the console never appear in it."""
    log_dir = settings.data_dir.parent / "logs"
    async with imagegate_process(
        settings, "serve", "--port", str(settings.port), SIGNUP="open", ACCESS_LOG="true"
    ) as process:
        base = f"http://127.0.0.1:{settings.port}"
        async with ConsoleClient(base) as operator, ConsoleClient(base) as member:
            await wait_for(lambda: responds(operator.http), within=30)
            banner = "".join(p.read_text() for p in log_dir.iterdir())
            link = LINK.search(banner)
            assert link
            password = "operator passphrase 1"
            await operator.submit(link[1], link[1], {"password": password, "confirm": password})
            made = await create(operator, count="3")
            shown = shown_codes(made.text)
            batch_id = re.search(r"<dt>Batch</dt><dd><code>([0-9a-f-]+)</code>", made.text)
            assert batch_id
            csv_path = f"{CODES}/{batch_id[1]}/codes.csv"
            await operator.http.post(
                csv_path, data={"csrf_token": csrf_of(made.text), "codes": "\n".join(shown)}
            )
            downloaded = await create(operator, count="2", deliver="csv")
            shown += [row["code"] for row in csv.DictReader(io.StringIO(downloaded.text))]
            await member.sign_up("member@example.com")
            assert redeemed(await redeem(member, shown[0]))
            assert refused(await redeem(member, shown[0]), 400, USED)
            mistyped = shown[1][:-1] + ("Y" if shown[1].endswith("X") else "X")
            assert refused(await redeem(member, mistyped), 400, UNKNOWN)
            assert redeemed(await redeem(member, shown[4].lower()))
        process.terminate()
        await process.wait()
    log = "".join(p.read_text() for p in log_dir.iterdir())
    assert "POST /console/billing/redeem" in log  # the access log was on
    for code in [*shown, mistyped]:
        body = code[3:].replace("-", "")
        assert code not in log
        assert body not in log
        assert code.lower() not in log


# In a real browser


async def test_an_operator_makes_codes_and_a_member_redeems_one_in_chromium(
    server: Server,
) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    member = await make_person(server, unique_email("member"), credits=20)
    async with chromium() as browser:
        admin = await (await browser.new_context(base_url=server.base_url)).new_page()
        violations = watch_csp(admin)
        await sign_in(admin, operator)
        await admin.get_by_role("link", name="Codes").click()
        await expect(admin.get_by_role("heading", name="Redemption codes")).to_be_visible()
        await admin.get_by_label("Credits per code").fill("500")
        await admin.get_by_label("Number of codes").fill("5")
        await admin.get_by_label("Note").fill("spring promo")
        await screenshot(admin, "codes-admin")
        await admin.get_by_role("button", name="Create codes", exact=True).click()
        shown = admin.get_by_label("Codes, one per line")
        await expect(shown).to_be_visible()
        await expect(admin.get_by_role("button", name="Download CSV")).to_be_visible()
        await screenshot(admin, "codes-created")
        code = (await shown.input_value()).split()[0]
        async with admin.expect_download() as downloading:
            await admin.get_by_role("button", name="Download CSV").click()
        saved = await (await downloading.value).path()
        assert code in saved.read_text()

        page = await (await browser.new_context(base_url=server.base_url)).new_page()
        violations += watch_csp(page)
        await sign_in(page, member)
        await page.get_by_role("link", name="Billing").click()
        await page.get_by_label("Redemption code").fill(code.lower())
        await page.get_by_role("button", name="Redeem").click()
        await expect(page.get_by_role("status")).to_have_text("Code redeemed: 500 credits added.")
        await expect(page.get_by_test_id("balance")).to_have_text("520 credits")
        entry = page.get_by_role("row").filter(has_text=f"Redemption code …{code[-4:]}")
        await expect(entry).to_contain_text("+500")
        await expect(entry).to_contain_text("(batch spring promo)")
        await screenshot(page, "billing-redeem")

        await page.get_by_label("Redemption code").fill(code)
        await page.get_by_role("button", name="Redeem").click()
        await expect(page.get_by_role("alert")).to_have_text(USED)

        await admin.get_by_role("link", name="Done").click()
        row = admin.get_by_role("row").filter(has_text="spring promo")
        await expect(row.get_by_role("cell", name="1", exact=True)).to_be_visible()
    assert violations == []
    assert await ledger(server, member.account_id) == (520, 520)


def watch_csp(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security" in m.text else 0)
    return found


async def sign_in(page: Page, person: Person) -> None:
    await page.goto("/console/login")
    await page.get_by_label("Email").fill(person.email)
    await page.get_by_label("Password").fill(person.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
