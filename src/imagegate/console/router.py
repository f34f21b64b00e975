"""The console's routes, static files and error pages, installed on the app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from imagegate.console import (
    alerts,
    billing,
    codes,
    home,
    keys,
    models,
    operators,
    signin,
    tasks,
    topup,
)
from imagegate.console.auth import (
    FormRefused,
    LoginRequired,
    PageNotFound,
    UnreadableInput,
    login_url,
)
from imagegate.console.web import HERE, error_page

PREFIX = "/console"

root = APIRouter(include_in_schema=False)


@root.get("/")
async def to_console() -> RedirectResponse:
    return RedirectResponse(PREFIX, status_code=307)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_url(exc.next_url), status_code=303)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageNotFound)
    return error_page(request, 404, "Not found", exc.message)


async def _form_refused(request: Request, _exc: Exception) -> Response:
    return error_page(
        request,
        403,
        "Form expired",
        "This form has expired or was not sent from this console. Go back, reload the page and "
        "try again.",
    )


async def _unreadable(request: Request, _exc: Exception) -> Response:
    return error_page(
        request,
        400,
        "Request refused",
        "The address or the form holds a character that is not allowed (NUL). Remove it and "
        "try again.",
    )


def console_error(request: Request, status: int, message: str) -> Response:
    """The HTML answer for a routing error under /console (the API's is the JSON envelope)."""
    title = "Not found" if status == 404 else "Request refused"
    text = "There is no such page." if status == 404 else message
    return error_page(request, status, title, text)


def install_console(app: FastAPI) -> None:
    for module in (signin, home, keys, tasks, billing, topup, codes, alerts, operators, models):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(root)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageNotFound, _not_found)
    app.add_exception_handler(FormRefused, _form_refused)
    app.add_exception_handler(UnreadableInput, _unreadable)
