"""The Billing page (balance, the ledger with a running balance, its CSV export, spending per
day as a chart) and the Webhooks page (the signing secret, revealed on request, and rotation)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from imagegate.billing import service as billing
from imagegate.billing.service import DaySpend, LedgerRow
from imagegate.callbacks import service as callbacks
from imagegate.console import alerts, codes, topup
from imagegate.console.auth import Who, checked_form
from imagegate.console.web import SECURITY_HEADERS, redirect, render, services_of
from imagegate.db.models import LedgerEntry
from imagegate.services import Services
from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console")

PAGE_SIZE = 20  # ledger rows per page
EXPORT_BATCH = 1000  # ledger rows read per query while streaming the CSV
KIND_WORDS = {
    "charge": "Charge",
    "refund": "Refund",
    "top_up": "Top-up",
    "adjustment": "Adjustment",
}
CSV_HEADER = (
    "id",
    "time",
    "kind",
    "amount",
    "balance_after",
    "task_id",
    "source",
    "reference",
    "note",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas


def utc_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def signed(amount: int) -> str:
    return f"{amount:+d}" if amount else "0"


@dataclass(frozen=True)
class LedgerLine:
    """One row of the ledger table, as shown."""

    time: str
    kind: str
    amount: str
    balance_after: int
    task_id: str | None
    note: str

    @classmethod
    def of(cls, row: LedgerRow) -> LedgerLine:
        entry = row.entry
        return cls(
            time=utc_time(entry.created_at),
            kind=KIND_WORDS.get(entry.kind, entry.kind),
            amount=signed(entry.amount),
            balance_after=row.balance_after,
            task_id=entry.task_id,
            note=entry.note,
        )


Before = Annotated[int | None, Query(ge=1, le=2**63 - 1)]  # a ledger entry id


@router.get("/billing", response_class=HTMLResponse)
async def billing_page(request: Request, who: Who, before: Before = None) -> Response:
    return await billing_view(request, who, before)


async def billing_view(
    request: Request,
    who: SignedIn,
    before: int | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    """The Billing page; the sections on buying credits, codes and alerts add their parts, and
    a form of theirs that was refused re-renders it with ``extra`` (its error, its values)."""
    services = services_of(request)
    async with services.db.sessions() as session:
        balance = await billing.balance(session, who.account_id)
        page = await billing.ledger_page(session, who.account_id, before, PAGE_SIZE)
        spending = await billing.daily_spend(session, who.account_id, services.clock.now())
        sections: dict[str, Any] = {}
        for section in (topup.section, codes.section, alerts.section):
            sections.update(await section(request, who, session))
    return render(
        request,
        "billing.html",
        who,
        status_code,
        title="Billing",
        balance=balance,
        lines=[LedgerLine.of(row) for row in page.rows],
        older_than=page.older_than,
        first_page=before is None,
        chart=SpendChart.of(spending),
        **sections,
        **extra,
    )


@router.get("/billing/ledger.csv")
async def ledger_csv(request: Request, who: Who) -> Response:
    services = services_of(request)
    day = datetime.fromtimestamp(services.clock.now(), UTC).strftime("%Y-%m-%d")
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="imagegate-ledger-{day}.csv"',
    }
    return StreamingResponse(
        _csv_lines(services, who.account_id), media_type="text/csv; charset=utf-8", headers=headers
    )


async def _csv_lines(services: Services, account_id: str) -> AsyncIterator[str]:
    """The whole ledger, oldest first, read in batches; the running balance starts at zero
    because the balance is the sum of every entry."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    last_id, running = 0, 0
    while True:
        async with services.db.sessions() as session:
            entries = await billing.entries_after(session, account_id, last_id, EXPORT_BATCH)
        for entry in entries:
            running += entry.amount
            writer.writerow(_csv_row(entry, running))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(entries) < EXPORT_BATCH:
            return
        last_id = entries[-1].id


def _csv_row(entry: LedgerEntry, balance_after: int) -> tuple[str | int, ...]:
    time = datetime.fromtimestamp(entry.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    note = entry.note or ""
    if note.startswith(FORMULA_STARTS):
        note = "'" + note
    return (
        entry.id, time, entry.kind, entry.amount, balance_after, entry.task_id or "",
        entry.source or "", entry.reference or "", note,
    )  # fmt: skip


# The chart's geometry, in the units of its viewBox.
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # "YYYY-MM-DD: N credits"


@dataclass(frozen=True)
class Tick:
    position: float  # x for day labels, y for credit labels
    text: str


@dataclass(frozen=True)
class SpendChart:
    """Credits spent per day, as bars scaled to the busiest day."""

    days: list[DaySpend]
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total: int
    top: DaySpend | None  # the busiest day, None when nothing was spent

    @classmethod
    def of(cls, days: list[DaySpend]) -> SpendChart:
        peak = max((d.credits for d in days), default=0)
        scale = _nice_ceiling(peak)
        slot = PLOT_W / max(len(days), 1)
        bars = [_bar(i, d, slot, scale) for i, d in enumerate(days)]
        y_ticks = [
            Tick(TOP + PLOT_H - PLOT_H * part / 4, str(scale * part // 4)) for part in range(5)
        ]
        x_ticks = [
            Tick(LEFT + slot * (i + 0.5), d.day.strftime("%b %d"))
            for i, d in enumerate(days)
            if i % 7 == (len(days) - 1) % 7  # weekly, ending on today
        ]
        top = max(days, key=lambda d: d.credits) if peak > 0 else None
        total = sum(d.credits for d in days)
        return cls(days, bars, y_ticks, x_ticks, total, top)

    @property
    def width(self) -> int:
        return WIDTH

    @property
    def height(self) -> int:
        return HEIGHT

    @property
    def plot(self) -> dict[str, float]:
        return {"left": LEFT, "right": LEFT + PLOT_W, "top": TOP, "bottom": TOP + PLOT_H}


def _bar(index: int, day: DaySpend, slot: float, scale: int) -> Bar:
    height = PLOT_H * max(day.credits, 0) / scale
    credits = "credit" if abs(day.credits) == 1 else "credits"
    return Bar(
        x=round(LEFT + slot * index + slot * 0.15, 2),
        y=round(TOP + PLOT_H - height, 2),
        width=round(slot * 0.7, 2),
        height=round(height, 2),
        label=f"{day.day.isoformat()}: {day.credits} {credits}",
    )


def _nice_ceiling(value: int) -> int:
    """The smallest of 4, 8, 20, 40, 80, 200, ... (divisible by the 4 grid steps) >= value."""
    step = 1
    while True:
        for multiple in (4, 8, 20):
            if multiple * step >= value:
                return multiple * step
        step *= 10


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, who: Who) -> Response:
    return _webhooks(request, who)


@router.post("/webhooks/reveal", response_class=HTMLResponse)
async def reveal_secret(request: Request, who: Who) -> Response:
    await checked_form(request, who)
    services = services_of(request)
    async with services.db.transaction() as session:  # the secret is made on first use
        secret = await callbacks.webhook_secret(session, who.account_id)
    return _webhooks(request, who, secret=secret)


@router.get("/webhooks/rotate", response_class=HTMLResponse)
async def rotate_confirmation(request: Request, who: Who) -> Response:
    return _webhooks(request, who, confirm_rotate=True)


@router.post("/webhooks/rotate")
async def rotate_secret(request: Request, who: Who) -> Response:
    await checked_form(request, who)
    services = services_of(request)
    async with services.db.transaction() as session:
        await callbacks.rotate_webhook_secret(session, who.account_id)
    return redirect(
        request,
        "/console/webhooks",
        "Signing secret rotated: callbacks are signed with the new one from now on. "
        "Reveal it below and give it to your receivers.",
    )


def _webhooks(
    request: Request, who: SignedIn, secret: str | None = None, confirm_rotate: bool = False
) -> Response:
    delays = services_of(request).settings.callback_retry_delays
    return render(
        request,
        "webhooks.html",
        who,
        title="Webhooks",
        secret=secret,
        confirm_rotate=confirm_rotate,
        attempts=len(delays),
        retry_minutes=[f"{d / 60:g}" for d in delays[1:]],
    )
