"""`imagegate credits`, `imagegate task`, errors and exit codes, and the hand-over of server
commands, through the console script against a real server."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli_support import cli_env, run_piped
from harness import Account, free_port
from imagegate.catalog.service import ModelChange, create_model
from imagegate.config import Settings
from imagegate.db.sql import SessionTx
from imagegate.keys.policy import PolicyChange
from imagegate_client import PRICES, Client
from sdk_support import HeldProvider, Live, Reply, WireServer, error_reply, live_server, success

FAIL = "a poster [simulate:upstream_error]"


def one_error_line(run: subprocess.CompletedProcess[str], code: str) -> str:
    """The error line, checked to be the one and the last line on stderr."""
    lines = run.stderr.splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], run.stderr
    assert lines[-1].startswith(f"error: {code}: "), run.stderr
    return lines[-1]


def test_credits_and_task(live: Live, account: Account, client: Client) -> None:
    env = cli_env(live.base_url, account.key)
    assert run_piped("credits", env=env).stdout == "1000 credits\n"
    task = client.generate("a cat")
    shown = run_piped("task", task.id, env=env)
    assert shown.returncode == 0
    assert re.match(rf"task: +{task.id}\nstatus: +completed\nmodel: +ideogram-v4\n", shown.stdout)
    assert f"url:       {task.urls[0]}\n" in shown.stdout
    raw = run_piped("task", task.id, "--json", env=env)
    assert json.loads(raw.stdout) == task.model_dump(exclude_none=True)
    failed = client.wait(client.create(FAIL))
    shown = run_piped("task", failed.id, env=env)
    assert "status:    failed\n" in shown.stdout
    assert "error:     upstream_error: Image generation failed\n" in shown.stdout


def test_flags_override_the_environment(live: Live, account: Account) -> None:
    env = cli_env(f"http://127.0.0.1:{free_port()}", "sk-wrong")
    run = run_piped("credits", "--base-url", live.base_url, "--api-key", account.key, env=env)
    assert run.stdout == "1000 credits\n"


@pytest.mark.parametrize(
    ("args", "policy", "credits", "code", "exit_code"),
    [
        (["generate", ""], None, 1000, "invalid_request", 10),
        (["credits", "--api-key", "sk-nope"], None, 1000, "invalid_api_key", 11),
        (["generate", "a cat"], None, 10, "insufficient_credits", 12),
        (["credits"], PolicyChange(allow_ips=["10.0.0.0/8"]), 1000, "ip_not_allowed", 13),
        (["task", "no-such-task"], None, 1000, "task_not_found", 15),
        (["generate", "a cat"], PolicyChange(total_limit="10"), 1000, "spend_limit_exceeded", 17),
        (["generate", FAIL], None, 1000, "upstream_error", 3),
    ],
)
def test_each_error_is_one_line_and_its_own_exit_code(
    live: Live,
    tmp_path: Path,
    args: list[str],
    policy: PolicyChange | None,
    credits: int,
    code: str,
    exit_code: int,
) -> None:
    env = cli_env(live.base_url, live.account(credits, policy).key)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run = run_piped(*args, env=env, cwd=cwd)
    one_error_line(run, code)
    assert run.returncode == exit_code, run.stderr
    assert run.stdout == ""
    assert not any(cwd.iterdir())  # no image, no partial file


def test_a_failed_task_names_itself(live: Live, account: Account) -> None:
    run = run_piped("generate", FAIL, env=cli_env(live.base_url, account.key))
    *progress, last = run.stderr.splitlines()
    task_id = progress[0].split()[1].rstrip(":")
    assert progress[-1].startswith(f"task {task_id}: failed")
    assert last == f"error: upstream_error: Image generation failed (task {task_id})"
    assert run.returncode == 3


def test_rate_limited(live: Live) -> None:
    env = cli_env(live.base_url, live.account(1000, PolicyChange(rate_limit="1")).key)
    assert run_piped("credits", env=env).returncode == 0
    run = run_piped("credits", env=env)
    assert "Retry in" in one_error_line(run, "rate_limit_exceeded")
    assert run.returncode == 16


def test_timeout_leaves_the_task_running(live: Live, account: Account) -> None:
    env = cli_env(live.base_url, account.key)
    run = run_piped("generate", "a cat", "--timeout", "0", env=env)
    line = one_error_line(run, "wait_timeout")
    task_id = re.search(r"imagegate task (\S+)$", line)
    assert task_id, line
    assert run.returncode == 4
    with Client(base_url=live.base_url, api_key=account.key) as client:
        assert client.wait(task_id.group(1)).status == "completed"


def test_no_server_and_no_key() -> None:
    unreachable = cli_env(f"http://127.0.0.1:{free_port()}", "sk-x")
    run = run_piped("credits", env=unreachable)
    one_error_line(run, "connection_error")
    assert run.returncode == 5
    no_key = {k: v for k, v in unreachable.items() if k != "IMAGEGATE_API_KEY"}
    run = run_piped("credits", env=no_key)
    assert run.stderr == "error: no API key: pass --api-key or set IMAGEGATE_API_KEY\n"
    assert run.returncode == 2


def test_help_lists_client_and_server_commands_and_server_commands_are_handed_over() -> None:
    env = cli_env("http://127.0.0.1:1", "sk-x")
    shown = run_piped("--help", env=env).stdout
    commands = ("generate", "credits", "task", "tasks", "cancel", "usage", "serve", "worker", "db")
    for command in (*commands, "admin"):
        assert re.search(rf"^ +{command} ", shown, re.MULTILINE), shown
    server = run_piped("db", "--help", env=env)
    assert server.returncode == 0
    assert "upgrade" in server.stdout
    unknown = run_piped("frobnicate", env=env)
    assert unknown.returncode != 0


def test_tasks_lists_newest_first(live: Live, account: Account, client: Client) -> None:
    env = cli_env(live.base_url, account.key)
    empty = run_piped("tasks", env=env)
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "no tasks\n")
    done = client.generate("a cat")
    failed = client.wait(client.create(FAIL))
    run = run_piped("tasks", env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[failed.id, "failed"], [done.id, "completed"]]
    created = datetime.fromtimestamp(done.created_at, UTC).isoformat(timespec="seconds")
    assert lines[1] == f"{done.id}  completed   {created}  ideogram-v4"
    assert run_piped("tasks", "--limit", "1", env=env).stdout == lines[0] + "\n"
    assert run_piped("tasks", "--status", "completed", env=env).stdout == lines[1] + "\n"
    raw = json.loads(run_piped("tasks", "--json", env=env).stdout)
    assert raw == [failed.model_dump(exclude_none=True), done.model_dump(exclude_none=True)]
    bad = run_piped("tasks", "--limit", "0", env=env)
    assert bad.returncode == 2
    assert "--limit" in bad.stderr


def test_usage_is_a_table_or_json(live: Live, account: Account, client: Client) -> None:
    env = cli_env(live.base_url, account.key)
    client.generate("a cat", rendering_speed="TURBO")
    client.wait(client.create(FAIL, rendering_speed="QUALITY"))
    usage = client.usage(group_by="speed")
    run = run_piped("usage", "--group-by", "speed", env=env)
    assert run.returncode == 0, run.stderr
    turbo, quality = PRICES["TURBO"], PRICES["QUALITY"]
    assert run.stdout.splitlines() == [
        f"{usage.from_} to {usage.to}, by speed",
        "speed    tasks  completed  failed  charged  refunded  net",
        f"QUALITY      1          0       1       {quality}        {quality}    0",
        f"TURBO        1          1       0       {turbo}         0   {turbo}",
        f"total        2          1       1       {turbo + quality}        {quality}   {turbo}",
    ]
    day = usage.to.isoformat()
    raw = run_piped("usage", "--from", day, "--to", day, "--json", env=env)
    assert json.loads(raw.stdout) == client.usage(from_=day, to=day).model_dump(
        mode="json", by_alias=True
    )
    assert json.loads(raw.stdout)["rows"][0]["group"] == day
    bad = run_piped("usage", "--from", "2026-13-01", env=env)
    assert bad.returncode == 2
    assert "YYYY-MM-DD" in bad.stderr
    backwards = run_piped("usage", "--from", day, "--to", "2000-01-01", env=env)
    one_error_line(backwards, "invalid_request")
    assert backwards.returncode == 10


@pytest.fixture
def held(settings: Settings) -> Iterator[Live]:
    provider = HeldProvider()
    with live_server(settings, {"ideogram-v4": provider}) as running:
        try:
            yield running
        finally:
            provider.release()


def test_cancel(held: Live) -> None:
    account = held.account()
    env = cli_env(held.base_url, account.key)
    with Client(base_url=held.base_url, api_key=account.key) as client:
        task_id = client.create("a held poster")
        other = client.create("another held poster")
    run = run_piped("cancel", task_id, env=env)
    assert run.returncode == 0, run.stderr
    assert re.match(rf"task: +{task_id}\nstatus: +failed\n", run.stdout)
    assert "\nerror:     cancelled: " in run.stdout
    raw = run_piped("cancel", other, "--json", env=env)
    assert json.loads(raw.stdout)["error"]["code"] == "cancelled"
    again = run_piped("cancel", task_id, env=env)
    one_error_line(again, "invalid_request")
    assert again.returncode == 10
    unknown = run_piped("cancel", "no-such-task", env=env)
    one_error_line(unknown, "task_not_found")
    assert unknown.returncode == 15
    assert run_piped("credits", env=env).stdout == "1000 credits\n"


def test_generate_long_polls_a_server_without_live_status(tmp_path: Path) -> None:
    with WireServer([]) as wire:
        task = {
            "id": "t1", "status": "completed", "model": "ideogram-v4", "created_at": 1781000000,
            "completed_at": 1781000001,
            "output": {"urls": [f"{wire.base_url}/a.png"], "metadata": {"model": "m"}},
        }  # fmt: skip
        wire.replies = [
            Reply(200, success({"taskId": "t1"})),
            error_reply(404, "invalid_request", "invalid_request_error"),  # no /events here
            Reply(200, json.dumps(task).encode()),
            Reply(200, b"\x89PNG image", {"Content-Type": "image/png"}),
        ]
        run = run_piped(
            "generate", "a cat", "-o", "cat.png", env=cli_env(wire.base_url, "sk-x"), cwd=tmp_path
        )
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines()[-1].startswith("task t1: completed")
    assert (tmp_path / "cat.png").read_bytes() == b"\x89PNG image"
    assert [(seen.method, seen.path) for seen in wire.seen] == [
        ("POST", "/v1/images/generations"),
        ("GET", "/v1/tasks/t1/events"),
        ("GET", "/v1/tasks/t1"),
        ("GET", "/a.png"),
    ]
    assert "wait" in wire.seen[2].query


def test_models_prints_one_line_per_model_or_json(
    live: Live, account: Account, client: Client
) -> None:
    env = cli_env(live.base_url, account.key)
    run = run_piped("models", env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "ideogram-v4  Ideogram V4  TURBO 16  BALANCED 28  QUALITY 44\n"
    raw = run_piped("models", "--json", env=env)
    assert json.loads(raw.stdout) == [model.model_dump(mode="json") for model in client.models()]
    assert json.loads(raw.stdout)[0]["prices"] == PRICES

    async def add_flux() -> None:
        async with live.server.services.db.transaction() as session:
            await create_model(
                SessionTx(session), "flux-schnell",
                ModelChange(title="FLUX.1 [schnell]", reports="black-forest-labs/flux-schnell",
                            prices={"TURBO": 3, "BALANCED": 3, "QUALITY": 5}),
                0.0,
            )  # fmt: skip

    live.run(add_flux())
    assert run_piped("models", env=env).stdout.splitlines() == [
        "flux-schnell  FLUX.1 [schnell]  TURBO 3  BALANCED 3  QUALITY 5",
        "ideogram-v4   Ideogram V4       TURBO 16  BALANCED 28  QUALITY 44",
    ]
    bad = run_piped("models", "--api-key", "sk-nope", env=env)
    one_error_line(bad, "invalid_api_key")
    assert bad.returncode == 11
    assert re.search(r"^ +models ", run_piped("--help", env=env).stdout, re.MULTILINE)
