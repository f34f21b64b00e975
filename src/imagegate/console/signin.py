"""Signing in and out, signing up, one-time password links, and changing one's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData

from imagegate.console.auth import MaybeWho, Who, checked_form, safe_next, text
from imagegate.console.web import (
    COOKIE_PATH,
    SESSION_COOKIE,
    redirect,
    render,
    services_of,
    set_cookie,
)
from imagegate.db.models import Account
from imagegate.keys.auth import caller_address
from imagegate.users import service as users
from imagegate.users.passwords import hash_password, verify_password
from imagegate.users.service import LinkUnusable
from imagegate.users.throttle import wait_words

router = APIRouter(prefix="/console")


def _signed_in_response(request: Request, token: str, target: str, notice: str) -> Response:
    response = redirect(request, target, notice)
    set_cookie(request, response, SESSION_COOKIE, token)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, who: MaybeWho, next: str | None = None) -> Response:
    if who is not None:
        return redirect(request, safe_next(next))
    return render(request, "login.html", None, next=safe_next(next), email="")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await checked_form(request, None)
    email, password = text(form, "email").lower(), str(form.get("password") or "")
    target = safe_next(text(form, "next"))
    services = services_of(request)
    address = caller_address(request, services)

    def again(error: str, status: int) -> Response:
        return render(request, "login.html", None, status, next=target, email=email, error=error)

    wait = await services.login_throttle.attempt(email, address)
    if wait:
        return again(f"Too many failed sign-ins. Try again in {wait_words(wait)}.", 429)
    async with services.db.sessions() as session:
        user = await users.find_by_email(session, email)
        account = None if user is None else await session.get(Account, user.account_id)
    if not await verify_password(user.password_hash if user else None, password):
        await services.login_throttle.failed(address)
        return again("Incorrect email or password.", 401)
    assert user is not None
    assert account is not None
    if user.status != "active":
        return again("This user has been disabled. Ask an operator to enable it.", 403)
    if account.banned:
        return again("This account has been banned. Contact the operator.", 403)
    await services.login_throttle.succeeded(email)
    async with services.db.transaction() as session:
        token = await users.start_session(session, user.id, services.clock.now())
    return _signed_in_response(request, token, target, f"Signed in as {user.email}.")


@router.post("/logout")
async def logout(request: Request, who: Who) -> Response:
    await checked_form(request, who)
    services = services_of(request)
    async with services.db.transaction() as session:
        await users.end_session(session, who.session_id)
    response = redirect(request, "/console/login", "Signed out.")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


InviteToken = Annotated[str | None, Query(alias="invite")]


def _signup_closed(request: Request, invite: str | None) -> str | None:
    """Why this visitor may not sign up, or None."""
    mode = services_of(request).settings.signup
    if mode == "closed":
        return "Sign-up is closed on this server. Ask the operator for an account."
    if mode == "invite" and not invite:
        return "Sign-up on this server is by invitation. Ask the operator for an invite link."
    return None


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, who: MaybeWho, invite: InviteToken = None) -> Response:
    if who is not None:
        return redirect(request, "/console")
    services = services_of(request)
    closed = _signup_closed(request, invite)
    if closed is None and invite:
        async with services.db.sessions() as session:
            try:
                await users.peek_link(session, invite, "invite", services.clock.now())
            except LinkUnusable as exc:
                closed = str(exc)
    return render(request, "signup.html", None, closed=closed, invite=invite or "", email="")


@router.post("/signup", response_class=HTMLResponse)
async def signup(request: Request) -> Response:
    form = await checked_form(request, None)
    invite = text(form, "invite") or None
    email = text(form, "email")
    closed = _signup_closed(request, invite)
    if closed is not None:
        return render(request, "signup.html", None, 403, closed=closed, invite="", email="")
    services = services_of(request)
    now = services.clock.now()
    try:
        users.normalize_email(email)
        password = _new_password(form)
        password_hash = await hash_password(password)
        async with services.db.transaction() as session:
            link = None if invite is None else await users.use_link(session, invite, "invite", now)
            user = await users.sign_up(
                session, email, password_hash, now, services.settings.signup_credits, link
            )
            token = await users.start_session(session, user.id, now)
    except IntegrityError:  # the same email signed up at the same moment
        return _signup_refused(request, invite, email, users.EMAIL_TAKEN)
    except ValueError as exc:
        return _signup_refused(request, invite, email, str(exc))
    return _signed_in_response(request, token, "/console", "Welcome! Your account is ready.")


def _signup_refused(request: Request, invite: str | None, email: str, error: str) -> Response:
    return render(
        request, "signup.html", None, 400,
        closed=None, invite=invite or "", email=email, error=error,
    )  # fmt: skip


def _new_password(form: FormData) -> str:
    password = str(form.get("password") or "")
    if password != str(form.get("confirm") or ""):
        raise ValueError("The two passwords do not match.")
    return password


@router.get("/set-password/{token}", response_class=HTMLResponse)
async def set_password_page(request: Request, token: str) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        try:
            link = await users.peek_link(session, token, "password", services.clock.now())
            user = await users.get_user(session, link.user_id or "")
            error, email = None, user.email
        except (LinkUnusable, users.UserNotFound) as exc:
            error, email = str(exc), None
    return render(request, "set_password.html", None, token=token, email=email, unusable=error)


@router.post("/set-password/{token}", response_class=HTMLResponse)
async def set_password(request: Request, token: str) -> Response:
    form = await checked_form(request, None)
    services = services_of(request)
    now = services.clock.now()
    try:
        password_hash = await hash_password(_new_password(form))
        async with services.db.transaction() as session:
            link = await users.use_link(session, token, "password", now)
            user = await users.get_user(session, link.user_id or "")
            await users.set_password(session, user.id, password_hash)
            session_token = await users.start_session(session, user.id, now)
    except LinkUnusable as exc:
        return render(
            request, "set_password.html", None, 400, token=token, email=None, unusable=str(exc)
        )
    except ValueError as exc:
        return render(
            request, "set_password.html", None, 400,
            token=token, email=text(form, "email"), unusable=None, error=str(exc),
        )  # fmt: skip
    return _signed_in_response(request, session_token, "/console", "Your password is set.")


@router.get("/password", response_class=HTMLResponse)
async def password_page(request: Request, who: Who) -> Response:
    return render(request, "password.html", who)


@router.post("/password", response_class=HTMLResponse)
async def change_password(request: Request, who: Who) -> Response:
    form = await checked_form(request, who)
    services = services_of(request)
    address = caller_address(request, services)
    wait = await services.login_throttle.attempt(who.email, address)
    if wait:  # guessing the current password counts like guessing at the sign-in form
        error = f"Too many wrong passwords. Try again in {wait_words(wait)}."
        return render(request, "password.html", who, 429, error=error)
    async with services.db.sessions() as session:
        user = await users.get_user(session, who.user_id)
    if not await verify_password(user.password_hash, str(form.get("current") or "")):
        await services.login_throttle.failed(address)
        return render(request, "password.html", who, 400, error="Your current password is wrong.")
    await services.login_throttle.succeeded(who.email)
    try:
        password_hash = await hash_password(_new_password(form))
    except ValueError as exc:
        return render(request, "password.html", who, 400, error=str(exc))
    now = services.clock.now()
    async with services.db.transaction() as session:
        # Every session ends, this one too; this browser gets a fresh one.
        await users.set_password(session, who.user_id, password_hash)
        token = await users.start_session(session, who.user_id, now)
    return _signed_in_response(
        request, token, "/console", "Password changed. Every other session was signed out."
    )
