"""Client: the blocking SDK. AsyncClient (_async_client.py) is the same API with ``await``."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
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


class Client(BaseClient):
    """A client of an imagegate server (or any server speaking the Ideogram V4 task API).

    ``api_key`` and ``base_url`` default to IMAGEGATE_API_KEY and IMAGEGATE_BASE_URL. Every HTTP
    call times out after ``timeout`` seconds. Safe calls (get, credits, download) are retried up
    to ``max_retries`` times on 429, 5xx and network errors, honouring Retry-After; create is
    never retried, since a retry after a lost response would create and charge a second task.
    ``transport`` replaces the network (e.g. ``httpx.MockTransport``). Use it as a context
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
        WaitTimeoutError (with the task id to resume from) after ``timeout`` seconds."""
        task_id = self.create(prompt, **options)
        try:
            return _base.finished(self.wait(task_id, timeout=timeout, on_poll=on_poll))
        except ImagegateError as error:
            error.add_note(f"task {task_id} was created; resume with wait({task_id!r})")
            raise

    def create(self, prompt: str, **options: Unpack[CreateOptions]) -> str:
        """Create a generation task (charged now, refunded if it fails); returns its id.
        ``options``: size, rendering_speed, output_format, callback_url, model (CreateOptions)."""
        body = _base.create_body(prompt, options)
        response = self._call("POST", "/v1/images/generations", json=body, retry=False)
        return _base.parse_created(response)

    def get(self, task_id: str) -> Task:
        """The task's current state."""
        return _base.parse_task(self._call("GET", _base.task_path(task_id)))

    def wait(
        self, task_id: str, *, timeout: float = DEFAULT_WAIT_TIMEOUT, on_poll: OnPoll | None = None
    ) -> Task:
        """Poll until the task is completed or failed, and return it (a failed task is returned,
        not raised). Network trouble, 429s and 5xx are waited out; after ``timeout`` seconds
        WaitTimeoutError carries the last state seen. ``on_poll`` sees every state polled."""
        poller = Poller(task_id, timeout)
        while True:
            try:
                task = self._get_once(task_id)
            except ImagegateError as error:
                poller.failed(error)
            else:
                if on_poll is not None:
                    on_poll(task)
                if task.finished:
                    return task
                poller.seen(task)
            time.sleep(poller.next_delay())

    def credits(self) -> Credits:
        """The account's credit balance."""
        return _base.parse_credits(self._call("GET", "/v1/credits"))

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

    def _get_once(self, task_id: str) -> Task:
        return _base.parse_task(self._call("GET", _base.task_path(task_id), retry=False))

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
