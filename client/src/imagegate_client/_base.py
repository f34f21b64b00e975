"""What Client and AsyncClient share: configuration, request bodies, response parsing, and the
pacing of retries and polls. Everything here is free of I/O; the two clients only add it."""

from __future__ import annotations

import math
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
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
    Model,
    ModelList,
    Task,
    TaskCreated,
    TaskList,
    TaskStatus,
    TaskWithId,
    Usage,
    UsageGroup,
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
#: The longest a server holds a request for a task (Prefer: wait=N, ?wait=N), in seconds.
MAX_WAIT = 60
IDEMPOTENCY_HEADER = "Idempotency-Key"

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
        """Seconds to wait before retrying a call after ``error``, or None to raise it."""
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


def idempotency_key(options: CreateOptions) -> str:
    """The create's Idempotency-Key: the caller's, else a new random one. The same key goes
    with every attempt of one create call, so a retry never makes a second task."""
    return options.get("idempotency_key") or uuid.uuid4().hex


def long_poll_seconds(remaining: float) -> int | None:
    """How long to ask the server to hold a request (whole seconds, 1 to MAX_WAIT) with
    ``remaining`` seconds left, or None when not even a second is left."""
    seconds = min(MAX_WAIT, math.floor(remaining))
    return seconds if seconds >= 1 else None


def create_request(
    key: str, wait_until: float | None, timeout: float
) -> tuple[dict[str, str], httpx.Timeout]:
    """The headers and timeout of one attempt of a create. With ``wait_until`` (a
    time.monotonic() deadline) it asks the server to answer once the task is final, for as long
    as the deadline allows (Prefer: wait=N), and waits N seconds longer for the response."""
    headers = {IDEMPOTENCY_HEADER: key}
    wait = long_poll_seconds(wait_until - time.monotonic()) if wait_until is not None else None
    if wait is None:
        return headers, httpx.Timeout(timeout)
    headers["Prefer"] = f"wait={wait}"
    return headers, httpx.Timeout(timeout + wait)


def task_path(task_id: str, action: str = "") -> str:
    """/v1/tasks/{task_id}, or a sub-resource of it (``/cancel``, ``/events``)."""
    if not task_id:
        raise ValueError("task_id must not be empty")
    return f"/v1/tasks/{quote(task_id, safe='')}{action}"


def list_params(
    status: TaskStatus | None,
    created_after: float | datetime | None,
    created_before: float | datetime | None,
    page_size: int,
) -> dict[str, str]:
    """The query of GET /v1/tasks. The bounds are exclusive whole Unix seconds: a fractional
    bound is rounded outwards, which keeps the same tasks (their times are whole seconds)."""
    params = {"limit": str(page_size)}
    if status is not None:
        params["status"] = status
    if created_after is not None:
        params["created_after"] = str(math.floor(_unix(created_after)))
    if created_before is not None:
        params["created_before"] = str(math.ceil(_unix(created_before)))
    return params


def _unix(moment: float | datetime) -> float:
    """Unix seconds; a naive datetime is taken as local time (as datetime.timestamp() does)."""
    return moment.timestamp() if isinstance(moment, datetime) else moment


def usage_params(
    from_: date | str | None, to: date | str | None, group_by: UsageGroup
) -> dict[str, str]:
    """The query of GET /v1/usage; an absent day is left to the server (to: today, from: the 29
    days before)."""
    params: dict[str, str] = {"group_by": group_by}
    for name, day in (("from", from_), ("to", to)):
        if day is not None:
            params[name] = _utc_day(day)
    return params


def _utc_day(day: date | str) -> str:
    """YYYY-MM-DD; an aware datetime's UTC day, a naive one's own day; a str is sent as it is."""
    if isinstance(day, datetime):
        day = (day.astimezone(UTC) if day.tzinfo is not None else day).date()
    return day.isoformat() if isinstance(day, date) else day


def _unwrapped(response: httpx.Response) -> Any:
    """The body, unwrapped from the success envelope {"code", "msg", "data"} when it has one."""
    try:
        body = response.json()
    except ValueError as exc:
        raise unreadable(response, exc) from exc
    if isinstance(body, dict) and "data" in body and "msg" in body:
        return body["data"]
    return body


def _validated(model: type[M], body: Any, response: httpx.Response) -> M:
    try:
        return model.model_validate(body)
    except ValueError as exc:  # pydantic's errors are ValueErrors
        raise unreadable(response, exc) from exc


def unreadable(response: httpx.Response, exc: Exception) -> ImagegateError:
    """A body the SDK cannot read (a proxy's page, say)."""
    summary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ImagegateError(f"unreadable response from {response.url}: {summary}")


def _parsed(model: type[M], response: httpx.Response) -> M:
    """The body as ``model`` (unwrapped from the success envelope); an ImagegateError if the
    SDK cannot read it."""
    return _validated(model, _unwrapped(response), response)


def parse_created(response: httpx.Response) -> tuple[str, Task | None]:
    """The new task's id, and the task itself when the server answered a ``Prefer: wait``
    (None from a server that ignores it)."""
    data = _unwrapped(response)
    if isinstance(data, dict) and "task" in data:
        waited = _validated(TaskWithId, data, response)
        return waited.task_id, waited.task
    return _validated(TaskCreated, data, response).task_id, None


def parse_task(response: httpx.Response) -> Task:
    return _parsed(Task, response)


def parse_task_list(response: httpx.Response) -> TaskList:
    return _parsed(TaskList, response)


def parse_usage(response: httpx.Response) -> Usage:
    return _parsed(Usage, response)


def cancelled(task: Task) -> bool:
    """Whether ``task`` ended by a cancel."""
    return task.status == "failed" and task.error is not None and task.error.code == "cancelled"


def parse_credits(response: httpx.Response) -> Credits:
    return _parsed(Credits, response)


def parse_models(response: httpx.Response) -> list[Model]:
    return _parsed(ModelList, response).models


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
    """Paces wait() with long polls: each poll asks the server to answer once the task is final
    (``?wait=N``, up to MAX_WAIT seconds, never past the deadline), and the next is sent as soon
    as it returns. Polls are never closer than a sleep-poll's pace (0.5 s, backing off to 5 s),
    so a server that answers at once (it ignores ``wait``, or less than a second is left) is
    not hammered. At the deadline WaitTimeoutError carries the last task seen."""

    def __init__(self, task_id: str, timeout: float, *, started: float | None = None) -> None:
        check_timeout(timeout)
        self.task_id, self.timeout = task_id, timeout
        self.deadline = (time.monotonic() if started is None else started) + timeout
        self.interval = _POLL_FIRST
        self.sent = time.monotonic()
        self.last: Task | None = None
        self.error: ImagegateError | None = None

    def request(self, http_timeout: float) -> tuple[dict[str, str], httpx.Timeout]:
        """The query and timeout of the next poll (the timeout covers the server's wait)."""
        self.sent = time.monotonic()
        wait = long_poll_seconds(self.deadline - self.sent)
        if wait is None:
            return {}, httpx.Timeout(http_timeout)
        return {"wait": str(wait)}, httpx.Timeout(http_timeout + wait)

    def seen(self, task: Task) -> None:
        self.last, self.error = task, None

    def failed(self, error: ImagegateError) -> None:
        """A poll failed; a transient error is waited out until the deadline, others raise."""
        if not error.retryable:
            raise error
        self.error = error

    def next_delay(self) -> float:
        """Seconds to sleep before the next poll."""
        now = time.monotonic()
        remaining = self.deadline - now
        if remaining <= 0:
            raise WaitTimeoutError(self.task_id, self.last, self.timeout) from self.error
        delay = self.interval - (now - self.sent)  # a long poll has waited already
        hint = getattr(self.error, "retry_after", None)
        if hint is not None:
            delay = max(delay, hint)
        self.interval = min(_POLL_CAP, self.interval * _POLL_FACTOR)
        return min(max(delay, 0.0), remaining)


def check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must not be negative")


_LINE_END = re.compile(rb"\r\n|\r|\n")


class EventStream:
    """A decoder of server-sent events (text/event-stream, as the HTML standard defines it):
    feed it the bytes as they come, get back the complete events as (type, data). Comment
    lines (``: keep-alive``) and the ``id`` and ``retry`` fields are skipped."""

    def __init__(self) -> None:
        self._buffer = b""
        self._after_cr = False  # the last chunk ended with CR: a LF first in the next ends it too
        self._type = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        *lines, self._buffer = _LINE_END.split(self._buffer + chunk)
        events = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> tuple[str, str] | None:
        if not line:  # a blank line ends the event
            kind, data, self._type, self._data = self._type or "message", self._data, "", []
            return (kind, "\n".join(data)) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        return None


class Follower:
    """Paces events(): the deadline (checked as each event or keep-alive arrives), and the
    reconnects after a stream that broke or ended before the final status. The first event of
    a new stream is the task's state then; one already seen is not repeated."""

    def __init__(self, task_id: str, timeout: float | None) -> None:
        check_timeout(timeout)
        self.task_id, self.timeout = task_id, timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.last: Task | None = None
        self.failures = 0  # reconnects in a row without a new state
        self.stream = EventStream()

    def connect(self, http_timeout: float) -> httpx.Timeout:
        """The timeout of the next stream: reads time out at the deadline at the latest (a read
        that starts later may end up to one keep-alive after it). WaitTimeoutError if the
        deadline has passed."""
        self.check()
        self.stream = EventStream()
        read = http_timeout
        if self.deadline is not None:
            read = min(read, max(self.deadline - time.monotonic(), 0.001))
        return httpx.Timeout(http_timeout, read=read)

    def check(self, error: ImagegateError | None = None) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WaitTimeoutError(self.task_id, self.last, self.timeout or 0.0) from error

    def received(self, chunk: bytes, response: httpx.Response) -> list[Task]:
        """The new states of the task in ``chunk``."""
        tasks = []
        for kind, data in self.stream.feed(chunk):
            if kind != "status":
                continue
            try:
                task = Task.model_validate_json(data)
            except ValueError as exc:
                raise unreadable(response, exc) from exc
            if task != self.last:
                self.last, self.failures = task, 0
                tasks.append(task)
        return tasks

    def failed(
        self, error: ImagegateError, delay_for: Callable[[ImagegateError, int], float | None]
    ) -> float:
        """Seconds to wait before reconnecting after ``error``; raises it when it is not
        transient or the retries are spent, and WaitTimeoutError past the deadline."""
        self.check(error)
        delay = delay_for(error, self.failures)
        if delay is None:
            raise error
        self.failures += 1
        if self.deadline is not None:
            delay = min(delay, max(self.deadline - time.monotonic(), 0.0))
        return delay


EVENT_STREAM_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}


def checked_stream(response: httpx.Response) -> httpx.Response:
    """``response`` if it is a success with an event stream; else its error (the body of an
    error response must have been read)."""
    checked(response)
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "text/event-stream":
        raise ImagegateError(f"unreadable response from {response.url}: not an event stream")
    return response


def stream_ended(task_id: str) -> ImagegateError:
    return APIConnectionError(f"the event stream of task {task_id} ended before it was final")
