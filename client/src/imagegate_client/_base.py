"""What Client and AsyncClient share: configuration, request bodies, response parsing, and the
pacing of retries and polls. Everything here is free of I/O; the two clients only add it."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel

from imagegate_client._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ImagegateError,
    TaskFailedError,
    WaitTimeoutError,
    error_from_response,
)
from imagegate_client._models import (
    DEFAULT_MODEL,
    CreateOptions,
    CreateTaskRequest,
    Credits,
    GenerationInput,
    Task,
    TaskCreated,
    WebhookSecret,
)
from imagegate_client._version import __version__

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 60.0  # seconds, for every HTTP call
DEFAULT_WAIT_TIMEOUT = 300.0  # seconds, for wait() and generate()
DEFAULT_MAX_RETRIES = 2
# A Retry-After longer than this is not slept through: the error is raised at once, with its
# retry_after, so no call blocks for minutes on a limit.
MAX_RETRY_AFTER = 30.0
_BACKOFF_BASE, _BACKOFF_CAP = 0.5, 8.0
_POLL_FIRST, _POLL_FACTOR, _POLL_CAP = 0.5, 1.5, 5.0

M = TypeVar("M", bound=BaseModel)

#: Called with each task state that wait() sees; generate() and wait() accept one.
OnPoll = Callable[[Task], None]


class BaseClient:
    """Configuration and the parts of each call that do no I/O."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
    ) -> None:
        api_key = api_key or os.environ.get("IMAGEGATE_API_KEY")
        if not api_key:
            raise ImagegateError("no API key: pass api_key= or set IMAGEGATE_API_KEY")
        if timeout <= 0 or max_retries < 0:
            raise ValueError("timeout must be positive and max_retries not negative")
        self.api_key = api_key
        base_url = base_url or os.environ.get("IMAGEGATE_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries

    def _http_options(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "timeout": httpx.Timeout(self.timeout),
            "headers": {"User-Agent": f"imagegate-client/{__version__}"},
            "follow_redirects": False,
        }

    @property
    def _auth(self) -> dict[str, str]:
        # Per request, not on the HTTP client: image downloads may go to another host.
        return {"Authorization": f"Bearer {self.api_key}"}

    def _retry_delay(self, error: ImagegateError, attempt: int) -> float | None:
        """Seconds to wait before retrying a safe call after ``error``, or None to raise it."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        hint = getattr(error, "retry_after", None)
        if hint is not None:
            return hint if hint <= MAX_RETRY_AFTER else None
        return backoff(attempt)


def backoff(attempt: int) -> float:
    """Capped exponential backoff with jitter: about 0.5, 1, 2, 4, 8, 8... seconds."""
    return min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0**attempt) * random.uniform(0.75, 1.0)


@contextmanager
def transport_errors() -> Iterator[None]:
    """httpx's network errors as the SDK's."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise APITimeoutError(f"no response in time: {exc}".rstrip(": ")) from exc
    except httpx.TransportError as exc:
        raise APIConnectionError(f"connection failed: {exc}".rstrip(": ")) from exc


def checked(response: httpx.Response) -> httpx.Response:
    """``response`` if it is a success; else its error as an exception (body already read)."""
    if response.is_success:
        return response
    raise error_from_response(response)


def create_body(prompt: str, options: CreateOptions) -> dict[str, Any]:
    """The JSON body of a create call. Not validated here: the server is the judge of its own
    input (another server may offer other sizes), and answers 400 naming a bad field."""
    request = CreateTaskRequest.model_construct(
        model=options.get("model") or DEFAULT_MODEL,
        input=GenerationInput.model_construct(
            prompt=prompt,
            size=options.get("size"),
            rendering_speed=options.get("rendering_speed"),
            output_format=options.get("output_format"),
        ),
        callback_url=options.get("callback_url"),
    )
    return request.model_dump(exclude_none=True, warnings=False)


def task_path(task_id: str) -> str:
    if not task_id:
        raise ValueError("task_id must not be empty")
    return f"/v1/tasks/{quote(task_id, safe='')}"


def _parsed(model: type[M], response: httpx.Response) -> M:
    """The body as ``model``, unwrapped from the success envelope {"code", "msg", "data"} when
    it has one; a body the SDK cannot read (a proxy's page, say) is an ImagegateError."""
    try:
        body = response.json()
        if isinstance(body, dict) and "data" in body and "msg" in body:
            body = body["data"]
        return model.model_validate(body)
    except ValueError as exc:  # not JSON, or not the model (pydantic's errors are ValueErrors)
        summary = str(exc).splitlines()[0]
        raise ImagegateError(f"unreadable response from {response.url}: {summary}") from exc


def parse_created(response: httpx.Response) -> str:
    return _parsed(TaskCreated, response).task_id


def parse_task(response: httpx.Response) -> Task:
    return _parsed(Task, response)


def parse_credits(response: httpx.Response) -> Credits:
    return _parsed(Credits, response)


def parse_secret(response: httpx.Response) -> str:
    return _parsed(WebhookSecret, response).secret


def finished(task: Task) -> Task:
    """``task`` if it completed; TaskFailedError if it failed."""
    if task.status == "failed":
        raise TaskFailedError(task)
    return task


def image_url(task: Task, index: int) -> str:
    """The ``index``-th image URL of a completed task."""
    finished(task)
    if task.status != "completed":
        raise ValueError(f"task {task.id} is {task.status}; wait for it to complete first")
    return task.urls[index]


def save_image(url: str, path: str | os.PathLike[str] | None, data: bytes) -> Path:
    """Write the image ``data`` of ``url`` to ``path``, or to the URL's file name inside ``path``
    when it is a directory (the current directory when None), whole or not at all."""
    target = Path(path) if path is not None else Path.cwd()
    if target.is_dir():
        target = target / (Path(urlsplit(url).path).name or "image")
    partial = target.with_name(f".{target.name}.part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


class Poller:
    """Paces wait(): quick polls first, backing off to one every few seconds; never past the
    deadline, where it raises WaitTimeoutError carrying the last task seen."""

    def __init__(self, task_id: str, timeout: float) -> None:
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        self.task_id, self.timeout = task_id, timeout
        self.deadline = time.monotonic() + timeout
        self.interval = _POLL_FIRST
        self.last: Task | None = None
        self.error: ImagegateError | None = None

    def seen(self, task: Task) -> None:
        self.last, self.error = task, None

    def failed(self, error: ImagegateError) -> None:
        """A poll failed; a transient error is waited out until the deadline, others raise."""
        if not error.retryable:
            raise error
        self.error = error

    def next_delay(self) -> float:
        """Seconds to sleep before the next poll."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(self.task_id, self.last, self.timeout) from self.error
        delay = self.interval
        hint = getattr(self.error, "retry_after", None)
        if hint is not None:
            delay = max(delay, hint)
        self.interval = min(_POLL_CAP, self.interval * _POLL_FACTOR)
        return min(delay, remaining)
