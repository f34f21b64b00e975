"""Redemption codes in the console: the Billing page's "Redeem a code" form, and the operators'
Codes page (make a batch, its codes shown once; the batches with their redeemed counts; a batch's
status as CSV, never its codes).

HTTP only: the rules live in billing/codes.py, which the admin CLI calls too. The codes of a new
batch exist only in the answer to the form that made it: that page shows them, and its "Download
CSV" button posts them back (they are checked against the batch's hashes) to get them as a file,
so the server keeps nothing it could leak later.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import codes
from imagegate.console import billing as billing_page
from imagegate.console.auth import Operator, PageNotFound, Who, checked_form, text
from imagegate.console.operators import HELPERS
from imagegate.console.web import SECURITY_HEADERS, error_page, redirect, render, services_of
from imagegate.db.models import CodeBatch
from imagegate.keys.auth import caller_address
from imagegate.users import service as users
from imagegate.users.service import SignedIn
from imagegate.users.throttle import wait_words

router = APIRouter(prefix="/console")

BILLING = "/console/billing"
CODES = "/console/admin/codes"
BATCH_LIMIT = 100  # batches listed on the page, newest first
FIELDS = ("credits", "count", "expires", "note")
ALREADY_SENT = (
    "That form was already sent: its batch was made and its codes shown once. "
    "It is in the list below."
)


async def section(request: Request, who: SignedIn, session: AsyncSession) -> dict[str, Any]:
    """This section's values for billing.html and its include, read in the page's session."""
    return {}


# Redeeming, on the Billing page


@router.post("/billing/redeem", response_class=HTMLResponse)
async def redeem(request: Request, who: Who) -> Response:
    form = await checked_form(request, who)
    typed = text(form, "code")
    if not typed:
        return await _refused(request, who, typed, "Enter a redemption code.", 400)
    services = services_of(request)
    address = caller_address(request, services)
    throttle = services.redeem_throttle
    wait = await throttle.attempt(who.account_id, address)
    if wait:
        message = f"Too many redemption attempts. Try again in {wait_words(wait)}."
        return await _refused(request, who, typed, message, 429)
    try:
        async with services.db.transaction() as session:
            done = await codes.redeem(session, who.account_id, typed, services.clock.now())
    except codes.RedeemRefused as exc:
        await throttle.failed(address)
        return await _refused(request, who, typed, str(exc), 400)
    added = f"{done.credits} credit{'s' * (done.credits != 1)}"
    return redirect(request, BILLING, f"Code redeemed: {added} added.")


async def _refused(
    request: Request, who: SignedIn, typed: str, message: str, status_code: int
) -> Response:
    return await billing_page.billing_view(
        request, who, status_code=status_code, redeem_error=message, redeem_value=typed
    )


# The operators' page


@router.get("/admin/codes", response_class=HTMLResponse)
async def codes_page(request: Request, who: Operator) -> Response:
    return await _admin_page(request, who)


async def _admin_page(
    request: Request,
    who: SignedIn,
    status_code: int = 200,
    once: str | None = None,
    **extra: Any,
) -> Response:
    """The Codes page; ``once`` is the create form's one-time token, so a reload of the answer
    (which posts the form again) or a double click makes no second batch."""
    services = services_of(request)
    extra.setdefault("form", {})
    async with services.db.sessions() as session:
        batches = await codes.list_batches(session, BATCH_LIMIT + 1)
    return render(
        request, "codes_admin.html", who, status_code,
        title="Redemption codes", batches=batches[:BATCH_LIMIT],
        more=len(batches) > BATCH_LIMIT, limit=BATCH_LIMIT, now=services.clock.now(),
        once=once or secrets.token_urlsafe(24), max_count=codes.MAX_COUNT,
        max_note=codes.MAX_NOTE, **HELPERS, **extra,
    )  # fmt: skip


class _AlreadySent(Exception):
    pass


@router.post("/admin/codes", response_class=HTMLResponse)
async def create_batch(request: Request, who: Operator) -> Response:
    form = await checked_form(request, who)
    values = {name: text(form, name) for name in FIELDS}
    once = text(form, "once")
    services = services_of(request)
    now = services.clock.now()
    try:
        spec = codes.parse_batch(
            values["credits"], values["count"], values["expires"], values["note"], now
        )
        async with services.db.transaction() as session:
            if not await users.spend_form_token(session, once, who.user_id, now):
                raise _AlreadySent()
            made = await codes.create_batch(session, spec, now)
    except ValueError as exc:
        return await _admin_page(request, who, 400, once, error=str(exc), form=values)
    except (_AlreadySent, IntegrityError):
        return redirect(request, CODES, ALREADY_SENT)
    if text(form, "deliver") == "csv":
        return _codes_csv(made.batch, made.codes)
    # Shown on this answer only (no-store): the database keeps just their hashes.
    return render(
        request, "codes_created.html", who, 201,
        title="Codes created", batch=made.batch, codes=made.codes, **HELPERS,
    )  # fmt: skip


@router.post("/admin/codes/{batch_id}/codes.csv")
async def codes_csv(request: Request, who: Operator, batch_id: str) -> Response:
    """The codes the created page holds, as a file, once they prove to be the batch's."""
    form = await checked_form(request, who)
    typed = [line for line in text(form, "codes").splitlines() if line.strip()]
    services = services_of(request)
    async with services.db.sessions() as session:
        batch = await _batch(session, batch_id)
        try:
            shown = await codes.check_batch_codes(session, batch_id, typed)
        except ValueError as exc:
            return error_page(request, 400, "Request refused", str(exc))
    return _codes_csv(batch, shown)


@router.get("/admin/codes/{batch_id}/status.csv")
async def status_csv(request: Request, who: Operator, batch_id: str) -> Response:
    """Which codes of the batch were redeemed, when and by which account (never the codes)."""
    services = services_of(request)
    async with services.db.sessions() as session:
        batch = await _batch(session, batch_id)
        rows = [
            (code.hint, code.id, codes.iso(code.redeemed_at) or "", code.account_id or "")
            for code in await codes.batch_codes(session, batch_id)
        ]
    header = ("hint", "code_id", "redeemed_at", "account_id")
    return _csv(f"imagegate-codes-{batch.id}-status.csv", header, rows)


async def _batch(session: AsyncSession, batch_id: str) -> CodeBatch:
    batch = await session.get(CodeBatch, batch_id)
    if batch is None:
        raise PageNotFound()
    return batch


def _codes_csv(batch: CodeBatch, shown: Sequence[str]) -> Response:
    expires = codes.iso(batch.expires_at) or ""
    rows = [(code, batch.credits, expires, batch.id) for code in shown]
    header = ("code", "credits", "expires_at", "batch_id")
    return _csv(f"imagegate-codes-{batch.id}.csv", header, rows)


def _csv(filename: str, header: Sequence[str], rows: Iterable[Sequence[str | int]]) -> Response:
    """A CSV attachment. Every cell is ours (codes, hints, ids, numbers, times): none can start
    a spreadsheet formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
