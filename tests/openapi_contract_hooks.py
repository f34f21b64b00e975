"""Schemathesis hooks of tests/test_openapi_contract.py, loaded by its schemathesis process
(SCHEMATHESIS_HOOKS). Each one is a deliberate exception to "the schema says it all" and says
why; nothing else is excused."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import schemathesis
from pydantic import ValidationError

from imagegate.tasks.idempotency import HEADER, MAX_CHARS
from imagegate.tasks.schemas import CreateTaskRequest

CALLBACK_URL = os.environ["IMAGEGATE_CONTRACT_CALLBACK_URL"]

# Valid requests that the server refuses (400 invalid_request) for a reason no schema of one
# request can state, by operation: the error messages that say so ("..." stands for any text).
REFUSED_BY_STATE: dict[str, tuple[str, ...]] = {
    # A cursor is opaque: only a next_cursor the server handed out is one. The schema can give
    # its alphabet and length, not which strings it made.
    "GET /v1/tasks": ("The page cursor is not valid.",),
    # Two parameters together: 'from' after 'to', or a period of more than 366 days (also with
    # one of them left to its default); JSON Schema has no rule across query parameters.
    "GET /v1/usage": ("'from' must not be after 'to'.", "The period must be at most 366 days."),
    # Only a pending or processing task can be cancelled: the task's state, not the request's
    # shape. (Not 409: the reference's table has no such status, and the SDK reads this 400.)
    "POST /v1/tasks/{taskId}/cancel": ("Task '...' is already completed; ",
                                       "Task '...' is already failed; "),
}  # fmt: skip


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    _callbacks_stay_on_loopback(case)
    _one_key_per_body(case)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a valid request's 400 listed in REFUSED_BY_STATE."""
    if type(failure).__name__ != "RejectedPositiveData" or response.status_code != 400:
        return True
    try:
        message = json.loads(response.content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return True
    expected = REFUSED_BY_STATE.get(f"{case.method} {case.operation.path}", ())
    return not any(_matches(message, pattern) for pattern in expected)


def _matches(message: str, pattern: str) -> bool:
    head, elided, tail = pattern.partition("...")
    if not elided:
        return message == pattern
    return message.startswith(head) and tail in message[len(head) :]


def _callbacks_stay_on_loopback(case: Any) -> None:
    """A callback_url the server would accept becomes the test's loopback receiver: generated
    hosts must not be looked up or called. (One it refuses stays: that is what is tested.)"""
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("callback_url"), str):
        return
    probe = {"model": "m", "input": {"prompt": "p"}, "callback_url": body["callback_url"]}
    try:
        CreateTaskRequest.model_validate(probe)
    except ValidationError:
        return
    body["callback_url"] = CALLBACK_URL


def _one_key_per_body(case: Any) -> None:
    """An Idempotency-Key sent again with another body is refused (400) by design: a rule
    between two requests, which no schema of one request can state. A valid key is made unique
    to its body (the same key and body still replay); an invalid one is left as it is."""
    headers = case.headers or {}
    key = headers.get(HEADER)
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_CHARS or not key.strip():
        return
    if not all(" " <= char <= "~" for char in key):
        return
    digest = hashlib.sha256(repr(case.body).encode()).hexdigest()[:16]
    headers[HEADER] = f"{digest}.{key}"[:MAX_CHARS]
