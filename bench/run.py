"""Run the benchmarks of BENCHMARKS.md and print their results as markdown tables.

    .venv/bin/python bench/run.py                    # everything (about 16 minutes)
    .venv/bin/python bench/run.py --only throughput --backends sqlite --seconds 5
    .venv/bin/python bench/run.py --only e2e --backends postgres --e2e-tasks 50

The output opens with the server stack (Python, uvicorn and the loop and HTTP parser of
imagegate.app.SERVER_OPTIONS, which imagegate and the bare app both run with), the stores and
the machine; then one table per scenario:

  loadgen     wrk against a bare asyncio responder: wrk's own ceiling on this machine
  throughput  POST create and GET task: `imagegate serve --no-worker` vs the bare FastAPI app
              (bench/bare_app.py), both in req/s, their ratio, and p50 / p99 latency in ms.
              PostgreSQL runs with 1 and 2 API processes, and its POST create twice: all load on
              one account (creates serialise on its balance row), and spread over 100 accounts
              (each request uses the next account's key in turn).
  e2e         create -> completed visible, and -> callback received, minus the simulator delay,
              in ms; `imagegate serve` with its in-process worker, and on PostgreSQL also
              `serve --no-worker` plus a separate `imagegate worker` process
  inflight    one worker holding N tasks whose upstream takes 2 s: completion time, peak RSS
  recovery    kill -9 with tasks in flight: a worker's jobs resuming on another (PostgreSQL),
              and tasks finishing after `imagegate serve` restarts (SQLite); bench/recovery.py
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import httpx

from e2e import DELAY, measure_e2e
from inflight import measure_inflight
from procs import (
    BENCH,
    PY,
    Backend,
    Load,
    backend,
    free_port,
    imagegate,
    provision_accounts,
    spawned,
    wait_http,
    wrk,
)
from recovery import measure_recovery
from stack import header, load_generator

BODY = {"model": "ideogram-v4", "input": {"prompt": "bench", "rendering_speed": "TURBO"}}
API_PROCESSES = {"sqlite": (1,), "postgres": (1, 2)}
SPREAD_ACCOUNTS = {"postgres": 100}  # backends whose POST create also runs spread over accounts
SCENARIOS = "loadgen,throughput,e2e,inflight,recovery"


@dataclass(frozen=True)
class Pace:
    """How wrk runs each measurement."""

    seconds: int
    connections: int


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def table(*columns: str) -> None:
    print(flush=True)
    row(*columns)
    row(*("---" for _ in columns))


def loadgen(pace: Pace) -> None:
    table("Load generator ceiling", "wrk req/s", "p50 / p99 ms")
    port = free_port()
    with spawned([PY, str(BENCH / "raw_server.py"), str(port)]):
        time.sleep(1)
        load = wrk(f"http://127.0.0.1:{port}/", "get.lua", "x", pace.seconds, pace.connections)
    row("wrk against a bare asyncio responder (bench/raw_server.py)", f"{load.rps:,.0f}",
        f"{load.p50_ms:.2f} / {load.p99_ms:.2f}")  # fmt: skip


def wrk_all(urls: list[str], script: str, key: str, pace: Pace) -> Load:
    """wrk against each URL at once (one per API process); rates add up, latency is the worst."""
    per = max(pace.connections // len(urls), 1)
    with ThreadPoolExecutor(len(urls)) as pool:
        loads = list(pool.map(lambda u: wrk(u, script, key, pace.seconds, per), urls))
    return Load(
        rps=sum(x.rps for x in loads),
        p50_ms=max(x.p50_ms for x in loads),
        p99_ms=max(x.p99_ms for x in loads),
        requests=sum(x.requests for x in loads),
        bad=sum(x.bad for x in loads),
    )


def throughputs(backends: list[str], pace: Pace) -> None:
    table("Throughput", "bare req/s", "imagegate req/s", "ratio", "bare p50 / p99 ms",
          "imagegate p50 / p99 ms")  # fmt: skip
    for name in backends:
        for apis in API_PROCESSES[name]:
            throughput(name, apis, pace)


def throughput(name: str, apis: int, pace: Pace) -> None:
    """The rows of one backend and number of API processes, against the bare app."""
    with backend(name) as b, ExitStack() as stack:
        ports = [free_port() for _ in range(apis)]
        keys = provision_accounts(b.env(ports[0]), SPREAD_ACCOUNTS.get(name, 1))
        bare = _start(stack, b, ports)
        task_id = _one_task(ports[0], keys[0])
        label = f"{b.title}, {apis} API process{'es' if apis > 1 else ''}"
        create = "/v1/images/generations"
        if len(keys) > 1:
            _compare(f"POST create, {label}, 1 account", ports, bare, create, keys[0], pace)
            _compare(f"POST create, {label}, {len(keys)} accounts", ports, bare, create,
                     ",".join(keys), pace)  # fmt: skip
        else:
            _compare(f"POST create, {label}", ports, bare, create, keys[0], pace)
        _compare(f"GET task, {label}", ports, bare, f"/v1/tasks/{task_id}", keys[0], pace)


def _start(stack: ExitStack, b: Backend, ports: list[int]) -> int:
    """The API processes on ``ports`` and the bare app; the bare app's port."""
    # The API alone: the simulator's rendering (CPU work standing in for the upstream's)
    # would otherwise compete for the same two cores. Scenario e2e covers the worker.
    # One after another: two first starts at once race on the demo account (one may exit).
    for port in ports:
        stack.enter_context(spawned(imagegate("serve", "--no-worker"), b.env(port)))
        wait_http(f"http://127.0.0.1:{port}/healthz")
    bare = free_port()
    stack.enter_context(spawned([PY, str(BENCH / "bare_app.py"), str(bare)]))
    wait_http(f"http://127.0.0.1:{bare}/healthz")
    return bare


def _compare(label: str, ports: list[int], bare: int, path: str, key: str, pace: Pace) -> None:
    """One row: the same wrk load on imagegate's API processes, then on the bare app."""
    script = "get.lua" if path.startswith("/v1/tasks/") else "create.lua"
    ours = wrk_all([f"http://127.0.0.1:{p}{path}" for p in ports], script, key, pace)
    base = wrk(f"http://127.0.0.1:{bare}{path}", script, key, pace.seconds, pace.connections)
    assert ours.bad == 0, f"errors during the run: {ours}"
    assert base.bad == 0, f"errors during the run: {base}"
    row(label, f"{base.rps:,.0f}", f"{ours.rps:,.0f}", f"**{ours.rps / base.rps:.2f}×**",
        f"{base.p50_ms:.2f} / {base.p99_ms:.2f}",
        f"{ours.p50_ms:.2f} / {ours.p99_ms:.2f}")  # fmt: skip


def _one_task(port: int, key: str) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/images/generations",
        json=BODY, headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    response.raise_for_status()
    return str(response.json()["data"]["taskId"])


def e2e(backends: list[str], tasks: int) -> None:
    table(f"End-to-end overhead over the simulator delay D = {DELAY} s", "tasks", "p50", "p99")
    columns = [
        asyncio.run(measure_e2e(name, row, tasks, separate_worker))
        for name in backends
        for separate_worker in ((False, True) if name == "postgres" else (False,))
    ]
    table("Where it goes (p50 / p99 / max ms; `bench/e2e.py`, from each task row's stamps)",
          *(title for title, _ in columns))  # fmt: skip
    for step in columns[0][1]:
        row(step, *(phases[step] for _, phases in columns))


def inflight(counts: list[int]) -> None:
    table("In-flight capacity (PostgreSQL + Redis)", "tasks", "failed", "all final after",
          "worker peak RSS")  # fmt: skip
    for n in counts:
        asyncio.run(measure_inflight(n, row))


def recovery(backends: list[str]) -> None:
    table("Recovery after kill -9", "tasks", "p50 / after", "max / ready", "")
    measure_recovery(backends, row)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=SCENARIOS, help=f"some of {SCENARIOS}")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seconds", type=int, default=10, help="per wrk measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--inflight", default="1000,5000", help="tasks in flight, per row")
    parser.add_argument("--e2e-tasks", type=int, default=150)
    args = parser.parse_args()
    for name in set(args.only.split(",")) - set(SCENARIOS.split(",")):
        parser.error(f"--only: no scenario {name!r}; there are {SCENARIOS}")
    for name in set(args.backends.split(",")) - set(API_PROCESSES):
        parser.error(f"--backends: no backend {name!r}; there are {','.join(API_PROCESSES)}")
    return args


def main() -> None:
    args = _args()
    only, backends = args.only.split(","), args.backends.split(",")
    pace = Pace(args.seconds, args.connections)
    stores = set(backends) if {"throughput", "e2e"} & set(only) else set()
    stores |= {"postgres"} if "inflight" in only else set()
    stores |= set(backends) if "recovery" in only else set()
    print(f"<!-- {time.strftime('%Y-%m-%d %H:%M')} {' '.join(sys.argv)} -->")
    print("\n".join(header(stores)), flush=True)
    if {"loadgen", "throughput"} & set(only):
        print(f"**Load generator:** {load_generator(pace.seconds, pace.connections)}.")
    if "loadgen" in only:
        loadgen(pace)
    if "throughput" in only:
        throughputs(backends, pace)
    if "e2e" in only:
        e2e(backends, args.e2e_tasks)
    if "inflight" in only:
        inflight([int(x) for x in args.inflight.split(",")])
    if "recovery" in only:
        recovery(backends)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{exc.cmd} failed: {exc.stderr}")
