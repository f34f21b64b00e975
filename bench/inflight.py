"""In-flight capacity: one worker process holding N tasks whose upstream takes 2 s.

The tasks are created first through an API process without a worker (PostgreSQL + Redis, the
scale-out mode where worker processes exist). Then one `imagegate worker --concurrency N`
starts against a loopback Ideogram fake that answers each generation after 2 s; we time until
every task is final and read the worker's peak RSS (VmHWM). Ideally: about 2 s plus start-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import psycopg

from procs import (
    BENCH,
    PY,
    backend,
    free_port,
    imagegate,
    peak_rss_mib,
    provision,
    spawned,
    wait_http,
)

UPSTREAM_DELAY = 2.0


async def _create(port: int, key: str, n: int) -> None:
    body = {"model": "ideogram-v4", "input": {"prompt": "bench", "output_format": "png"}}
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                 limits=limits, timeout=60) as http:  # fmt: skip
        gate = asyncio.Semaphore(32)

        async def one() -> None:
            async with gate:
                (await http.post("/v1/images/generations", json=body)).raise_for_status()

        await asyncio.gather(*(one() for _ in range(n)))


def _final_counts(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        done, failed = conn.execute(
            "SELECT count(*) FILTER (WHERE status IN ('completed', 'failed')),"
            " count(*) FILTER (WHERE status = 'failed') FROM tasks"
        ).fetchone() or (0, 0)
    return int(done), int(failed)


async def measure_inflight(n: int, row: Callable[..., None]) -> None:
    with backend("postgres") as b, ExitStack() as stack:
        fake_port, api_port = free_port(), free_port()
        stack.enter_context(
            spawned([PY, str(BENCH / "fake_upstream.py"), str(fake_port), str(UPSTREAM_DELAY)])
        )
        env = b.env(
            api_port,
            ideogram_api_key="bench-key",
            ideogram_base_url=f"http://127.0.0.1:{fake_port}",
            upstream_allow_private="true",  # the fake's image URLs are on loopback
            ideogram_max_in_flight=n,
            worker_concurrency=n,
            database_pool_size=20,
            database_pool_overflow=0,
        )
        key = provision(env)
        stack.enter_context(spawned(imagegate("serve", "--no-worker"), env))
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{api_port}/healthz")
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{fake_port}/files/img.png")
        await _create(api_port, key, n)
        dsn = b.database_url.replace("postgresql+psycopg://", "postgresql://")
        started = time.monotonic()
        worker = stack.enter_context(spawned(imagegate("worker"), env))
        while (await asyncio.to_thread(_final_counts, dsn))[0] < n:
            if time.monotonic() - started > 600:
                raise RuntimeError("in-flight run did not finish in 10 minutes")
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        rss = peak_rss_mib(worker.pid)
        failed = _final_counts(dsn)[1]
    row(f"in flight, upstream {UPSTREAM_DELAY:.0f} s, 1 worker", f"{n:,}", f"{failed:,}",
        f"{elapsed:.1f} s", f"{rss:,.0f} MiB")  # fmt: skip
