"""Run the benchmarks of BENCHMARKS.md and print its results table (markdown rows).

    .venv/bin/python bench/run.py                    # everything (about 6 minutes)
    .venv/bin/python bench/run.py --only throughput --backends sqlite --seconds 5

Scenarios:
  loadgen     wrk against a bare asyncio responder: wrk's own ceiling on this machine
  throughput  POST create and GET task: imagegate vs the bare FastAPI app (bench/bare_app.py)
  e2e         create -> completed visible, and -> callback received, minus the simulator delay
  inflight    one worker holding N tasks whose upstream takes 2 s: completion time, peak RSS
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx

from e2e import measure_e2e
from inflight import measure_inflight
from procs import (
    BENCH,
    PY,
    Backend,
    Load,
    backend,
    free_port,
    imagegate,
    provision,
    spawned,
    wait_http,
    wrk,
)

BODY = {"model": "ideogram-v4", "input": {"prompt": "bench", "rendering_speed": "TURBO"}}


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def loadgen(seconds: int, connections: int) -> None:
    port = free_port()
    with spawned([PY, str(BENCH / "raw_server.py"), str(port)]):
        time.sleep(1)
        load = wrk(f"http://127.0.0.1:{port}/", "get.lua", "x", seconds, connections)
    row("wrk ceiling (bare asyncio responder)", "-", f"{load.rps:,.0f}", "", "",
        f"{load.p50_ms:.2f}", f"{load.p99_ms:.2f}")  # fmt: skip


def wrk_all(urls: list[str], script: str, key: str, seconds: int, connections: int) -> Load:
    """wrk against each URL at once (one per API process); rates add up, latency is the worst."""
    per = max(connections // len(urls), 1)
    with ThreadPoolExecutor(len(urls)) as pool:
        loads = list(pool.map(lambda u: wrk(u, script, key, seconds, per), urls))
    return Load(
        rps=sum(x.rps for x in loads),
        p50_ms=max(x.p50_ms for x in loads),
        p99_ms=max(x.p99_ms for x in loads),
        requests=sum(x.requests for x in loads),
        bad=sum(x.bad for x in loads),
    )


def throughput(name: str, apis: int, seconds: int, connections: int) -> None:
    with backend(name) as b, ExitStack() as stack:
        ports = [free_port() for _ in range(apis)]
        key = provision(b.env(ports[0]))
        # The API alone: the simulator's rendering (CPU work standing in for the upstream's)
        # would otherwise compete for the same two cores. Scenario e2e covers the worker.
        for port in ports:
            stack.enter_context(spawned(imagegate("serve", "--no-worker"), b.env(port)))
        bare = free_port()
        stack.enter_context(spawned([PY, str(BENCH / "bare_app.py"), str(bare)]))
        for port in [*ports, bare]:
            wait_http(f"http://127.0.0.1:{port}/healthz")
        task_id = _one_task(ports[0], key)
        _compare(b, apis, "POST create", [f"http://127.0.0.1:{p}/v1/images/generations"
                 for p in ports], f"http://127.0.0.1:{bare}/v1/images/generations",
                 "create.lua", key, seconds, connections)  # fmt: skip
        _compare(b, apis, "GET task", [f"http://127.0.0.1:{p}/v1/tasks/{task_id}" for p in ports],
                 f"http://127.0.0.1:{bare}/v1/tasks/{task_id}", "get.lua", key, seconds,
                 connections)  # fmt: skip


def _compare(
    b: Backend, apis: int, what: str, urls: list[str], bare_url: str, script: str, key: str,
    seconds: int, connections: int,
) -> None:  # fmt: skip
    ours = wrk_all(urls, script, key, seconds, connections)
    bare = wrk(bare_url, script, key, seconds, connections)
    assert ours.bad == 0, f"errors during the run: {ours}"
    assert bare.bad == 0, f"errors during the run: {bare}"
    label = f"{what}, {b.name}, {apis} API process{'es' if apis > 1 else ''}"
    ratio = f"**{ours.rps / bare.rps:.2f}×**"
    bare_latency = f"{bare.p50_ms:.2f} / {bare.p99_ms:.2f}"
    row(label, f"{bare.rps:,.0f}", f"{ours.rps:,.0f}", ratio, bare_latency,
        f"{ours.p50_ms:.2f}", f"{ours.p99_ms:.2f}")  # fmt: skip


def _one_task(port: int, key: str) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/images/generations",
        json=BODY, headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    response.raise_for_status()
    return str(response.json()["data"]["taskId"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="loadgen,throughput,e2e,inflight")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--inflight", default="1000,5000")
    parser.add_argument("--e2e-tasks", type=int, default=150)
    args = parser.parse_args()
    only, backends = args.only.split(","), args.backends.split(",")
    print(f"<!-- {time.strftime('%Y-%m-%d %H:%M')} {' '.join(sys.argv)} -->")
    if "loadgen" in only:
        loadgen(args.seconds, args.connections)
    for name in backends:
        for apis in (1, 2) if name == "postgres" else (1,):
            if "throughput" in only:
                throughput(name, apis, args.seconds, args.connections)
            if "e2e" in only:
                asyncio.run(measure_e2e(name, apis, row, args.e2e_tasks))
    if "inflight" in only:
        for n in (int(x) for x in args.inflight.split(",")):
            asyncio.run(measure_inflight(n, row))


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{exc.cmd} failed: {exc.stderr}")
