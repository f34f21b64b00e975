"""A real HTTP callback receiver on loopback that records what arrives and answers as scripted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from harness import serve_asgi, wait_for

HANG = -1  # a scripted "status" that never answers


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    answered: int = 0  # the status the receiver answered with (HANG: none)


@dataclass
class Receiver:
    """Answers the n-th request with ``script(n)`` (an HTTP status, or HANG)."""

    script: Callable[[int], int]
    url: str = ""
    received: list[Received] = field(default_factory=list)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        received = Received(scope["path"], headers, body, time.monotonic())
        self.received.append(received)
        status = received.answered = self.script(len(self.received))
        if status == HANG:
            await self._release.wait()
            return
        extra = [(b"location", b"http://127.0.0.1:1/elsewhere")] if 300 <= status < 400 else []
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b"ok"})

    async def count(self, n: int, within: float = 20) -> list[Received]:
        """Wait until at least ``n`` requests arrived."""

        async def enough() -> list[Received] | None:
            return self.received if len(self.received) >= n else None

        return await wait_for(enough, within)


@asynccontextmanager
async def running_receiver(
    script: Callable[[int], int] = lambda _n: 200,
) -> AsyncIterator[Receiver]:
    receiver = Receiver(script)
    async with serve_asgi(receiver, on_exit=receiver._release.set) as base_url:
        receiver.url = f"{base_url}/hook"
        yield receiver
