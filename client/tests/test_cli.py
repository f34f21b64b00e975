"""`imagegate credits`, `imagegate task`, errors and exit codes, and the hand-over of server
commands, through the console script against a real server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from cli_support import cli_env, run_piped
from harness import Account, free_port
from imagegate.keys.policy import PolicyChange
from imagegate_client import Client
from sdk_support import Live

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
    for command in ("generate", "credits", "task", "serve", "worker", "db", "admin"):
        assert re.search(rf"^ +{command} ", shown, re.MULTILINE), shown
    server = run_piped("db", "--help", env=env)
    assert server.returncode == 0
    assert "upgrade" in server.stdout
    unknown = run_piped("frobnicate", env=env)
    assert unknown.returncode != 0
