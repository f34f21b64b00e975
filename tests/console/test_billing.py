"""The Billing page: the balance, the ledger with its running balance (across pages), the CSV
export, and credits spent per day, as a person sees them."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser

from console_support import ConsoleClient, make_person, screenshot
from console_support import chromium as open_chromium
from harness import Account, Server
from imagegate.billing import service as billing
from imagegate.console.billing import PAGE_SIZE
from imagegate.db.sql import SessionTx
from imagegate.keys.service import create_key

DAY = 86400
FAIL = "a cat [simulate:upstream_error]"


@dataclass
class Row:
    cells: list[str]
    links: list[str] = field(default_factory=list)


class Tables(HTMLParser):
    """The tables of a page: each a list of rows of cell texts, with the links in each row."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: list[list[Row]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append(Row([]))
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a" and self.tables and self.tables[-1]:
            self.tables[-1][-1].links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def headed(self, first_header: str, header: str) -> list[Row]:
        """The body rows of the table whose header row has ``header``."""
        for table in self.tables:
            if table and header in table[0].cells and table[0].cells[0] == first_header:
                return table[1:]
        raise AssertionError(f"no table with a {header!r} column")


def ledger_rows(html: str) -> list[Row]:
    return Tables(html).headed("Time", "Balance after")


def day_rows(html: str) -> dict[str, int]:
    rows = Tables(html).headed("Day (UTC)", "Credits spent")
    return {row.cells[0]: int(row.cells[1]) for row in rows}


async def api_key(server: Server, account_id: str) -> Account:
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, account_id, "console test", server.clock.now()
        )
    return Account(account_id, plaintext, key.id)


async def adjust(server: Server, account_id: str, amount: int, note: str, kind: str) -> None:
    async with server.services.db.transaction() as session:
        await billing.top_up(session, account_id, amount, server.clock.now(), note=note, kind=kind)


async def api_credits(server: Server, account: Account) -> int:
    response = await server.http.get("/v1/credits", headers=account.headers)
    assert response.status_code == 200, response.text
    credits: int = response.json()["data"]["credits"]
    return credits


async def test_ledger_rows_have_kinds_amounts_and_running_balance(server: Server) -> None:
    person = await make_person(server, "lin@example.com", credits=1000)
    key = await api_key(server, person.account_id)
    done = await server.run(key, rendering_speed="BALANCED")
    failed = await server.run(key, rendering_speed="TURBO", prompt=FAIL)
    assert (done["status"], failed["status"]) == ("completed", "failed")
    await adjust(server, person.account_id, -100, "duplicate top-up, reversed", "adjustment")

    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        page = await browser.get("/console/billing")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    rows = ledger_rows(page.text)
    seen = [(r.cells[1], r.cells[2], r.cells[3], r.cells[5]) for r in rows]
    assert seen == [
        ("Adjustment", "-100", "872", "duplicate top-up, reversed"),
        ("Refund", "+16", "972", ""),
        ("Charge", "-16", "956", ""),
        ("Charge", "-28", "972", ""),
        ("Top-up", "+1000", "1000", "opening balance"),
    ]
    assert rows[1].links == rows[2].links == [f"/console/tasks/{failed['id']}"]
    assert rows[3].links == [f"/console/tasks/{done['id']}"]
    assert rows[0].links == rows[4].links == []
    stamp = datetime.fromtimestamp(server.clock.now(), UTC).strftime("%Y-%m-%d")
    assert rows[0].cells[0].startswith(stamp)
    assert rows[0].cells[0].endswith(" UTC")
    assert '<div class="value" data-testid="balance">872 credits</div>' in page.text
    assert await api_credits(server, key) == 872
    assert "Older entries" not in page.text
    assert "How to get credits" in page.text


async def test_running_balance_holds_across_pages(server: Server) -> None:
    me = await make_person(server, "pages@example.com", credits=0)
    other = await make_person(server, "other@example.com", credits=0)
    amounts = [50 if i % 4 else -3 for i in range(PAGE_SIZE + 5)]
    amounts[0] = 500  # never below zero
    for i, amount in enumerate(amounts):  # the other account's ids come in between
        await adjust(server, me.account_id, amount, f"mine {i}", "adjustment")
        await adjust(server, other.account_id, 7, f"theirs {i}", "top_up")

    async with ConsoleClient(server) as browser:
        await browser.sign_in(me.email)
        first = await browser.get("/console/billing")
        assert "Newest entries" not in first.text
        cursor = first.text.split('href="/console/billing?before=')[1].split('"')[0]
        second = await browser.get(f"/console/billing?before={cursor}")
    assert "Older entries" in first.text
    assert "Older entries" not in second.text
    assert "Newest entries" in second.text
    page_one, page_two = ledger_rows(first.text), ledger_rows(second.text)
    assert (len(page_one), len(page_two)) == (PAGE_SIZE, 5)
    rows = page_one + page_two
    assert [r.cells[5] for r in rows] == [f"mine {i}" for i in reversed(range(len(amounts)))]
    assert [int(r.cells[2]) for r in rows] == list(reversed(amounts))
    expected, total = [], 0
    for amount in amounts:
        total += amount
        expected.append(total)
    assert [int(r.cells[3]) for r in rows] == list(reversed(expected))
    assert f"{total} credits</div>" in first.text
    assert "theirs" not in first.text + second.text


async def test_empty_ledger_and_sign_in_required(server: Server) -> None:
    person = await make_person(server, "new@example.com", credits=0)
    async with ConsoleClient(server) as browser:
        for path in ("/console/billing", "/console/billing/ledger.csv"):
            assert (await browser.get(path)).url.path == "/console/login"
        await browser.sign_in(person.email)
        page = await browser.get("/console/billing")
        export = await browser.get("/console/billing/ledger.csv")
    assert "No ledger entries yet." in page.text
    assert "0 credits</div>" in page.text
    assert list(csv.reader(io.StringIO(export.text))) == [
        ["id", "time", "kind", "amount", "balance_after", "task_id", "source", "reference", "note"]
    ]


async def test_csv_export_matches_the_ledger(server: Server) -> None:
    person = await make_person(server, "csv@example.com", credits=300)
    await make_person(server, "nosy@example.com", credits=5)
    key = await api_key(server, person.account_id)
    task = await server.run(key, rendering_speed="TURBO")
    tricky = 'refund for "ticket 7", agreed\nby phone'
    await adjust(server, person.account_id, 20, tricky, "adjustment")
    await adjust(server, person.account_id, -4, '=HYPERLINK("http://x","y")', "adjustment")
    await adjust(server, person.account_id, 1, "@SUM(A1)", "top_up")

    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        export = await browser.get("/console/billing/ledger.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    day = datetime.fromtimestamp(server.clock.now(), UTC).strftime("%Y-%m-%d")
    disposition = export.headers["content-disposition"]
    assert disposition == f'attachment; filename="imagegate-ledger-{day}.csv"'
    rows = list(csv.DictReader(io.StringIO(export.text, newline="")))
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("top_up", "300", "300"),
        ("charge", "-16", "284"),
        ("adjustment", "20", "304"),
        ("adjustment", "-4", "300"),
        ("top_up", "1", "301"),
    ]
    assert rows[1]["task_id"] == task["id"]
    assert [r["note"] for r in rows] == [
        "opening balance", "", tricky, "'=HYPERLINK(\"http://x\",\"y\")", "'@SUM(A1)",
    ]  # fmt: skip
    async with server.services.db.sessions() as session:
        entries = await billing.recent_entries(session, person.account_id, limit=100)
    assert [int(r["id"]) for r in rows] == sorted(e.id for e in entries)
    assert rows[0]["time"].startswith(day)
    assert await api_credits(server, key) == int(rows[-1]["balance_after"])
    assert len(rows) == 5  # nothing of the other account


async def test_chart_shows_net_spend_per_day(server: Server) -> None:
    person = await make_person(server, "chart@example.com", credits=1000)
    key = await api_key(server, person.account_id)
    now = server.clock.now()
    server.clock.advance(DAY - now % DAY + 3600)  # 01:00 UTC: the day cannot turn mid-test
    first_day = datetime.fromtimestamp(server.clock.now(), UTC).date().isoformat()
    await server.run(key, rendering_speed="TURBO")
    await server.run(key, rendering_speed="TURBO")
    await server.run(key, rendering_speed="QUALITY", prompt=FAIL)  # refunded: nets to nothing
    server.clock.advance(DAY)
    second_day = datetime.fromtimestamp(server.clock.now(), UTC).date().isoformat()
    await server.run(key, rendering_speed="BALANCED")
    await adjust(server, person.account_id, 50, "not spending", "top_up")
    server.clock.advance(2 * DAY)
    today = datetime.fromtimestamp(server.clock.now(), UTC).date().isoformat()

    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        page = await browser.get("/console/billing")
    days = day_rows(page.text)
    assert len(days) == 30
    assert list(days)[0] == today
    assert (days[first_day], days[second_day], days[today]) == (32, 28, 0)
    assert sum(days.values()) == 60
    assert f"<title>{first_day}: 32 credits</title>" in page.text
    assert f"<title>{second_day}: 28 credits</title>" in page.text
    assert f"<title>{today}: 0 credits</title>" in page.text
    assert 'role="img" aria-labelledby="spend-title spend-desc"' in page.text
    assert 'Spent in the last 30 days</div><div class="value">60 credits' in page.text

    server.clock.advance(27 * DAY)  # the first day is now 31 days ago: out of the window
    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        later = day_rows((await browser.get("/console/billing")).text)
    assert first_day not in later
    assert later[second_day] == 28
    assert sum(later.values()) == 28


async def test_billing_in_a_browser(server: Server) -> None:
    person = await make_person(server, "eve@example.com", credits=500)
    key = await api_key(server, person.account_id)
    await server.run(key, rendering_speed="TURBO")
    await server.run(key, rendering_speed="TURBO", prompt=FAIL)
    await adjust(server, person.account_id, 10, "welcome bonus, thanks", "adjustment")

    async with open_chromium() as chromium:
        context = await chromium.new_context(accept_downloads=True)
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text))
        await page.goto(f"{server.base_url}/console/login")
        await page.get_by_label("Email").fill(person.email)
        await page.get_by_label("Password").fill(person.password)
        await page.get_by_role("button", name="Sign in").click()
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
        )
        await page.get_by_role("heading", name="Billing", level=1).wait_for()

        assert await page.get_by_text("494 credits", exact=True).is_visible()  # the balance
        chart = page.get_by_role("img", name="Credits spent per day, last 30 days")
        assert await chart.is_visible()
        ledger = page.get_by_role("table").filter(has_text="Balance after")
        newest = ledger.get_by_role("row").nth(1)
        assert await newest.get_by_role("cell").nth(1).inner_text() == "Adjustment"
        assert await newest.get_by_role("cell").nth(3).inner_text() == "494"
        assert await newest.get_by_role("cell").nth(5).inner_text() == "welcome bonus, thanks"
        refund = ledger.get_by_role("row").filter(has_text="Refund")
        assert await refund.get_by_role("link").count() == 1

        await page.get_by_text("Spending per day as a table").click()
        today = datetime.fromtimestamp(server.clock.now(), UTC).date().isoformat()
        day = page.get_by_role("row").filter(has_text=today).filter(has_not_text="UTC")
        assert await day.get_by_role("cell").nth(1).inner_text() == "16"
        await screenshot(page, "billing")

        async with page.expect_download() as downloading:
            await page.get_by_role("link", name="Download the ledger as CSV").click()
        download = await downloading.value
        assert download.suggested_filename == f"imagegate-ledger-{today}.csv"
        saved = await download.path()
        exported = (await asyncio.to_thread(saved.read_bytes)).decode()
        last = list(csv.DictReader(io.StringIO(exported, newline="")))[-1]
        assert (last["kind"], last["balance_after"]) == ("adjustment", "494")
        await context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


async def test_spend_per_day_splits_at_utc_midnight(server: Server) -> None:
    person = await make_person(server, "days@example.com", credits=100)
    midnight = (int(server.clock.now()) // DAY + 1) * DAY
    async with server.services.db.transaction() as session:
        key, _ = await create_key(
            session, server.services.hasher, person.account_id, "", server.clock.now()
        )
        for task, at in (("t-before", midnight - 1), ("t-at", midnight), ("t-late", midnight - 60)):
            await billing.charge(
                SessionTx(session), person.account_id, key.id, task, 16, at,
                queue=server.services.queue,
            )  # fmt: skip
        await billing.refund(session, "t-late", midnight + 60)  # refunded the next day
    async with server.services.db.sessions() as session:
        days = await billing.daily_spend(session, person.account_id, midnight + 3600)
    assert len(days) == 30
    assert [(d.day.isoformat(), d.credits) for d in days[-2:]] == [
        (datetime.fromtimestamp(midnight - 1, UTC).date().isoformat(), 32),
        (datetime.fromtimestamp(midnight, UTC).date().isoformat(), 0),  # 16 charged, 16 back
    ]
    assert sum(d.credits for d in days) == 32

    async with ConsoleClient(server) as browser:
        await browser.sign_in(person.email)
        assert (await browser.get("/console/billing?before=abc")).status_code == 400
        assert (
            await browser.get("/console/billing?before=99999999999999999999")
        ).status_code == 400
