"""Servers for the SDK's tests: imagegate in a thread of its own (for the blocking Client and the
CLI's processes), a scripted server speaking the reference's wire format, a provider to hold."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from harness import Account, Server, running_server
from imagegate.config import Settings
from imagegate.keys.policy import PolicyChange
from imagegate.providers.base import GeneratedImage, GenerationRequest, Provider
from imagegate.providers.simulator import SimulatorProvider

T = TypeVar("T")


@dataclass
class Live:
    """A real imagegate server running in another thread's event loop."""

    server: Server
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` in the server's loop (e.g. to provision an account)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def account(self, credits: int = 1000, policy: PolicyChange | None = None) -> Account:
        return self.run(self.server.account(credits, policy=policy))


@contextmanager
def live_server(settings: Settings, providers: dict[str, Provider] | None = None) -> Iterator[Live]:
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[tuple[Server, asyncio.Event]] = concurrent.futures.Future()

    async def serve() -> None:
        try:
            async with running_server(settings, providers) as server:
                stop = asyncio.Event()
                ready.set_result((server, stop))
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    server, stop = ready.result(timeout=60)
    try:
        yield Live(server, loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


class HeldProvider:
    """The simulator, but each generation waits until ``release()`` (from any thread)."""

    name = "held"

    def __init__(self) -> None:
        self._simulator = SimulatorProvider(lambda _speed: 0.0)
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        await asyncio.to_thread(self._released.wait, 60)
        return await self._simulator.generate(request)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (to provoke client timeouts)


@dataclass
class Seen:
    method: str
    path: str
    at: float  # time.monotonic()


class WireServer:
    """A loopback HTTP server that answers the n-th request with ``replies[n]`` (the last one
    again when they run out): another server with the reference's wire format."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies, self.seen = replies, list[Seen]()
        wire = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                wire._answer(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads, self._http.block_on_close = True, False  # slow replies too
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        handler.rfile.read(length)
        self.seen.append(Seen(handler.command, handler.path, time.monotonic()))
        reply = self.replies[min(len(self.seen), len(self.replies)) - 1]
        time.sleep(reply.delay)
        handler.send_response(reply.status)
        for name, value in {"Content-Type": "application/json", **reply.headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        handler.wfile.write(reply.body)

    def __enter__(self) -> WireServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()


def error_reply(status: int, code: str, error_type: str, **headers: str) -> Reply:
    body = f'{{"error":{{"code":"{code}","message":"scripted {code}","type":"{error_type}"}}}}'
    return Reply(status, body.encode(), headers)


TASK = (
    b'{"id":"t1","status":"completed","model":"ideogram-v4","created_at":1781000000,'
    b'"completed_at":1781000020,"output":{"urls":["https://files.example/a.png"],'
    b'"metadata":{"model":"ideogram-ai/ideogram-v4"}}}'
)
