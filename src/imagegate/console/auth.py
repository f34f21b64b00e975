"""Who is signed in (the session cookie, checked against the database on every page), the
operator-only guard, and CSRF-checked form posts. An API key never opens a page: only the
session cookie is read here, and /v1 reads only the Authorization header."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.datastructures import FormData

from imagegate.console.web import SESSION_COOKIE, csrf_token, services_of
from imagegate.users import service as users
from imagegate.users.service import SignedIn

TOUCH_EVERY = 300.0  # seconds between writes of a session's last_seen_at


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageNotFound(Exception):
    """Anything the signed-in person may not see answers as if it did not exist."""

    def __init__(self, message: str = "There is nothing here, or it is not yours to see.") -> None:
        self.message = message


class FormRefused(Exception):
    """A state-changing request without this browser's CSRF token."""


class UnreadableInput(Exception):
    """A NUL character in an address or a form: no text of ours holds one (and PostgreSQL
    refuses them), so it names nothing and is refused before any lookup."""


def _refuse_nul(values: Iterable[str]) -> None:
    if any("\x00" in value for value in values):
        raise UnreadableInput()


async def optional_user(request: Request) -> SignedIn | None:
    """The signed-in person, or None."""
    _refuse_nul([request.url.path, *request.query_params.values()])
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    services = services_of(request)
    now = services.clock.now()
    async with services.db.sessions() as session:
        found = await users.signed_in(session, token, now, services.settings.console_session_days)
    if found is None:
        return None
    who, last_seen = found
    if now - last_seen > TOUCH_EVERY:
        async with services.db.transaction() as session:
            await users.touch_session(session, who.session_id, now)
    request.state.who = who
    return who


async def current_user(request: Request) -> SignedIn:
    who = await optional_user(request)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return who


async def current_operator(who: Annotated[SignedIn, Depends(current_user)]) -> SignedIn:
    if not who.is_operator:
        raise PageNotFound()
    return who


Who = Annotated[SignedIn, Depends(current_user)]
MaybeWho = Annotated[SignedIn | None, Depends(optional_user)]
Operator = Annotated[SignedIn, Depends(current_operator)]


async def checked_form(request: Request, who: SignedIn | None) -> FormData:
    """The posted form, after checking its CSRF token against this browser's."""
    form = await request.form()
    _refuse_nul(value for value in form.values() if isinstance(value, str))
    given = form.get("csrf_token")
    if not isinstance(given, str) or not hmac.compare_digest(given, csrf_token(request, who)):
        raise FormRefused()
    return form


def login_url(next_url: str) -> str:
    return f"/console/login?next={quote(next_url, safe='/')}"


def safe_next(next_url: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if next_url and next_url.startswith("/console") and not next_url.startswith("//"):
        return next_url
    return "/console"


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
