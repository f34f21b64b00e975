"""Rendering console pages: templates, the security headers every page carries, flash notices,
CSRF tokens, and the HTML answer to errors under /console."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from imagegate.keys.auth import behind_https
from imagegate.services import Services
from imagegate.users.service import SignedIn

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["csrf_field"] = "csrf_token"


def short_id(task_id: str) -> str:
    """How pages name a task in little room: its last 8 characters. Task ids begin with their
    creation time (UUIDv7), so the first characters are shared by tasks made close together."""
    return task_id[-8:]


templates.env.filters["short"] = short_id

# No inline script or style anywhere, and nothing from another origin: user data in a page can
# never run. Framing is refused (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SESSION_COOKIE = "ig_session"
ANON_COOKIE = "ig_anon"  # anchors the CSRF token of forms shown before sign-in
FLASH_COOKIE = "ig_flash"
COOKIE_PATH = "/console"


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def sign(services: Services, purpose: str, value: str) -> str:
    key = services.hasher.derive("console")
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request, who: SignedIn | None) -> str:
    """The form token of this browser: bound to its session, or before sign-in to its anchor
    cookie; so a logout also voids every form the session had."""
    services = services_of(request)
    if who is not None:
        return sign(services, "csrf", who.session_id)
    return sign(services, "csrf-anon", anon_anchor(request))


def anon_anchor(request: Request) -> str:
    anchor: str | None = getattr(request.state, "anon_anchor", None)
    if anchor is None:
        anchor = request.cookies.get(ANON_COOKIE) or secrets.token_hex(32)
        request.state.anon_anchor = anchor
    return anchor


def is_https(request: Request) -> bool:
    return behind_https(request, services_of(request))


def set_cookie(request: Request, response: Response, name: str, value: str, **options: Any) -> None:
    """Console cookies: HttpOnly, SameSite=Lax, Secure when the console is reached over https."""
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        **options,
    )


def flash(request: Request, response: Response, message: str) -> None:
    """A notice shown once, on the next page this browser opens."""
    services = services_of(request)
    value = quote(message, safe="") + "." + sign(services, "flash", message)[:32]
    set_cookie(request, response, FLASH_COOKIE, value, max_age=60)


def _take_flash(request: Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return None
    quoted, signature = raw.rsplit(".", 1)
    message = unquote(quoted)
    expected = sign(services_of(request), "flash", message)[:32]
    return message if hmac.compare_digest(signature, expected) else None


def redirect(request: Request, url: str, notice: str | None = None) -> RedirectResponse:
    """303 to ``url`` (after a form post), with an optional notice for the next page."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        flash(request, response, notice)
    return response


def render(
    request: Request,
    template: str,
    who: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page, with the signed-in person, their CSRF token and any flash notice."""
    notice = _take_flash(request)
    response = templates.TemplateResponse(
        request,
        template,
        {"who": who, "csrf": csrf_token(request, who), "notice": notice, **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    if notice is not None or FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    if who is None and request.cookies.get(ANON_COOKIE) != anon_anchor(request):
        set_cookie(request, response, ANON_COOKIE, anon_anchor(request))
    return response


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    who: SignedIn | None = getattr(request.state, "who", None)
    return render(request, "error.html", who, status_code=status_code, title=title, message=message)
