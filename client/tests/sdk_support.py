"""Servers for the SDK's tests: imagegate in a thread of its own (for the blocking Client and the
CLI's processes), a scripted server speaking the reference's wire format, a provider to hold."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx

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
    # Sent a piece at a time, ``chunk_delay`` seconds apart, instead of ``body``: a live stream.
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    forward: bool = False  # answer with what the upstream answers (WireServer's upstream)
    drop: bool = False  # close the connection without an answer (after forwarding, if forward)


#: Forward the request to the upstream and answer with its response.
FORWARD = Reply(0, forward=True)
#: Forward the request (the upstream acts on it), then drop the connection: a lost response.
LOST = Reply(0, forward=True, drop=True)
#: Drop the connection without forwarding (nothing reaches a server).
DROPPED = Reply(0, drop=True)


@dataclass
class Seen:
    method: str
    path: str  # without the query
    at: float  # time.monotonic()
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""
    answered: dict[str, str] = field(default_factory=dict)  # the reply's headers, lower case
    done: float = 0.0  # time.monotonic() when the reply was sent


_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "content-encoding", "host"}


class WireServer:
    """A loopback HTTP server that answers the n-th request with ``replies[n]`` (the last one
    again when they run out): another server with the reference's wire format. With
    ``upstream`` (a base URL), FORWARD and LOST replies pass requests on to it: a proxy that
    counts, delays or loses what goes through."""

    def __init__(self, replies: list[Reply], upstream: str | None = None) -> None:
        self.replies, self.seen = replies, list[Seen]()
        self.upstream = upstream
        self._lock = threading.Lock()
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
        body = handler.rfile.read(length)
        parts = urlsplit(handler.path)
        seen = Seen(
            handler.command, parts.path, time.monotonic(), dict(parse_qsl(parts.query)),
            {name.lower(): value for name, value in handler.headers.items()}, body,
        )  # fmt: skip
        with self._lock:
            self.seen.append(seen)
            reply = self.replies[min(len(self.seen), len(self.replies)) - 1]
        time.sleep(reply.delay)
        if reply.forward:
            reply = self._forwarded(handler, body, reply.drop)
        if reply.drop:
            handler.close_connection = True
            return
        handler.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        seen.answered = {name.lower(): value for name, value in headers.items()}
        for name, value in headers.items():
            handler.send_header(name, value)
        if reply.chunks is None:
            handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        try:
            if reply.chunks is None:
                handler.wfile.write(reply.body)
            for chunk in reply.chunks or []:
                handler.wfile.write(chunk)
                handler.wfile.flush()
                time.sleep(reply.chunk_delay)
        except OSError:  # the client went away
            pass
        seen.done = time.monotonic()

    def _forwarded(self, handler: BaseHTTPRequestHandler, body: bytes, drop: bool) -> Reply:
        assert self.upstream is not None, "a FORWARD reply needs an upstream"
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        response = httpx.request(
            handler.command, self.upstream + handler.path, headers=headers, content=body,
            timeout=120,
        )  # fmt: skip
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Reply(response.status_code, response.content, kept, drop=drop)

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


def task_json(
    status: str = "completed", task_id: str = "t1", created_at: int = 1781000000
) -> bytes:
    """A task object in ``status`` (a completed one has TASK's output, a failed one an error)."""
    body: dict[str, Any] = {
        "id": task_id, "status": status, "model": "ideogram-v4", "created_at": created_at,
    }  # fmt: skip
    if status == "completed":
        body["completed_at"] = created_at + 20
        body["output"] = {
            "urls": ["https://files.example/a.png"],
            "metadata": {"model": "ideogram-ai/ideogram-v4"},
        }
    elif status == "failed":
        body["error"] = {"code": "cancelled", "message": "The task was cancelled."}
    return json.dumps(body, separators=(",", ":")).encode()


def success(data: Any) -> bytes:
    """The success envelope around ``data`` (bytes of JSON, or an object)."""
    raw = data.decode() if isinstance(data, bytes) else json.dumps(data)
    return f'{{"code":200,"msg":"success","data":{raw}}}'.encode()


def status_event(task: bytes) -> bytes:
    return b"event: status\ndata: " + task + b"\n\n"


EVENT_STREAM = {"Content-Type": "text/event-stream"}
