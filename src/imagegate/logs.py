"""What every log line carries and never carries: the request and task it is about (context
variables, set by the request's middleware and by the job that runs), and no secret (one-time
console links carry their token in the URL; API keys never appear).

Jobs carry the request id of the request that made them (jobs/queue.py), so a task's lines
share one request id from the API through the worker to its callback.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any

from starlette.types import Scope

_SECRET_IN_URL = re.compile(r"(/console/set-password/|[?&]invite=)[A-Za-z0-9_\-]+")
_API_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
# A client's X-Request-Id is kept when it is a plain token; anything else gets one of ours.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-Id"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id: ContextVar[str | None] = ContextVar("task_id", default=None)
Tokens = tuple[Token[str | None], Token[str | None]]


def redact(text: str) -> str:
    # Most lines hold none of them: a substring test costs a tenth of a regular expression's.
    if "sk-" in text:
        text = _API_KEY.sub("sk-[redacted]", text)
    if "/console/set-password/" in text or "invite=" in text:
        text = _SECRET_IN_URL.sub(r"\1[redacted]", text)
    return text


class RedactUrls(logging.Filter):
    """Masks one-time link tokens and API keys in the arguments and message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class ContextIds(logging.Filter):
    """Puts the current request id and task id on every record (None when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or request_id.get()
        record.task_id = getattr(record, "task_id", None) or task_id.get()
        return True


def redact_access_log() -> None:
    """Install the filters on uvicorn's access and error loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())


def about_task(id_: str) -> None:
    """The rest of this request (or job) is about task ``id_``."""
    task_id.set(id_)


@contextlib.contextmanager
def job_context(args: Mapping[str, Any]) -> Iterator[None]:
    """A job's lines carry its task and the request that made it (from its arguments)."""
    tokens = (request_id.set(args.get("request_id")), task_id.set(args.get("task_id")))
    try:
        yield
    finally:
        end_request(tokens)


def with_request_id(args: dict[str, Any]) -> dict[str, Any]:
    """A new job's arguments, with the current request id when there is one."""
    current = request_id.get()
    return args if current is None or "request_id" in args else {**args, "request_id": current}


def begin_request(scope: Scope) -> tuple[str, Tokens]:
    """The request's id: the client's X-Request-Id when it is a plain token (up to 128 of
    A-Z a-z 0-9 . _ : -), else a new one; set for the request's lines until end_request. The
    response returns it in X-Request-Id (http_edge.py)."""
    given = _header(scope, b"x-request-id")
    current = given if given and _REQUEST_ID.match(given) else secrets.token_hex(16)
    return current, (request_id.set(current), task_id.set(None))


def end_request(tokens: Tokens) -> None:
    task_id.reset(tokens[1])
    request_id.reset(tokens[0])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
