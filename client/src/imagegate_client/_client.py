"""Client: the blocking SDK. AsyncClient (_async_client.py) is the same API with ``await``."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from imagegate_client import _base
from imagegate_client._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    BaseClient,
    Follower,
    OnPoll,
    Poller,
)
from imagegate_client._exceptions import ImagegateError, InvalidRequestError, WaitTimeoutError
from imagegate_client._models import (
    CreateOptions,
    Credits,
    Model,
    Task,
    TaskStatus,
    Usage,
    UsageGroup,
)

T = TypeVar("T")


class Client(BaseClient):
    """A client of an imagegate server (or any server speaking the Ideogram V4 task API).

    ``api_key`` and ``base_url`` default to IMAGEGATE_API_KEY and IMAGEGATE_BASE_URL. Every HTTP
    call times out after ``timeout`` seconds. Calls are retried up to ``max_retries`` times on
    429, 5xx and network errors, honouring Retry-After; create too, since it sends an
    Idempotency-Key: a retry after a lost response gets the task the first attempt made, charged
    once. ``transport`` replaces the network (e.g. ``httpx.MockTransport``). Use it as a context
    manager, or call close().
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._http = httpx.Client(transport=transport, **self._http_options())

    def generate(
        self,
        prompt: str,
        *,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        on_poll: OnPoll | None = None,
        **options: Unpack[CreateOptions],
    ) -> Task:
        """Create a task and wait for it: the completed task, or TaskFailedError. Raises
        WaitTimeoutError (with the task id to resume from) after ``timeout`` seconds. The create
        asks the server to answer once the task is final (``Prefer: wait``); if it is not, it
        is waited for as wait() does."""
        started = time.monotonic()
        _base.check_timeout(timeout)
        task_id, task = self._create(prompt, options, wait_until=started + timeout)
        try:
            if task is not None and on_poll is not None:
                on_poll(task)
            if task is None or not task.finished:
                poller = Poller(task_id, timeout, started=started)
                if task is not None:
                    poller.seen(task)
                task = self._wait(poller, on_poll)
            return _base.finished(task)
        except ImagegateError as error:
            error.add_note(f"task {task_id} was created; resume with wait({task_id!r})")
            raise

    def create(self, prompt: str, **options: Unpack[CreateOptions]) -> str:
        """Create a generation task (charged now, refunded if it fails); returns its id.
        ``options``: size, rendering_speed, output_format, callback_url, model, idempotency_key
        (CreateOptions). Retried like every call, with the same Idempotency-Key each time."""
        return self._create(prompt, options)[0]

    def get(self, task_id: str) -> Task:
        """The task's current state."""
        return _base.parse_task(self._call("GET", _base.task_path(task_id)))

    def wait(
        self, task_id: str, *, timeout: float = DEFAULT_WAIT_TIMEOUT, on_poll: OnPoll | None = None
    ) -> Task:
        """Wait until the task is completed or failed, and return it (a failed task is returned,
        not raised). Long polls: each request is answered by the server as soon as the task is
        final (or after up to 60 s). Network trouble, 429s and 5xx are waited out; after
        ``timeout`` seconds WaitTimeoutError carries the last state seen. ``on_poll`` sees the
        state each poll returns (not every change: events() has those)."""
        return self._wait(Poller(task_id, timeout), on_poll)

    def events(
        self, task_id: str, *, timeout: float | None = DEFAULT_WAIT_TIMEOUT
    ) -> Iterator[Task]:
        """The task's state at once and then at every change, until it is final (server-sent
        events). A stream that breaks is reopened (up to ``max_retries`` times in a row without
        news), without repeating a state. After ``timeout`` seconds (None: no limit; checked as
        each event or keep-alive arrives) WaitTimeoutError carries the last state seen."""
        follow = Follower(task_id, timeout)
        path = _base.task_path(task_id, "/events")
        headers = {**self._auth, **_base.EVENT_STREAM_HEADERS}
        while True:
            http_timeout = follow.connect(self.timeout)
            try:
                with (
                    _base.transport_errors(),
                    self._http.stream(
                        "GET", path, headers=headers, timeout=http_timeout
                    ) as response,
                ):
                    if not response.is_success:
                        response.read()
                    _base.checked_stream(response)
                    for chunk in response.iter_bytes():
                        for task in follow.received(chunk, response):
                            yield task
                            if task.finished:
                                return
                        follow.check()
                error = _base.stream_ended(task_id)
            except WaitTimeoutError:
                raise
            except ImagegateError as failure:
                error = failure
            time.sleep(follow.failed(error, self._retry_delay))

    def cancel(self, task_id: str) -> Task:
        """Cancel a pending or processing task: it ends ``failed`` with the error code
        ``cancelled``, refunded. InvalidRequestError if it is already final."""
        path = _base.task_path(task_id, "/cancel")
        tries = 0

        def attempt() -> Task:
            nonlocal tries
            tries += 1
            try:
                return _base.parse_task(_base.checked(self._http.post(path, headers=self._auth)))
            except InvalidRequestError:
                # A retry after a lost response finds the task final: cancelled by the first try?
                if tries > 1 and _base.cancelled(task := self.get(task_id)):
                    return task
                raise

        return self._retrying(attempt, retry=True)

    def tasks(
        self,
        *,
        status: TaskStatus | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
        page_size: int = 20,
    ) -> Iterator[Task]:
        """The account's tasks, newest first, fetched a page (``page_size``, 1 to 100) at a
        time as you iterate. ``status`` and the exclusive bounds ``created_after`` and
        ``created_before`` (Unix seconds or datetimes) filter them."""
        params = _base.list_params(status, created_after, created_before, page_size)
        while True:
            page = _base.parse_task_list(self._call("GET", "/v1/tasks", params=params))
            yield from page.tasks
            if not page.next_cursor:
                return
            params["cursor"] = page.next_cursor

    def usage(
        self,
        *,
        from_: date | str | None = None,
        to: date | str | None = None,
        group_by: UsageGroup = "day",
    ) -> Usage:
        """Tasks created, completed and failed and credits charged, refunded and net over the
        UTC days ``from_`` to ``to`` (inclusive; default: the 30 days to today), one row per
        day, key or rendering speed (``group_by``), and their total."""
        params = _base.usage_params(from_, to, group_by)
        return _base.parse_usage(self._call("GET", "/v1/usage", params=params))

    def credits(self) -> Credits:
        """The account's credit balance."""
        return _base.parse_credits(self._call("GET", "/v1/credits"))

    def models(self) -> list[Model]:
        """The active models this API key may use, by name, with the credits per image the
        account pays at each rendering speed (its price plan applied) and the sizes each offers."""
        return _base.parse_models(self._call("GET", "/v1/models"))

    def webhook_secret(self) -> str:
        """The ``whsec_...`` secret that signs this account's callbacks (imagegate's
        GET /v1/webhooks/secret), for verify_callback."""
        return _base.parse_secret(self._call("GET", "/v1/webhooks/secret"))

    def download(
        self, task: Task, path: str | os.PathLike[str] | None = None, *, index: int = 0
    ) -> Path:
        """Save the task's ``index``-th image to ``path`` (a file, or a directory to keep the
        URL's file name; default: the current directory) and return where it went. The API
        key is not sent: image URLs are public and may point to another host."""
        url = _base.image_url(task, index)

        def fetch() -> bytes:
            return _base.checked(self._http.get(url)).content

        return _base.save_image(url, path, self._retrying(fetch, retry=True))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _create(
        self, prompt: str, options: CreateOptions, wait_until: float | None = None
    ) -> tuple[str, Task | None]:
        body = _base.create_body(prompt, options)
        key = _base.idempotency_key(options)

        def attempt() -> httpx.Response:
            headers, timeout = _base.create_request(key, wait_until, self.timeout)
            response = self._http.post(
                "/v1/images/generations",
                json=body,
                headers={**self._auth, **headers},
                timeout=timeout,
            )
            return _base.checked(response)

        return _base.parse_created(self._retrying(attempt, retry=True))

    def _wait(self, poller: Poller, on_poll: OnPoll | None) -> Task:
        path = _base.task_path(poller.task_id)
        while True:
            params, timeout = poller.request(self.timeout)
            try:
                response = self._call("GET", path, retry=False, params=params, timeout=timeout)
                task = _base.parse_task(response)
            except ImagegateError as error:
                poller.failed(error)
            else:
                if on_poll is not None:
                    on_poll(task)
                if task.finished:
                    return task
                poller.seen(task)
            time.sleep(poller.next_delay())

    def _call(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        def attempt() -> httpx.Response:
            response = self._http.request(method, path, headers=self._auth, **kwargs)
            return _base.checked(response)

        return self._retrying(attempt, retry=retry)

    def _retrying(self, attempt: Callable[[], T], *, retry: bool) -> T:
        for number in itertools.count():
            try:
                with _base.transport_errors():
                    return attempt()
            except ImagegateError as error:
                delay = self._retry_delay(error, number) if retry else None
                if delay is None:
                    raise
            time.sleep(delay)
        raise AssertionError("unreachable")
