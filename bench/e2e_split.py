"""Where the end-to-end time over D goes, one task at a time (no load): the create's response,
the job's pickup after the create's commit, and the job's own work above D.

    .venv/bin/python bench/e2e_split.py [TASKS]

PostgreSQL, `serve --no-worker` + `imagegate worker`; the pickup and the job's duration come from
procrastinate's log lines ("Starting job ...", "... lasted X s"), which carry the task id.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import datetime

import httpx

from procs import backend, free_port, imagegate, provision, spawned, wait_http

D = 0.5
BODY = {"model": "ideogram-v4", "input": {"prompt": "bench", "rendering_speed": "TURBO"}}


def _run(tasks: int) -> tuple[list[tuple[float, float, float, str]], str]:
    with backend("postgres") as b, ExitStack() as stack:
        port = free_port()
        env = b.env(port, simulator_delay=D)
        key = provision(env)
        logs: list[str] = []
        stack.enter_context(spawned(imagegate("serve", "--no-worker"), env))
        stack.enter_context(spawned(imagegate("worker"), env, log_to=logs))
        wait_http(f"http://127.0.0.1:{port}/healthz")
        time.sleep(2)  # the worker registered and listening
        headers = {"Authorization": f"Bearer {key}"}
        rows = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            for _ in range(tasks):
                sent = time.time()
                task_id = http.post("/v1/images/generations", json=BODY).json()["data"]["taskId"]
                answered = time.time()
                while http.get(f"/v1/tasks/{task_id}").json()["status"] != "completed":
                    time.sleep(0.002)
                rows.append((sent, answered, time.time(), task_id))
                time.sleep(0.3)
        time.sleep(0.5)  # the last lines reach the log
        with open(logs[0]) as log:
            return rows, log.read()


def _started(text: str, task_id: str) -> float:
    stamp = re.search(rf"^(\S+ \S+) INFO \S+ Starting job run_task\[\d+\]\(task_id='{task_id}'",
                      text, re.M)  # fmt: skip
    assert stamp is not None
    return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _lasted(text: str, task_id: str) -> float:
    found = re.search(rf"task_id='{task_id}'\) ended with status: Success, lasted ([\d.]+) s", text)
    assert found is not None
    return float(found.group(1))


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rows, text = _run(tasks)
    columns = {"create response": [], "pickup": [], "job above D": [], "all above D": []}
    for sent, answered, visible, task_id in rows:
        columns["create response"].append(answered - sent)
        columns["pickup"].append(_started(text, task_id) - answered)
        columns["job above D"].append(_lasted(text, task_id) - D)
        columns["all above D"].append(visible - sent - D)
    print(f"| one task at a time, {tasks} tasks, D = {D} s | min | median | max |")
    print("| --- | --- | --- | --- |")
    for name, values in columns.items():
        ms = [v * 1000 for v in values]
        print(f"| {name} | {min(ms):.1f} ms | {statistics.median(ms):.1f} ms | {max(ms):.1f} ms |")


if __name__ == "__main__":
    main()
