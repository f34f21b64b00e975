"""AsyncClient: Client's API for asyncio. The rules live in _base.py; this adds ``await``."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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


class AsyncClient(BaseClient):
    """The asyncio twin of Client: the same arguments, methods and errors, awaited.

    ``api_key`` and ``base_url`` default to IMAGEGATE_API_KEY and IMAGEGATE_BASE_URL; every HTTP
    call times out after ``timeout`` seconds; calls are retried, create too, with one
    Idempotency-Key (see Client); ``transport`` replaces the network. Use ``async with``, or
    await aclose().
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())

    async def generate(
        self,
        prompt: str,
        *,
        # Not asyncio.timeout(): at the deadline WaitTimeoutError keeps the task id and last state.
        timeout: float = DEFAULT_WAIT_TIMEOUT,  # noqa: ASYNC109
        on_poll: OnPoll | None = None,
        **options: Unpack[CreateOptions],
    ) -> Task:
        """Create a task and wait for it (see Client.generate)."""
        started = time.monotonic()
        _base.check_timeout(timeout)
        task_id, task = await self._create(prompt, options, wait_until=started + timeout)
        try:
            if task is not None and on_poll is not None:
                on_poll(task)
            if task is None or not task.finished:
                poller = Poller(task_id, timeout, started=started)
                if task is not None:
                    poller.seen(task)
                task = await self._wait(poller, on_poll)
            return _base.finished(task)
        except ImagegateError as error:
            error.add_note(f"task {task_id} was created; resume with wait({task_id!r})")
            raise

    async def create(self, prompt: str, **options: Unpack[CreateOptions]) -> str:
        """Create a generation task; returns its id. Retried with one Idempotency-Key (see
        Client.create)."""
        return (await self._create(prompt, options))[0]

    async def get(self, task_id: str) -> Task:
        """The task's current state."""
        return _base.parse_task(await self._call("GET", _base.task_path(task_id)))

    async def wait(
        self,
        task_id: str,
        *,
        timeout: float = DEFAULT_WAIT_TIMEOUT,  # noqa: ASYNC109 - see generate
        on_poll: OnPoll | None = None,
    ) -> Task:
        """Long-poll until the task is completed or failed, and return it (see Client.wait)."""
        return await self._wait(Poller(task_id, timeout), on_poll)

    async def events(
        self,
        task_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,  # noqa: ASYNC109 - see generate
    ) -> AsyncIterator[Task]:
        """The task's state at once and at every change until it is final (see Client.events).
        Use ``contextlib.aclosing`` to close the stream when you stop early."""
        follow = Follower(task_id, timeout)
        path = _base.task_path(task_id, "/events")
        headers = {**self._auth, **_base.EVENT_STREAM_HEADERS}
        while True:
            http_timeout = follow.connect(self.timeout)
            try:
                with _base.transport_errors():
                    stream = self._http.stream("GET", path, headers=headers, timeout=http_timeout)
                    async with stream as response:
                        if not response.is_success:
                            await response.aread()
                        _base.checked_stream(response)
                        async for chunk in response.aiter_bytes():
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
            await asyncio.sleep(follow.failed(error, self._retry_delay))

    async def cancel(self, task_id: str) -> Task:
        """Cancel a pending or processing task (see Client.cancel)."""
        path = _base.task_path(task_id, "/cancel")
        tries = 0

        async def attempt() -> Task:
            nonlocal tries
            tries += 1
            try:
                response = await self._http.post(path, headers=self._auth)
                return _base.parse_task(_base.checked(response))
            except InvalidRequestError:
                # A retry after a lost response finds the task final: cancelled by the first try?
                if tries > 1 and _base.cancelled(task := await self.get(task_id)):
                    return task
                raise

        return await self._retrying(attempt, retry=True)

    async def tasks(
        self,
        *,
        status: TaskStatus | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
        page_size: int = 20,
    ) -> AsyncIterator[Task]:
        """The account's tasks, newest first, a page at a time (see Client.tasks)."""
        params = _base.list_params(status, created_after, created_before, page_size)
        while True:
            page = _base.parse_task_list(await self._call("GET", "/v1/tasks", params=params))
            for task in page.tasks:
                yield task
            if not page.next_cursor:
                return
            params["cursor"] = page.next_cursor

    async def usage(
        self,
        *,
        from_: date | str | None = None,
        to: date | str | None = None,
        group_by: UsageGroup = "day",
    ) -> Usage:
        """The account's usage by day, key or speed (see Client.usage)."""
        params = _base.usage_params(from_, to, group_by)
        return _base.parse_usage(await self._call("GET", "/v1/usage", params=params))

    async def credits(self) -> Credits:
        """The account's credit balance."""
        return _base.parse_credits(await self._call("GET", "/v1/credits"))

    async def models(self) -> list[Model]:
        """The models this key may use (see Client.models)."""
        return _base.parse_models(await self._call("GET", "/v1/models"))

    async def webhook_secret(self) -> str:
        """The ``whsec_...`` secret that signs this account's callbacks."""
        return _base.parse_secret(await self._call("GET", "/v1/webhooks/secret"))

    async def download(
        self, task: Task, path: str | os.PathLike[str] | None = None, *, index: int = 0
    ) -> Path:
        """Save the task's ``index``-th image to ``path`` (see Client.download)."""
        url = _base.image_url(task, index)

        async def fetch() -> bytes:
            return _base.checked(await self._http.get(url)).content

        data = await self._retrying(fetch, retry=True)
        return await asyncio.to_thread(_base.save_image, url, path, data)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _create(
        self, prompt: str, options: CreateOptions, wait_until: float | None = None
    ) -> tuple[str, Task | None]:
        body = _base.create_body(prompt, options)
        key = _base.idempotency_key(options)

        async def attempt() -> httpx.Response:
            headers, timeout = _base.create_request(key, wait_until, self.timeout)
            response = await self._http.post(
                "/v1/images/generations",
                json=body,
                headers={**self._auth, **headers},
                timeout=timeout,
            )
            return _base.checked(response)

        return _base.parse_created(await self._retrying(attempt, retry=True))

    async def _wait(self, poller: Poller, on_poll: OnPoll | None) -> Task:
        path = _base.task_path(poller.task_id)
        while True:
            params, timeout = poller.request(self.timeout)
            try:
                response = await self._call(
                    "GET", path, retry=False, params=params, timeout=timeout
                )
                task = _base.parse_task(response)
            except ImagegateError as error:
                poller.failed(error)
            else:
                if on_poll is not None:
                    on_poll(task)
                if task.finished:
                    return task
                poller.seen(task)
            await asyncio.sleep(poller.next_delay())

    async def _call(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> httpx.Response:
        async def attempt() -> httpx.Response:
            response = await self._http.request(method, path, headers=self._auth, **kwargs)
            return _base.checked(response)

        return await self._retrying(attempt, retry=retry)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], *, retry: bool) -> T:
        for number in itertools.count():
            try:
                with _base.transport_errors():
                    return await attempt()
            except ImagegateError as error:
                delay = self._retry_delay(error, number) if retry else None
                if delay is None:
                    raise
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")
