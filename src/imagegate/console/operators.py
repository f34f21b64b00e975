"""Operator pages: accounts (search, detail, credit adjustments, ban, users, invitations) and
the system (provider circuits, queues, failed jobs, failing callbacks).

HTTP only: every rule lives in the services the admin CLI calls too. Members get 404 on every
page here (the Operator dependency), as if the pages did not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import accounts, payments, plans
from imagegate.billing import service as billing
from imagegate.callbacks.stats import failing_callbacks
from imagegate.console.auth import Operator, PageNotFound, checked_form, text
from imagegate.console.topup import PaymentEventLine
from imagegate.console.web import redirect, render, services_of
from imagegate.db.models import User
from imagegate.jobs import stats as job_stats
from imagegate.users import service as users
from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console/admin")

ACCOUNTS = "/console/admin/accounts"
ERROR_CHARS = 160  # failed jobs' and callbacks' errors, shortened in tables


def when(timestamp: float | None) -> str:
    """A time as operators read it in tables: UTC, to the minute."""
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def age(seconds: float) -> str:
    """How long ago, roughly: 45 s, 12 min, 3 h, 2 d."""
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def shorten(message: str, limit: int = ERROR_CHARS) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


HELPERS: dict[str, Any] = {"when": when, "iso": iso, "age": age, "shorten": shorten}


@router.get("")
async def admin_home(request: Request, who: Operator) -> Response:
    return redirect(request, ACCOUNTS)


# Accounts


@router.get("/accounts", response_class=HTMLResponse)
async def accounts_page(
    request: Request, who: Operator, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        found = await accounts.search_accounts(session, q)
    return render(
        request, "admin_accounts.html", who,
        title="Accounts", q=q, found=found, limit=accounts.SEARCH_LIMIT, **HELPERS,
    )  # fmt: skip


async def account_page(
    request: Request, who: SignedIn, account_id: str, status_code: int = 200, **extra: Any
) -> Response:
    """The account's page; ``extra`` carries an error and the form's values, or a new link."""
    services = services_of(request)
    async with services.db.sessions() as session:
        try:
            detail = await accounts.account_detail(session, account_id)
        except billing.AccountNotFound:
            raise PageNotFound() from None
        events = await payments.payment_events(session, account_id)
        price_plans = await plans.list_plans(session)
    return render(
        request, "admin_account.html", who, status_code,
        title=f"Account {detail.account.name}", detail=detail, plans=price_plans,
        payment_events=[PaymentEventLine.of(event) for event in events], **HELPERS, **extra,
    )  # fmt: skip


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
async def account_detail(request: Request, who: Operator, account_id: str) -> Response:
    return await account_page(request, who, account_id)


def _url(account_id: str) -> str:
    return f"{ACCOUNTS}/{account_id}"


@router.post("/accounts/{account_id}/adjust", response_class=HTMLResponse)
async def adjust(request: Request, who: Operator, account_id: str) -> Response:
    form = await checked_form(request, who)
    amount, reason = text(form, "amount"), text(form, "reason")
    services = services_of(request)
    try:
        credits, note = accounts.parse_adjustment(amount, reason)
        async with services.db.transaction() as session:
            balance = await accounts.adjust_credits(
                session, account_id, credits, note, services.clock.now()
            )
    except billing.AccountNotFound:
        raise PageNotFound() from None
    except ValueError as exc:
        return await account_page(
            request, who, account_id, 400, error=str(exc), amount=amount, reason=reason
        )
    return redirect(
        request, _url(account_id), f"Adjusted by {credits:+d} credits. The balance is {balance}."
    )


@router.post("/accounts/{account_id}/plan", response_class=HTMLResponse)
async def set_plan(request: Request, who: Operator, account_id: str) -> Response:
    plan = text(await checked_form(request, who), "plan") or None
    services = services_of(request)
    try:
        async with services.db.transaction() as session:
            await plans.set_account_plan(session, account_id, plan)
    except plans.PlanNotFound:
        message = f"There is no price plan {plan!r}: choose one from the list."
        return await account_page(request, who, account_id, 400, error=message)
    except LookupError:
        raise PageNotFound() from None
    notice = f"Account put on price plan {plan}." if plan else "Account back on list prices."
    return redirect(request, _url(account_id), notice)


@router.get("/accounts/{account_id}/ban", response_class=HTMLResponse)
async def ban_page(request: Request, who: Operator, account_id: str) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        try:
            detail = await accounts.account_detail(session, account_id, ledger_limit=0)
        except billing.AccountNotFound:
            raise PageNotFound() from None
    return render(
        request, "admin_ban.html", who, title=f"Ban {detail.account.name}?", detail=detail
    )


@router.post("/accounts/{account_id}/ban")
async def ban(request: Request, who: Operator, account_id: str) -> Response:
    await checked_form(request, who)
    if account_id == who.account_id:
        return await account_page(
            request, who, account_id, 400,
            error="You cannot ban the account you are signed in with.",
        )  # fmt: skip
    await _set_banned(request, account_id, True)
    return redirect(
        request,
        _url(account_id),
        "Account banned: its users' sessions and API keys are refused from now on.",
    )


@router.post("/accounts/{account_id}/unban")
async def unban(request: Request, who: Operator, account_id: str) -> Response:
    await checked_form(request, who)
    await _set_banned(request, account_id, False)
    return redirect(request, _url(account_id), "Account unbanned: its users and keys work again.")


async def _set_banned(request: Request, account_id: str, banned: bool) -> None:
    services = services_of(request)
    try:
        async with services.db.transaction() as session:
            await users.set_account_banned(session, account_id, banned)
    except billing.AccountNotFound:
        raise PageNotFound() from None


@router.post("/accounts/{account_id}/invite", response_class=HTMLResponse)
async def invite(request: Request, who: Operator, account_id: str) -> Response:
    form = await checked_form(request, who)
    role = text(form, "role")
    if role not in users.ROLES:
        return await account_page(request, who, account_id, 400, error="Choose a role.")
    services = services_of(request)
    try:
        async with services.db.transaction() as session:
            token = await users.invite(session, services.clock.now(), account_id, role)
    except billing.AccountNotFound:
        raise PageNotFound() from None
    link = users.invite_link(services.public_url, token)
    shown = {"title": f"Invite link for a new {role}", "url": link, "for_whom": None}
    return await account_page(request, who, account_id, new_link=shown)


# A user of the account


async def _user_of(session: AsyncSession, account_id: str, user_id: str) -> User:
    """The user, when it belongs to the account in the address; PageNotFound otherwise."""
    try:
        user = await users.get_user(session, user_id)
    except users.UserNotFound:
        raise PageNotFound() from None
    if user.account_id != account_id:
        raise PageNotFound()
    return user


@router.post("/accounts/{account_id}/users/{user_id}/disable", response_class=HTMLResponse)
async def disable_user(request: Request, who: Operator, account_id: str, user_id: str) -> Response:
    await checked_form(request, who)
    if user_id == who.user_id:
        return await account_page(
            request, who, account_id, 400, error="You cannot disable yourself."
        )
    email = await _set_user_status(request, account_id, user_id, "disabled")
    return redirect(request, _url(account_id), f"Disabled {email}: their sessions have ended.")


@router.post("/accounts/{account_id}/users/{user_id}/enable")
async def enable_user(request: Request, who: Operator, account_id: str, user_id: str) -> Response:
    await checked_form(request, who)
    email = await _set_user_status(request, account_id, user_id, "active")
    return redirect(request, _url(account_id), f"Enabled {email}: they can sign in again.")


async def _set_user_status(request: Request, account_id: str, user_id: str, status: str) -> str:
    services = services_of(request)
    async with services.db.transaction() as session:
        user = await _user_of(session, account_id, user_id)
        await users.set_status(session, user.id, status)
        return user.email


@router.post("/accounts/{account_id}/users/{user_id}/password-link", response_class=HTMLResponse)
async def password_link(request: Request, who: Operator, account_id: str, user_id: str) -> Response:
    await checked_form(request, who)
    services = services_of(request)
    async with services.db.transaction() as session:
        user = await _user_of(session, account_id, user_id)
        token = await users.reset_password(session, user.id, services.clock.now())
        email = user.email
    shown = {
        "title": f"Password link for {email}",
        "url": users.password_link(services.public_url, token),
        "for_whom": email,
    }
    return await account_page(request, who, account_id, new_link=shown)


# The system


@router.get("/system", response_class=HTMLResponse)
async def system_page(request: Request, who: Operator) -> Response:
    services = services_of(request)
    now = services.clock.now()
    providers = await services.providers.statuses((await services.catalog.fresh()).values())
    async with services.db.sessions() as session:
        queues = await job_stats.queue_depths(session, now)
        failed = await job_stats.failed_jobs(session)
        failed_total = await job_stats.failed_count(session)
        callbacks = await failing_callbacks(session)
    return render(
        request, "admin_system.html", who,
        title="System", now=now, providers=providers, queues=queues, failed=failed,
        failed_total=failed_total, callbacks=callbacks, runs_worker=bool(services.workers),
        **HELPERS,
    )  # fmt: skip
