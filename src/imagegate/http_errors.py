"""Every error a client sees is the reference's envelope: {"error": {code, message, type}}."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from imagegate.errors import (
    ApiError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    UnknownEndpoint,
)

log = logging.getLogger(__name__)


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.envelope(), status_code=error.status, headers=error.headers)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


# Pages for people (the console) answer errors under their prefix in HTML, not the envelope.
HtmlErrors = Callable[[Request, int, str], Response]


async def _http_error(request: Request, exc: Exception) -> Response:
    # Routing errors (unknown path or method) use the table's invalid_request row.
    assert isinstance(exc, StarletteHTTPException)
    html = _html_errors(request)
    if html is not None:
        return html(request, exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
        return error_response(MethodNotAllowed(message, headers=headers))
    if exc.status_code == 404:
        message = f"Unknown endpoint: {request.method} {request.url.path}."
        return error_response(UnknownEndpoint(message, headers=headers))
    return error_response(InvalidRequest(str(exc.detail), headers=headers))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ("body", "path", "query", "header")
    field = ".".join(str(part) for part in first.get("loc", ()) if part not in where)
    problem = str(first.get("msg", "")).removeprefix("Value error, ")
    if not field:
        return error_response(InvalidRequest())
    return error_response(InvalidRequest(f"'{field}' is invalid: {problem}." if problem
                                         else f"'{field}' is invalid."))  # fmt: skip


async def _client_gone(request: Request, _exc: Exception) -> Response:
    # An ordinary event: the body was not read in full, so nothing was written.
    log.info("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=400)  # nobody is left to read it


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    html = _html_errors(request)
    if html is not None:
        return html(request, 500, "Something went wrong on our side. Please try again.")
    return error_response(InternalError())


def _html_errors(request: Request) -> HtmlErrors | None:
    prefixes: dict[str, HtmlErrors] = getattr(request.app.state, "html_errors", {})
    for prefix, handler in prefixes.items():
        if request.url.path == prefix or request.url.path.startswith(prefix + "/"):
            return handler
    return None


def install_error_handlers(app: FastAPI, html: dict[str, HtmlErrors] | None = None) -> None:
    """The envelope for every error, except under the ``html`` prefixes (pages for people)."""
    app.state.html_errors = html or {}
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
