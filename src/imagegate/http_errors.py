"""Every error a client sees is the reference's envelope: {"error": {code, message, type}};
under a prefix given another shape (OpenAI's, openai_api/errors.py) that shape instead, and
under the console's, a page for people."""

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


# Another API's error shape under its prefix: the same error, as that API's clients expect it.
ErrorShape = Callable[[ApiError], Response]


def _respond(request: Request, error: ApiError) -> Response:
    shapes: dict[str, ErrorShape] = getattr(request.app.state, "error_shapes", {})
    for prefix, shape in shapes.items():
        if _under(request, prefix):
            return shape(error)
    return error_response(error)


async def handled_error(request: Request, exc: Exception) -> Response | None:
    """What the handlers below answer for ``exc`` (an error of the API, or a client that went
    away), for a route answered outside FastAPI's exception handlers (http_hot.py); None for
    anything else (the 500 handler takes it)."""
    if isinstance(exc, ApiError):
        return _respond(request, exc)
    if isinstance(exc, ClientDisconnect):
        return await _client_gone(request, exc)
    return None


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _respond(request, exc)


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
        return _respond(request, MethodNotAllowed(message, headers=headers))
    if exc.status_code == 404:
        message = f"Unknown endpoint: {request.method} {request.url.path}."
        return _respond(request, UnknownEndpoint(message, headers=headers))
    return _respond(request, InvalidRequest(str(exc.detail), headers=headers))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ("body", "path", "query", "header")
    field = ".".join(str(part) for part in first.get("loc", ()) if part not in where)
    problem = str(first.get("msg", "")).removeprefix("Value error, ")
    if not field:
        return _respond(request, InvalidRequest())
    return _respond(request, InvalidRequest(f"'{field}' is invalid: {problem}." if problem
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
    return _respond(request, InternalError())


def _html_errors(request: Request) -> HtmlErrors | None:
    prefixes: dict[str, HtmlErrors] = getattr(request.app.state, "html_errors", {})
    for prefix, handler in prefixes.items():
        if _under(request, prefix):
            return handler
    return None


def _under(request: Request, prefix: str) -> bool:
    return request.url.path == prefix or request.url.path.startswith(prefix + "/")


def install_error_handlers(
    app: FastAPI,
    html: dict[str, HtmlErrors] | None = None,
    shapes: dict[str, ErrorShape] | None = None,
) -> None:
    """The envelope for every error, except under the ``html`` prefixes (pages for people) and
    the ``shapes`` prefixes (other APIs' error bodies)."""
    app.state.html_errors = html or {}
    app.state.error_shapes = shapes or {}
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
