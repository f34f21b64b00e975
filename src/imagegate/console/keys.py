"""The API keys pages: list, create (the key shown once), edit limits, disable, enable, delete.

HTTP only: the rules (who owns a key, what a valid limit is) are keys.service's and
keys.policy's, the same functions the admin CLI calls."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from imagegate.console.auth import PageNotFound, Who, checked_form, text
from imagegate.console.web import redirect, render, services_of
from imagegate.db.models import ApiKey
from imagegate.keys import service as keys
from imagegate.keys.policy import PolicyChange, PolicyError
from imagegate.users import service as users
from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console")

KEYS = "/console/keys"
ALREADY_SENT = (
    "That form was already sent: its key was created and shown once. It is in the list below."
)


def _utc(moment: float | None, never: str = "never") -> str:
    if moment is None:
        return never
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _local(moment: float | None) -> str:
    """A time as a datetime-local input holds it (read as UTC)."""
    if moment is None:
        return ""
    at = datetime.fromtimestamp(moment, UTC)
    return at.strftime("%Y-%m-%dT%H:%M" if at.second == 0 else "%Y-%m-%dT%H:%M:%S")


@dataclass
class KeyForm:
    """The key form's fields as text, as typed: kept when a value is refused."""

    name: str = ""
    allowed_ips: str = ""
    rate_limit: str = ""
    hourly_limit: str = ""
    daily_limit: str = ""
    total_limit: str = ""
    expires: str = ""
    models: list[str] = field(default_factory=list)

    @classmethod
    def posted(cls, form: FormData) -> KeyForm:
        return cls(
            name=text(form, "name"),
            allowed_ips=text(form, "allowed_ips"),
            rate_limit=text(form, "rate_limit"),
            hourly_limit=text(form, "hourly_limit"),
            daily_limit=text(form, "daily_limit"),
            total_limit=text(form, "total_limit"),
            expires=text(form, "expires"),
            models=[m for m in form.getlist("models") if isinstance(m, str)],
        )

    @classmethod
    def of(cls, key: ApiKey) -> KeyForm:
        return cls(
            name=key.name,
            allowed_ips="\n".join(key.allowed_ips or ()),
            rate_limit=_number(key.rate_limit),
            hourly_limit=_number(key.hourly_limit),
            daily_limit=_number(key.daily_limit),
            total_limit=_number(key.total_limit),
            expires=_local(key.expires_at),
            models=list(key.models or ()),
        )

    def change(self) -> PolicyChange:
        """The whole policy this form sets; an empty field removes that limit."""
        return PolicyChange.whole(
            self.allowed_ips,
            self.rate_limit,
            self.hourly_limit,
            self.daily_limit,
            self.total_limit,
            self.expires,
            self.models,
        )


@dataclass(frozen=True)
class KeyView:
    """A key as the pages show it: never the key itself, only its prefix and last 4."""

    id: str
    label: str
    masked: str
    status: str  # active | disabled | expired
    created: str
    last_used: str
    expires: str
    limits: list[str]


def _limits(key: ApiKey) -> list[str]:
    """The key's restrictions in words; an empty list when it has none."""
    parts = []
    if key.rate_limit is not None:
        parts.append(f"{key.rate_limit:,} requests/min")
    for limit, per in [
        (key.hourly_limit, "per hour"),
        (key.daily_limit, "per day"),
        (key.total_limit, "in total"),
    ]:
        if limit is not None:
            parts.append(f"{limit:,} credits {per}")
    if key.allowed_ips:
        parts.append("IPs: " + ", ".join(key.allowed_ips))
    if key.models:
        parts.append("models: " + ", ".join(key.models))
    if key.expires_at is not None:
        parts.append("expires " + _utc(key.expires_at))
    return parts


def _masked(key: ApiKey) -> str:
    return f"{key.prefix}…{key.last4}"


def _label(key: ApiKey) -> str:
    return key.name or _masked(key)


def key_view(key: ApiKey, now: float) -> KeyView:
    expired = key.expires_at is not None and key.expires_at <= now
    return KeyView(
        id=key.id,
        label=_label(key),
        masked=_masked(key),
        status="expired" if key.status == "active" and expired else key.status,
        created=_utc(key.created_at),
        last_used=_utc(key.last_used_at),
        expires=_utc(key.expires_at, never="never"),
        limits=_limits(key),
    )


async def _own_key(session: AsyncSession, who: SignedIn, key_id: str) -> ApiKey:
    """The signed-in account's live key, or the 404 page."""
    try:
        return await keys.get_account_key(session, who.account_id, key_id)
    except keys.KeyNotFound:
        raise PageNotFound() from None


async def _form_page(
    request: Request,
    who: SignedIn,
    template: str,
    form: KeyForm,
    error: ValueError | None = None,
    **context: object,
) -> Response:
    """A page with the key form: on a refused value, its message and the field marked."""
    return render(
        request,
        template,
        who,
        400 if error else 200,
        form=form,
        error=str(error) if error else None,
        invalid=error.field if isinstance(error, PolicyError) else None,
        models=list(await services_of(request).catalog.fresh()),
        default_rate=services_of(request).settings.rate_limit_per_minute,
        **context,
    )


@router.get("/keys", response_class=HTMLResponse)
async def keys_page(request: Request, who: Who) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        rows = await keys.list_keys(session, who.account_id)
    now = services.clock.now()
    views = [key_view(key, now) for key in reversed(rows)]  # newest first
    return render(request, "keys.html", who, title="API keys", keys=views)


@router.get("/keys/new", response_class=HTMLResponse)
async def new_key_page(request: Request, who: Who) -> Response:
    return await _new_key_form(request, who, KeyForm(), secrets.token_urlsafe(24))


async def _new_key_form(
    request: Request, who: SignedIn, form: KeyForm, once: str, error: ValueError | None = None
) -> Response:
    """The create form; ``once`` is its one-time token, so a reload of the answer (which posts
    the form again) or a double click creates no second key."""
    return await _form_page(
        request, who, "keys_new.html", form, error, title="Create an API key", once=once
    )


class _AlreadySent(Exception):
    pass


@router.post("/keys", response_class=HTMLResponse)
async def create_key(request: Request, who: Who) -> Response:
    posted = await checked_form(request, who)
    form, once = KeyForm.posted(posted), text(posted, "once")
    services = services_of(request)
    now = services.clock.now()
    try:
        async with services.db.transaction() as session:
            if not await users.spend_form_token(session, once, who.user_id, now):
                raise _AlreadySent()
            key, plaintext = await keys.create_key(
                session, services.hasher, who.account_id, form.name, now, form.change()
            )
    except ValueError as exc:
        return await _new_key_form(request, who, form, once, exc)
    except (_AlreadySent, IntegrityError):
        return redirect(request, KEYS, ALREADY_SENT)
    # Shown on this answer only (no-store): the database keeps just a hash.
    view = key_view(key, now)
    return render(
        request, "keys_created.html", who, 201, title="Key created", key=view, plaintext=plaintext
    )


async def _key_page(
    request: Request, who: SignedIn, key_id: str, form: KeyForm | None, error: ValueError | None
) -> Response:
    services = services_of(request)
    now = services.clock.now()
    async with services.db.sessions() as session:
        key = await _own_key(session, who, key_id)
        spend = await keys.key_spend(session, key.id, now)
    view = key_view(key, now)
    return await _form_page(
        request, who, "keys_detail.html", form or KeyForm.of(key), error,
        title=f"Key {view.label}", key=view, spend=spend,
    )  # fmt: skip


@router.get("/keys/{key_id}", response_class=HTMLResponse)
async def key_page(request: Request, who: Who, key_id: str) -> Response:
    return await _key_page(request, who, key_id, None, None)


@router.post("/keys/{key_id}", response_class=HTMLResponse)
async def update_key(request: Request, who: Who, key_id: str) -> Response:
    form = KeyForm.posted(await checked_form(request, who))
    services = services_of(request)
    try:
        async with services.db.transaction() as session:
            key = await keys.update_key(session, key_id, form.change(), form.name, who.account_id)
    except keys.KeyNotFound:
        raise PageNotFound() from None
    except ValueError as exc:
        return await _key_page(request, who, key_id, form, exc)
    return redirect(request, f"{KEYS}/{key.id}", f"Key “{_label(key)}” saved.")


async def _set_status(request: Request, who: SignedIn, key_id: str, status: str) -> ApiKey:
    """Check the form, then set the status of the signed-in account's key (or 404)."""
    await checked_form(request, who)
    services = services_of(request)
    try:
        async with services.db.transaction() as session:
            return await keys.set_key_status(session, key_id, status, who.account_id)
    except keys.KeyNotFound:
        raise PageNotFound() from None


@router.post("/keys/{key_id}/disable")
async def disable_key(request: Request, who: Who, key_id: str) -> Response:
    key = await _set_status(request, who, key_id, "disabled")
    notice = f"Key “{_label(key)}” disabled. Apps using it now get 401."
    return redirect(request, f"{KEYS}/{key.id}", notice)


@router.post("/keys/{key_id}/enable")
async def enable_key(request: Request, who: Who, key_id: str) -> Response:
    key = await _set_status(request, who, key_id, "active")
    return redirect(request, f"{KEYS}/{key.id}", f"Key “{_label(key)}” enabled.")


@router.get("/keys/{key_id}/delete", response_class=HTMLResponse)
async def delete_page(request: Request, who: Who, key_id: str) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        key = key_view(await _own_key(session, who, key_id), services.clock.now())
    return render(request, "keys_delete.html", who, title=f"Delete key {key.label}", key=key)


@router.post("/keys/{key_id}/delete")
async def delete_key(request: Request, who: Who, key_id: str) -> Response:
    key = await _set_status(request, who, key_id, "deleted")
    return redirect(request, KEYS, f"Key “{_label(key)}” deleted.")
