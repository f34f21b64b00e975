"""AsyncClient: Client's API for asyncio. The rules live in _base.py; this adds ``await``."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable
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
    OnPoll,
    Poller,
)
from imagegate_client._exceptions import ImagegateError
from imagegate_client._models import CreateOptions, Credits, Task

T = TypeVar("T")


class AsyncClient(BaseClient):
    """The asyncio twin of Client: the same arguments, methods and errors, awaited.

    ``api_key`` and ``base_url`` default to IMAGEGATE_API_KEY and IMAGEGATE_BASE_URL; every HTTP
    call times out after ``timeout`` seconds; safe calls are retried (create never is; see
    Client); ``transport`` replaces the network. Use ``async with``, or await aclose().
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
        task_id = await self.create(prompt, **options)
        try:
            return _base.finished(await self.wait(task_id, timeout=timeout, on_poll=on_poll))
        except ImagegateError as error:
            error.add_note(f"task {task_id} was created; resume with wait({task_id!r})")
            raise

    async def create(self, prompt: str, **options: Unpack[CreateOptions]) -> str:
        """Create a generation task; returns its id. Never retried (see Client)."""
        body = _base.create_body(prompt, options)
        response = await self._call("POST", "/v1/images/generations", json=body, retry=False)
        return _base.parse_created(response)

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
        """Poll until the task is completed or failed, and return it (see Client.wait)."""
        poller = Poller(task_id, timeout)
        while True:
            try:
                task = await self._get_once(task_id)
            except ImagegateError as error:
                poller.failed(error)
            else:
                if on_poll is not None:
                    on_poll(task)
                if task.finished:
                    return task
                poller.seen(task)
            await asyncio.sleep(poller.next_delay())

    async def credits(self) -> Credits:
        """The account's credit balance."""
        return _base.parse_credits(await self._call("GET", "/v1/credits"))

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

    async def _get_once(self, task_id: str) -> Task:
        return _base.parse_task(await self._call("GET", _base.task_path(task_id), retry=False))

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
